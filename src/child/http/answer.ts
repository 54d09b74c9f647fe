/**
 * Reading the endpoint's answer: the outcome table of docs/http-contract.md for a 200 body (or one
 * final ndjson line), and the Retry-After of a 429/503. Pure functions of bytes and headers: no
 * request, no socket, no timer.
 */
import type { JobOutcome } from '../job.js';
import { FailureCause, MAX_TIMER_MS, TransientCause } from '../job.js';
import { rawHeaderValue } from './raw-headers.js';
import { responseBytes } from './response-body.js';

/** INT32 range: gearman_ret is a C int in libgearman; the original crashed on values ≥ 2^31. */
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
/** libgearman's GEARMAN_LOST_CONNECTION: "drop the connection so gearmand re-queues the job". */
export const GEARMAN_RET_LOST_CONNECTION = 14;
const PREVIEW_CHARS = 64;

/** The first characters of a body, quoted, for a failure reason. */
export function preview(body: Buffer): string {
  return JSON.stringify(body.subarray(0, PREVIEW_CHARS * 4).toString('utf8').slice(0, PREVIEW_CHARS));
}

/** The answer almost every endpoint gives, byte for byte, around the result string. */
const SUCCESS_HEAD = Buffer.from('{"gearman_ret":0,"response_string":"', 'latin1');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const CLOSE_BRACE = 0x7d;

/**
 * The result bytes of a body that is exactly `{"gearman_ret":0,"response_string":"…"}` with a string
 * without escapes or control characters, else null. Those bytes are what interpretBody's general path
 * delivers (the bytes between the quotes, valid UTF-8 or not), without the parse, the string or the
 * copy (the hot path of every job).
 */
function plainSuccessResult(body: Buffer): Buffer | null {
  const end = body.length - 2;
  const start = SUCCESS_HEAD.length;
  if (end < start || body[end] !== QUOTE || body[end + 1] !== CLOSE_BRACE) return null;
  // Byte by byte: Buffer#compare with ranges allocates two views per call.
  for (let i = 0; i < start; i++) if (body[i] !== SUCCESS_HEAD[i]) return null;
  for (let i = start; i < end; i++) {
    const byte = body[i] as number;
    if (byte < 0x20 || byte === QUOTE || byte === BACKSLASH) return null;
  }
  return body.subarray(start, end);
}

/**
 * The outcome table (docs/http-contract.md), for an HTTP 200 body. Success needs a JSON object with
 * gearman_ret the integer 0 and response_string a string; 14 re-queues; any other integer fails;
 * everything else is invalid.
 */
export function interpretBody(body: Buffer): JobOutcome {
  const plain = plainSuccessResult(body);
  if (plain !== null) return { kind: 'complete', result: plain };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { kind: 'fail', cause: FailureCause.HTTP, reason: `response body is not JSON (${body.length} bytes: ${preview(body)})` };
  }
  return interpretAnswer(body, parsed);
}

/**
 * The bytes of an `exception` member: a string's UTF-8, any other JSON value's JSON text; null when
 * absent or null.
 */
function exceptionBytes(value: unknown): Buffer | null {
  if (value === undefined || value === null) return null;
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8');
}

/** interpretBody for an answer already parsed: `body` is the bytes `parsed` came from (one ndjson line, or the whole body). */
export function interpretAnswer(body: Buffer, parsed: unknown): JobOutcome {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const root = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed;
    return { kind: 'fail', cause: FailureCause.HTTP, reason: `response JSON root is ${root}, not an object` };
  }
  const response = parsed as Record<string, unknown>;
  const ret = response.gearman_ret;
  if (ret === undefined) return { kind: 'fail', cause: FailureCause.HTTP, reason: 'response has no gearman_ret' };
  if (typeof ret !== 'number' || !Number.isInteger(ret)) {
    return { kind: 'fail', cause: FailureCause.HTTP, reason: `gearman_ret is not an integer: ${JSON.stringify(ret)?.slice(0, PREVIEW_CHARS)}` };
  }
  if (ret < INT32_MIN || ret > INT32_MAX) {
    return { kind: 'fail', cause: FailureCause.HTTP, reason: `gearman_ret ${ret} is outside the 32-bit integer range` };
  }
  if (ret === 0) {
    const text = response.response_string;
    if (typeof text !== 'string') {
      return { kind: 'fail', cause: FailureCause.HTTP, reason: `response_string is ${text === undefined ? 'missing' : `not a string (${text === null ? 'null' : typeof text})`}` };
    }
    // The bytes the endpoint sent, U+0000 (the original truncated the result there) and invalid UTF-8 included.
    const result = responseBytes(body, text, response.response_encoding);
    if (typeof result === 'string') return { kind: 'fail', cause: FailureCause.HTTP, reason: result };
    return { kind: 'complete', result };
  }
  if (ret === GEARMAN_RET_LOST_CONNECTION) return { kind: 'requeue' };
  const exception = exceptionBytes(response.exception);
  const withException = exception === null ? '' : ` with exception ${preview(exception)}`;
  const retryAfter = response.retry_after;
  if (typeof retryAfter === 'number' && Number.isFinite(retryAfter) && retryAfter >= 0) {
    const reason = `endpoint answered gearman_ret ${ret}${withException} and asked for a retry after ${retryAfter} s`;
    const outcome: JobOutcome = { kind: 'transient', cause: TransientCause.ENDPOINT, reason, retryAfterMs: Math.round(retryAfter * 1000) };
    if (exception !== null) outcome.exception = exception;
    return outcome;
  }
  const outcome: JobOutcome = { kind: 'fail', cause: FailureCause.ENDPOINT, reason: `endpoint answered gearman_ret ${ret}${withException}` };
  if (exception !== null) outcome.exception = exception;
  return outcome;
}


/** Retry-After in milliseconds: delta-seconds or an HTTP date (RFC 9110); null when absent or unreadable. */
export function retryAfterMs(rawHeaders: readonly Buffer[], now = Date.now()): number | null {
  const raw = rawHeaderValue(rawHeaders, RETRY_AFTER);
  if (raw === null) return null;
  const value = raw.trim();
  if (/^[0-9]+$/.test(value)) return Math.min(Number(value), MAX_TIMER_MS / 1000) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

const RETRY_AFTER = Buffer.from('retry-after', 'latin1');

