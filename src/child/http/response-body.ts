/**
 * The bytes of a successful answer's `response_string`, exactly as the endpoint sent them.
 *
 * JSON.parse needs a JavaScript string, and turning a body that is not valid UTF-8 into one replaces
 * every invalid sequence with U+FFFD: the client would get different bytes than the endpoint sent
 * (the original passed them through). So when the body is not valid UTF-8 the result is cut from the
 * raw body instead: the bytes between the quotes, copied verbatim, with only JSON escapes decoded.
 *
 * JSON.parse still validates the body and reads every other member: invalid UTF-8 can only sit inside
 * strings (anywhere else JSON.parse of the replaced text fails), the replacement never swallows an
 * ASCII byte (a quote, a backslash), so the raw body has exactly the structure JSON.parse saw.
 *
 * A `\uD800`-style escape of a lone UTF-16 surrogate names no character and has no UTF-8 form: such a
 * result fails with a reason rather than being silently replaced. Raw WTF-8 bytes in the body are
 * not escapes; they pass through like any other invalid byte sequence.
 *
 * Each function returns the result bytes, or a string: the reason the job fails.
 */
import { isUtf8 } from 'node:buffer';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SLASH = 0x2f;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** The member this module reads from the raw body. */
const RESPONSE_STRING = Buffer.from('response_string', 'latin1');
/** UTF-16 surrogates: high (leading) D800–DBFF, low (trailing) DC00–DFFF. */
const HIGH_SURROGATE_MIN = 0xd800;
const LOW_SURROGATE_MIN = 0xdc00;
const LOW_SURROGATE_MAX = 0xdfff;

/**
 * The bytes a success answer delivers. `text` is response_string as JSON.parse returned it from the
 * body's UTF-8 decoding, `encoding` the answer's response_encoding member (undefined when absent).
 */
export function responseBytes(body: Buffer, text: string, encoding: unknown): Buffer | string {
  if (encoding !== undefined) {
    if (encoding !== 'base64') {
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- only what JSON.stringify cannot render
      return `response_encoding ${JSON.stringify(encoding)?.slice(0, 64) ?? String(encoding)} is not supported (the only encoding is "base64")`;
    }
    // A byte that was not valid UTF-8 became U+FFFD in `text`, which no base64 alphabet contains:
    // such a body fails below with that character named.
    return decodeBase64(text);
  }
  if (isUtf8(body)) {
    if ((text as string & { isWellFormed(): boolean }).isWellFormed()) return Buffer.from(text, 'utf8');
    return loneSurrogateReason(text);
  }
  return rawResponseString(body);
}

/**
 * Forgiving base64 (the WHATWG algorithm `atob` uses): ASCII whitespace is ignored (MIME encoders
 * wrap lines) and padding is optional, but any other character outside the standard alphabet, or a
 * length no encoder produces, is an error. Node's own decoder would silently skip bad characters.
 */
export function decodeBase64(text: string): Buffer | string {
  let data = /[\t\n\f\r ]/.test(text) ? text.replace(/[\t\n\f\r ]+/g, '') : text;
  if (data.length % 4 === 0 && data.endsWith('=')) data = data.slice(0, data.endsWith('==') ? -2 : -1);
  const bad = /[^A-Za-z0-9+/]/.exec(data);
  if (bad !== null) {
    return `response_string is not valid base64: ${JSON.stringify(bad[0])} at character ${text.indexOf(bad[0])} (response_encoding is "base64")`;
  }
  if (data.length % 4 === 1) {
    return `response_string is not valid base64: ${data.length} base64 characters cannot encode whole bytes (response_encoding is "base64")`;
  }
  return Buffer.from(data, 'base64');
}

function loneSurrogateReason(text: string): string {
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < HIGH_SURROGATE_MIN || unit > LOW_SURROGATE_MAX) continue;
    const next = text.charCodeAt(i + 1);
    if (unit < LOW_SURROGATE_MIN && next >= LOW_SURROGATE_MIN && next <= LOW_SURROGATE_MAX) {
      i++;
      continue;
    }
    at = i;
    break;
  }
  return loneSurrogateMessage(text.charCodeAt(at), `character ${at}`);
}

function loneSurrogateMessage(unit: number, where: string): string {
  const escape = `\\u${unit.toString(16).padStart(4, '0')}`;
  return `response_string has a lone UTF-16 surrogate escape ${escape} at ${where}, which is no character and has no UTF-8 form (send the bytes raw or use "response_encoding":"base64")`;
}

/**
 * The decoded bytes of the last top-level `"response_string"` member of `body` (JSON.parse keeps the
 * last of duplicate keys too). The caller has parsed the body's text: it is a JSON object whose
 * response_string is a string, so the scan below trusts the structure and only guards its bounds.
 */
export function rawResponseString(body: Buffer): Buffer | string {
  let i = skipWhitespace(body, 0);
  let valueStart = -1;
  let valueEnd = -1;
  if (body[i] === OPEN_BRACE) {
    i = skipWhitespace(body, i + 1);
    while (body[i] === QUOTE) {
      const keyEnd = stringEnd(body, i + 1);
      const isTarget = keyEquals(body, i + 1, keyEnd, RESPONSE_STRING);
      i = skipWhitespace(body, keyEnd + 1);
      if (body[i] !== COLON) break;
      i = skipWhitespace(body, i + 1);
      const start = i;
      i = skipValue(body, i);
      if (isTarget) {
        valueStart = body[start] === QUOTE ? start + 1 : -1;
        valueEnd = i - 1;
      }
      i = skipWhitespace(body, i);
      if (body[i] !== COMMA) break;
      i = skipWhitespace(body, i + 1);
    }
  }
  if (valueStart < 0 || valueEnd >= body.length) return 'response_string could not be located in the raw response body';
  return decodeString(body, valueStart, valueEnd);
}

function skipWhitespace(body: Buffer, from: number): number {
  let i = from;
  for (;;) {
    const byte = body[i];
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return i;
    i++;
  }
}

/**
 * Index of the quote that closes the string whose contents start at `from` (body.length if none).
 * Native indexOf finds quotes; one preceded by an odd run of backslashes is escaped. Result strings
 * can be megabytes, so they are not walked byte by byte in JavaScript.
 */
function stringEnd(body: Buffer, from: number): number {
  let i = from;
  for (;;) {
    const quote = body.indexOf(QUOTE, i);
    if (quote < 0) return body.length;
    let backslashes = 0;
    while (quote - backslashes - 1 >= from && body[quote - backslashes - 1] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
    i = quote + 1;
  }
}

/** Index just past the JSON value starting at `from`. */
function skipValue(body: Buffer, from: number): number {
  const first = body[from];
  if (first === QUOTE) return stringEnd(body, from + 1) + 1;
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    let i = from;
    while (i < body.length) {
      const byte = body[i];
      if (byte === QUOTE) {
        i = stringEnd(body, i + 1) + 1;
        continue;
      }
      if (byte === OPEN_BRACE || byte === OPEN_BRACKET) depth++;
      else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return i;
  }
  // A number or a literal: runs to the next structural character or whitespace.
  let i = from;
  while (i < body.length) {
    const byte = body[i];
    if (byte === COMMA || byte === CLOSE_BRACE || byte === CLOSE_BRACKET || byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) break;
    i++;
  }
  return i;
}

/** Whether the JSON string contents [start, end) decode to exactly `key`. */
function keyEquals(body: Buffer, start: number, end: number, key: Buffer): boolean {
  // Escapes never decode to more bytes than they take, and an ASCII key's byte is at most a 6-byte \u escape.
  if (end - start < key.length || end - start > key.length * 6) return false;
  if (end - start === key.length) return body.compare(key, 0, key.length, start, end) === 0;
  const decoded = decodeString(body, start, end);
  return typeof decoded !== 'string' && decoded.equals(key);
}

/**
 * The JSON string contents [start, end) as bytes: runs without a backslash copied verbatim (whatever
 * they are), escapes decoded, `\uXXXX` to UTF-8 with surrogate pairs joined into one code point.
 * Never longer than the input: every escape is longer than the bytes it stands for.
 */
function decodeString(body: Buffer, start: number, end: number): Buffer | string {
  let escape = body.indexOf(BACKSLASH, start);
  if (escape < 0 || escape >= end) return body.subarray(start, end);
  const out = Buffer.allocUnsafe(end - start);
  let written = 0;
  let runStart = start;
  while (escape >= 0 && escape < end) {
    written += body.copy(out, written, runStart, escape);
    const letter = body[escape + 1];
    let next = escape + 2;
    switch (letter) {
      case QUOTE:
      case BACKSLASH:
      case SLASH:
        out[written++] = letter;
        break;
      case 0x62: // b
        out[written++] = 0x08;
        break;
      case 0x66: // f
        out[written++] = 0x0c;
        break;
      case 0x6e: // n
        out[written++] = 0x0a;
        break;
      case 0x72: // r
        out[written++] = 0x0d;
        break;
      case 0x74: // t
        out[written++] = 0x09;
        break;
      case 0x75: {
        // u
        let point = hex4(body, escape + 2);
        next = escape + 6;
        if (point < 0) return `response_string has a malformed \\u escape at byte ${escape - start}`;
        if (point >= HIGH_SURROGATE_MIN && point <= LOW_SURROGATE_MAX) {
          const low = point < LOW_SURROGATE_MIN && body[next] === BACKSLASH && body[next + 1] === 0x75 ? hex4(body, next + 2) : -1;
          if (low < LOW_SURROGATE_MIN || low > LOW_SURROGATE_MAX) return loneSurrogateMessage(point, `byte ${escape - start}`);
          point = 0x10000 + ((point - HIGH_SURROGATE_MIN) << 10) + (low - LOW_SURROGATE_MIN);
          next += 6;
        }
        written = writeUtf8(out, written, point);
        break;
      }
      default:
        return `response_string has an invalid escape at byte ${escape - start}`;
    }
    runStart = next;
    escape = body.indexOf(BACKSLASH, next);
  }
  written += body.copy(out, written, runStart, end);
  return out.subarray(0, written);
}

/** The four hex digits at `at` as a number, or -1. */
function hex4(body: Buffer, at: number): number {
  let value = 0;
  for (let i = at; i < at + 4; i++) {
    const byte = body[i];
    if (byte === undefined) return -1;
    let digit: number;
    if (byte >= 0x30 && byte <= 0x39) digit = byte - 0x30;
    else if (byte >= 0x41 && byte <= 0x46) digit = byte - 0x37;
    else if (byte >= 0x61 && byte <= 0x66) digit = byte - 0x57;
    else return -1;
    value = value * 16 + digit;
  }
  return value;
}

function writeUtf8(out: Buffer, at: number, point: number): number {
  let i = at;
  if (point < 0x80) {
    out[i++] = point;
  } else if (point < 0x800) {
    out[i++] = 0xc0 | (point >> 6);
    out[i++] = 0x80 | (point & 0x3f);
  } else if (point < 0x10000) {
    out[i++] = 0xe0 | (point >> 12);
    out[i++] = 0x80 | ((point >> 6) & 0x3f);
    out[i++] = 0x80 | (point & 0x3f);
  } else {
    out[i++] = 0xf0 | (point >> 18);
    out[i++] = 0x80 | ((point >> 12) & 0x3f);
    out[i++] = 0x80 | ((point >> 6) & 0x3f);
    out[i++] = 0x80 | (point & 0x3f);
  }
  return i;
}
