/**
 * Building a job's POST: the body (JSON, or the original's multipart) and the headers (the pool's own,
 * the job's identity, its attempt and trace, the signature). Computed per pool once where it can be
 * (content type, the pool's headers, escaped function names) and per request only for what differs.
 * No sending here: the runner dispatches what this returns.
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { RequestFormat } from '../../config/types.js';
import type { AttemptInfo, Job } from '../job.js';
import { RequestSigner, webhookId } from './endpoint-security.js';

/** Below this a multipart body is assembled into one buffer: a copy is cheaper than the HTTP client's iterable writer. */
const MULTIPART_COPY_LIMIT = 64 * 1024;

/** The headers every POST carries so an endpoint can tell a redelivery (documented in docs/http-contract.md). */
export const ATTEMPT_HEADER = 'driveshaft-attempt';
export const FIRST_ATTEMPT_HEADER = 'driveshaft-first-attempt';
/** The job's identity as headers, percent-encoded (see headerValue), and its W3C trace context. */
export const FUNCTION_HEADER = 'driveshaft-function';
export const JOB_HANDLE_HEADER = 'driveshaft-job-handle';
export const UNIQUE_HEADER = 'driveshaft-unique';
export const TRACEPARENT_HEADER = 'traceparent';
/** Every header the builder sets per request: a pool's own headers may not use these names. */
export const JOB_HEADERS: readonly string[] = [ATTEMPT_HEADER, FIRST_ATTEMPT_HEADER, FUNCTION_HEADER, JOB_HANDLE_HEADER, UNIQUE_HEADER, TRACEPARENT_HEADER];

/** Headers the builder sets itself (or the HTTP client refuses): a per-pool header must not override them. */
const RESERVED_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', ...JOB_HEADERS]);

const HEX_UPPER = '0123456789ABCDEF';

/**
 * Bytes as a header value that any HTTP stack passes through unchanged: printable ASCII other than `%`
 * (0x21–0x7E) as is, every other byte (space, `%`, control characters, bytes of non-ASCII UTF-8 or
 * invalid UTF-8) as `%XX`. So the value is the RFC 3986 percent-encoding of the exact bytes: any
 * percent-decoder (decodeURIComponent for UTF-8, rawurldecode in PHP) gets them back, and a unique with
 * CR, LF or NUL-free binary cannot inject or break a header. The common case (a UUID, `H:host:42`)
 * is returned without a copy.
 */
export function headerValue(bytes: Buffer, decoded?: string): string {
  let i = 0;
  while (i < bytes.length) {
    const byte = bytes[i] as number;
    if (byte < 0x21 || byte > 0x7e || byte === 0x25) break;
    i++;
  }
  // Printable ASCII only: any decoding of the bytes is the value (the job's text fields already are one).
  if (i === bytes.length) return decoded ?? bytes.toString('latin1');
  let out = bytes.toString('latin1', 0, i);
  for (; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if (byte < 0x21 || byte > 0x7e || byte === 0x25) out += `%${HEX_UPPER[byte >> 4] as string}${HEX_UPPER[byte & 15] as string}`;
    else out += String.fromCharCode(byte);
  }
  return out;
}

export interface RequestBuilderOptions {
  format: RequestFormat;
  /** Extra request headers, lower-cased names. */
  headers: Record<string, string>;
  /** Standard Webhooks keys (base64 of the secret bytes); none or empty: requests are not signed. */
  signingKeys?: readonly string[];
  /** Sent as `authorization: Bearer <token>`. */
  bearerToken?: string | null;
}

/** One request's body and headers (a fresh array: the HTTP client keeps the options of a request it has to queue). */
export interface BuiltRequest {
  body: string | Buffer | Buffer[];
  headers: string[];
}

export class RequestBuilder {
  readonly #format: RequestFormat;
  /** Flat [name, value, …]: the HTTP client's cheapest header form. */
  readonly #headers: string[];
  readonly #boundary: string;
  /** Function names repeat on every job: each one's body member and header value, computed once. */
  readonly #functionForms = new Map<string, FunctionForms>();
  /** null when the pool signs nothing: an unsigned job pays no more than the test. */
  readonly #signer: RequestSigner | null;

  constructor(options: RequestBuilderOptions) {
    this.#format = options.format;
    this.#boundary = newBoundary();
    const contentType = options.format === 'multipart' ? `multipart/form-data; boundary=${this.#boundary}` : 'application/json';
    const headers: string[] = ['content-type', contentType];
    for (const [name, value] of Object.entries(options.headers)) {
      if (!RESERVED_HEADERS.has(name.toLowerCase())) headers.push(name, value);
    }
    if (options.bearerToken != null) headers.push('authorization', `Bearer ${options.bearerToken}`);
    this.#headers = headers;
    this.#signer = options.signingKeys !== undefined && options.signingKeys.length > 0 ? new RequestSigner(options.signingKeys) : null;
  }

  build(job: Job, attempt: AttemptInfo, traceparent: string): BuiltRequest {
    let body: Buffer | string | Buffer[];
    let headers = this.#headers;
    const fn = this.#formsOf(job);
    if (this.#format === 'multipart') {
      const built = this.#multipartBody(job);
      body = built.body;
      headers = built.headers;
    } else {
      body = jsonBody(job, fn);
    }
    headers = [
      ...headers,
      ATTEMPT_HEADER,
      String(attempt.attempt),
      FIRST_ATTEMPT_HEADER,
      isoTime(attempt.firstAttemptAt),
      TRACEPARENT_HEADER,
      traceparent,
      FUNCTION_HEADER,
      fn.header,
      JOB_HANDLE_HEADER,
      headerValue(job.handle, job.handleText),
      UNIQUE_HEADER,
      headerValue(job.unique, job.uniqueText),
    ];
    // Signed last, over the body exactly as built above; each attempt gets a fresh timestamp.
    if (this.#signer !== null) headers.push(...this.#signer.headers(webhookId(job.unique, job.handle), body));
    return { body, headers };
  }

  #formsOf(job: Job): FunctionForms {
    // Only names that decoded without loss are cached: two names that are not UTF-8 can share one text.
    if (!exactText(job.functionName, job.functionBytes)) return functionForms(job.functionBytes, null);
    let forms = this.#functionForms.get(job.functionName);
    if (forms === undefined) {
      forms = functionForms(job.functionBytes, job.functionName);
      if (this.#functionForms.size < 1024) this.#functionForms.set(job.functionName, forms);
    }
    return forms;
  }

  /**
   * The original's wire format: four parts, each with only a Content-Disposition header, workload
   * bytes raw. Large workloads go out as [head, workload, tail] so they are never copied.
   */
  #multipartBody(job: Job): { body: Buffer | Buffer[]; headers: string[] } {
    let boundary = this.#boundary;
    let headers = this.#headers;
    // A body containing the boundary would cut the part short. The boundary is 48 random hex
    // characters, so this practically never happens; when it does this request gets its own.
    while (containsBoundary(job, boundary)) {
      boundary = newBoundary();
      headers = headers.slice();
      headers[1] = `multipart/form-data; boundary=${boundary}`;
    }
    const dash = `--${boundary}\r\nContent-Disposition: form-data; name=`;
    const head = Buffer.concat([
      Buffer.from(`${dash}"function_name"\r\n\r\n`, 'latin1'),
      job.functionBytes,
      Buffer.from(`\r\n${dash}"job_handle"\r\n\r\n`, 'latin1'),
      job.handle,
      Buffer.from(`\r\n${dash}"unique"\r\n\r\n`, 'latin1'),
      job.unique,
      Buffer.from(`\r\n${dash}"workload"\r\n\r\n`, 'latin1'),
    ]);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
    const length = head.length + job.workload.length + tail.length;
    if (job.workload.length < MULTIPART_COPY_LIMIT) {
      return { body: Buffer.concat([head, job.workload, tail], length), headers };
    }
    // A list body is written chunk by chunk; with content-length set it is not chunked.
    return { body: [head, job.workload, tail], headers: [...headers, 'content-length', String(length)] };
  }
}

function jsonBody(job: Job, fn: FunctionForms): string {
  const unique = jsonBytes(job.unique, exactText(job.uniqueText, job.unique) ? job.uniqueText : null, 'unique');
  const head = `{"function_name":${fn.json},"job_handle":${JSON.stringify(job.handleText)},"unique":${unique},"workload":`;
  // A workload that is not valid UTF-8 cannot be a JSON string without loss: base64 it.
  if (isUtf8(job.workload)) return `${head}${JSON.stringify(job.workload.toString('utf8'))}}`;
  return `${head}${JSON.stringify(job.workload.toString('base64'))},"workload_encoding":"base64"}`;
}

/** A function name as the JSON body's member value (with its `_encoding` member when base64) and as a header value. */
interface FunctionForms {
  json: string;
  header: string;
}

function functionForms(bytes: Buffer, text: string | null): FunctionForms {
  return { json: jsonBytes(bytes, text, 'function_name'), header: headerValue(bytes) };
}

/**
 * Whether `text`, the UTF-8 decoding of `bytes`, is exact. A lossy decoding always holds U+FFFD, so
 * the usual name or unique is settled by that scan without a second look at the bytes.
 */
function exactText(text: string, bytes: Buffer): boolean {
  return !text.includes('\uFFFD') || isUtf8(bytes);
}

/**
 * Bytes as the value of the JSON member `name`: `text`, their exact UTF-8 decoding, or when there is
 * none (null) base64 followed by `"<name>_encoding":"base64"`, as for the workload. Two uniques that
 * are not UTF-8 then stay two keys instead of collapsing into one U+FFFD text.
 */
function jsonBytes(bytes: Buffer, text: string | null, name: string): string {
  if (text !== null) return JSON.stringify(text);
  return `${JSON.stringify(bytes.toString('base64'))},"${name}_encoding":"base64"`;
}

function newBoundary(): string {
  return `driveshaft-${randomBytes(24).toString('hex')}`;
}

function containsBoundary(job: Job, boundary: string): boolean {
  return (
    job.workload.includes(boundary, 0, 'latin1') ||
    job.unique.includes(boundary, 0, 'latin1') ||
    job.handle.includes(boundary, 0, 'latin1') ||
    job.functionBytes.includes(boundary, 0, 'latin1')
  );
}

/** 9999-12-31T23:59:59.999Z: after it toISOString's year takes six digits and a sign, and its prefix another length. */
const LAST_FOUR_DIGIT_YEAR_MS = 253_402_300_799_999;

let isoMs = -1;
let isoText = '';
let isoSecond = -1;
/** `YYYY-MM-DDTHH:MM:SS.` of isoSecond. */
let isoPrefix = '';

/**
 * Date#toISOString of a Date.now() value. Thousands of jobs a second share a few hundred stamps and
 * one second: the date is formatted once a second, a new millisecond only pads three digits
 * (toISOString with its Date cost about 0.7 µs a job at 10 slots, profiled).
 */
export function isoTime(ms: number): string {
  if (ms === isoMs) return isoText;
  if (!Number.isInteger(ms) || ms < 0 || ms > LAST_FOUR_DIGIT_YEAR_MS) return new Date(ms).toISOString();
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const milli = ms - second * 1000;
  isoMs = ms;
  isoText = `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
  return isoText;
}
