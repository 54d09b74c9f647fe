/**
 * Runs one Gearman job as one HTTP POST to the pool's job_processing_uri (docs/http-contract.md) and turns the
 * endpoint's answer into exactly one outcome.
 *
 * One HTTP connection pool per runner (http-client.ts), keep-alive, `connections` = worker_count: a
 * slot runs at most one job, so the pool never queues a request behind another one (the original
 * opened a TCP connection per job). Each request is answered through callbacks: no stream, no promise
 * per job; the two response headers we read come from the raw header list.
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { PoolTls, RequestFormat } from '../config/types.js';
import { ErrorCode, HttpRequestError, HttpResponseError, ShuttingDownError } from '../errors.js';
import { NdjsonAnswer, isNdjsonResponse } from './ndjson-answer.js';
import type { ProgressUpdate } from './ndjson-answer.js';
import type { JobTrace } from './trace-context.js';
import { CLOSED_AFTER_HANDSHAKE, RequestSigner, tlsAdvice, tlsConnectOptions, webhookId } from './endpoint-security.js';
import { HttpFailure, HttpPool, closedUnanswered } from './http-client.js';
import type { HttpExchange, HttpResponseListener } from './http-client.js';
import { rawHeaderValue } from './raw-headers.js';
import { responseBytes } from './response-body.js';

/** Default cap on a response body: far above any sane `{"gearman_ret":0,…}`, far below memory trouble. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Below this a multipart body is assembled into one buffer: a copy is cheaper than the HTTP client's iterable writer. */
const MULTIPART_COPY_LIMIT = 64 * 1024;
/** INT32 range: gearman_ret is a C int in libgearman; the original crashed on values ≥ 2^31. */
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
/** libgearman's GEARMAN_LOST_CONNECTION: "drop the connection so gearmand re-queues the job". */
export const GEARMAN_RET_LOST_CONNECTION = 14;
/** gearman_ret 14 re-queues of one job handle before the job is failed instead (the original re-ran it forever). */
export const MAX_REQUEUES = 5;
const PREVIEW_CHARS = 64;
/** setTimeout's ceiling: a longer delay is silently turned into 1 ms by Node. */
export const MAX_TIMER_MS = 0x7fffffff;

/** A job as assigned by gearmand. Buffers are views into the parser's chunks (never rewritten). */
export interface Job {
  handle: Buffer;
  handleText: string;
  functionName: string;
  unique: Buffer;
  uniqueText: string;
  workload: Buffer;
  /** Label of the gearmand the job came from. */
  server: string;
}

export const FailureCause = {
  /** The endpoint answered validly with a gearman_ret other than 0 and 14. */
  ENDPOINT: 'endpoint',
  /** Transport failure, non-200 status or an invalid response body. */
  HTTP: 'http',
  /** No answer within max_running_time of the assignment. */
  TIMEOUT: 'timeout',
  /** The slot was stopped or destroyed before the job finished. */
  SHUTDOWN: 'shutdown',
  /** gearman_ret 14 for the same handle more than the re-queue limit allows. */
  REQUEUE_LIMIT: 'requeue-limit',
  /** The workload was over the pool's max_workload_bytes: failed unread, no request made. */
  WORKLOAD_LIMIT: 'workload-limit',
} as const;
export type FailureCause = (typeof FailureCause)[keyof typeof FailureCause];

/** Why an attempt's outcome is worth another attempt. */
export const TransientCause = {
  /** Refused, reset, DNS, TLS handshake: no answer at all. */
  CONNECT: 'connect',
  /** No answer within max_running_time of the attempt's start. */
  TIMEOUT: 'timeout',
  /** A status of the pool's retry_on_status list (408, 429, 503…). */
  STATUS: 'status',
  /** The endpoint answered `{"gearman_ret": …, "retry_after": S}`: it asked for a later retry. */
  ENDPOINT: 'endpoint',
} as const;
export type TransientCause = (typeof TransientCause)[keyof typeof TransientCause];

export type JobOutcome =
  | { kind: 'complete'; result: Buffer }
  /** `exception`: the endpoint's `exception` member, sent to gearmand as WORK_EXCEPTION instead of WORK_FAIL. */
  | { kind: 'fail'; cause: FailureCause; reason: string; exception?: Buffer }
  | { kind: 'requeue' }
  /**
   * Worth another attempt; the slot decides (retry after a backoff, hand back to gearmand, or fail in
   * fail_fast mode). `retryAfterMs` is what the endpoint asked for (Retry-After, retry_after), else null.
   * `exception` as for a failure: used if the slot gives up on the job after this attempt.
   */
  | { kind: 'transient'; cause: TransientCause; reason: string; retryAfterMs: number | null; exception?: Buffer };

/** What gearmand is finally told (or not, for a re-queue): every outcome but a transient one. */
export type FinalOutcome = Exclude<JobOutcome, { kind: 'transient' }>;
/** An outcome gearmand is told (WORK_COMPLETE, WORK_EXCEPTION, WORK_FAIL); a requeue is told by dropping the socket. */
export type AnswerOutcome = Exclude<FinalOutcome, { kind: 'requeue' }>;

export interface JobListener {
  onJobOutcome(outcome: JobOutcome): void;
  /** A progress line of a streamed (application/x-ndjson) answer, as it arrives, before the outcome. */
  onJobProgress(update: ProgressUpdate): void;
}

export interface JobRunnerOptions {
  uri: string;
  format: RequestFormat;
  /** Extra request headers, lower-cased names. */
  headers: Record<string, string>;
  maxRunningTimeMs: number;
  /** HTTP connections: the pool's worker_count (at least 1). */
  connections: number;
  maxResponseBytes?: number;
  /** false: `connection: close` on every request, a new TCP connection per job (the original's way). */
  keepAlive?: boolean;
  /** Statuses that are transient outcomes instead of permanent failures. */
  retryOnStatus?: readonly number[];
  /** Told once when responses look stalled by Nagle + delayed ACK on reused connections (see #noteBodyGap). */
  onStalledBodies?: (gapMs: number) => void;
  /** Standard Webhooks keys (base64 of the secret bytes); none or empty: requests are not signed. */
  signingKeys?: readonly string[];
  /** Sent as `authorization: Bearer <token>`. */
  bearerToken?: string | null;
  /** CA, client certificate and server name of an https endpoint; null: Node's defaults. */
  tls?: PoolTls | null;
}

/** The headers every POST carries so an endpoint can tell a redelivery (documented in docs/http-contract.md). */
export const ATTEMPT_HEADER = 'driveshaft-attempt';
export const FIRST_ATTEMPT_HEADER = 'driveshaft-first-attempt';
/** The job's identity as headers, percent-encoded (see headerValue), and its W3C trace context. */
export const FUNCTION_HEADER = 'driveshaft-function';
export const JOB_HANDLE_HEADER = 'driveshaft-job-handle';
export const UNIQUE_HEADER = 'driveshaft-unique';
export const TRACEPARENT_HEADER = 'traceparent';
/** Every header the runner sets per request: a pool's own headers may not use these names. */
export const JOB_HEADERS: readonly string[] = [ATTEMPT_HEADER, FIRST_ATTEMPT_HEADER, FUNCTION_HEADER, JOB_HANDLE_HEADER, UNIQUE_HEADER, TRACEPARENT_HEADER];

/** Which attempt of a job a POST is. */
export interface AttemptInfo {
  /** 1 for the first POST of a job; counts across hand-backs to gearmand this child saw. */
  attempt: number;
  /** Date.now() of the job's first attempt. */
  firstAttemptAt: number;
  /** The job's trace, remembered with a job handed back so its next assignment here keeps the trace id. */
  trace?: JobTrace;
}

/**
 * An endpoint without TCP_NODELAY that writes headers and body separately stalls each response on a
 * reused connection until the client's delayed ACK (40 ms on Linux). A body this long after its headers,
 * this many times in a row, is reported once.
 */
const STALL_MIN_MS = 35;
const STALL_MAX_MS = 60;
const STALLS_TO_REPORT = 8;

/** Headers the runner sets itself (or the HTTP client refuses): a per-pool header must not override them. */
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

function preview(body: Buffer): string {
  return JSON.stringify(body.subarray(0, PREVIEW_CHARS * 4).toString('utf8').slice(0, PREVIEW_CHARS));
}

/**
 * `CODE: message (cause)`, and for a TLS failure of an https endpoint what to change: the code alone
 * rarely says which setting.
 */
function errorReason(error: unknown, https = false, tls: PoolTls | null = null): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = (error as { cause?: unknown }).cause;
  let reason = typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  if (cause instanceof Error && cause.message !== error.message) reason += ` (${cause.message})`;
  if (https && typeof code === 'string') {
    const advice = tlsAdvice(closedUnanswered(error) ? CLOSED_AFTER_HANDSHAKE : code, tls);
    if (advice !== null) reason += `; ${advice}`;
  }
  return reason;
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
  if (body.compare(SUCCESS_HEAD, 0, start, 0, start) !== 0) return null;
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

/** Per-runner request shape, computed once. */
interface RequestTemplate {
  path: string;
  format: RequestFormat;
  /** Flat [name, value, …] array: the HTTP client's cheapest header form. */
  headers: string[];
  boundary: string;
  maxRunningTimeMs: number;
  maxResponseBytes: number;
  keepAlive: boolean;
  retryOnStatus: ReadonlySet<number>;
  https: boolean;
  tls: PoolTls | null;
}

export class JobRunner {
  readonly #pool: HttpPool;
  readonly #template: RequestTemplate;
  /** `"Sum"` → `"\"Sum\""`: function names repeat on every job; escape each once. */
  readonly #functionJson = new Map<string, string>();
  /** Function names as Driveshaft-Function values, percent-encoded once each. */
  readonly #functionHeader = new Map<string, string>();
  readonly #connections: number;
  readonly #onStalledBodies: ((gapMs: number) => void) | null;
  /** null when the pool signs nothing: an unsigned job pays no more than the test. */
  readonly #signer: RequestSigner | null;
  #stallRun = 0;
  #stallReported = false;
  #inFlight = 0;
  #closed: Promise<void> | null = null;

  constructor(options: JobRunnerOptions) {
    const url = new URL(options.uri);
    const boundary = newBoundary();
    const contentType = options.format === 'multipart' ? `multipart/form-data; boundary=${boundary}` : 'application/json';
    const headers: string[] = ['content-type', contentType];
    for (const [name, value] of Object.entries(options.headers)) {
      if (!RESERVED_HEADERS.has(name.toLowerCase())) headers.push(name, value);
    }
    if (options.bearerToken != null) headers.push('authorization', `Bearer ${options.bearerToken}`);
    const tls = options.tls ?? null;
    this.#signer = options.signingKeys !== undefined && options.signingKeys.length > 0 ? new RequestSigner(options.signingKeys) : null;
    this.#template = {
      path: `${url.pathname}${url.search}`,
      format: options.format,
      headers,
      boundary,
      maxRunningTimeMs: options.maxRunningTimeMs,
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      keepAlive: options.keepAlive ?? true,
      retryOnStatus: new Set(options.retryOnStatus ?? []),
      https: url.protocol === 'https:',
      tls,
    };
    this.#onStalledBodies = options.onStalledBodies ?? null;
    this.#connections = Math.max(1, options.connections);
    // max_running_time is enforced by the slot's timer from the job's assignment, not by the client.
    this.#pool = new HttpPool(url.origin, { connections: this.#connections, tls: tls === null ? null : tlsConnectOptions(tls) });
  }

  get maxRunningTimeMs(): number {
    return this.#template.maxRunningTimeMs;
  }

  /** The HTTP pool's connection cap: the worker_count this runner was sized for. */
  get connections(): number {
    return this.#connections;
  }

  /** Requests started and not yet settled (for tests and graceful close). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Starts the POST for `job`; the outcome is delivered once to `listener`. max_running_time is the
   * caller's to enforce (the slot keeps one lazily re-armed timer instead of one per job), by
   * `abort()`ing the returned request with a JobTimeoutError.
   */
  start(job: Job, listener: JobListener, attempt: AttemptInfo, traceparent: string): JobRequest {
    const request = new JobRequest(this, listener, this.#template);
    this.#inFlight++;
    if (this.#closed !== null) {
      request.abort(new ShuttingDownError('the job runner is closed'));
      return request;
    }
    let body: Buffer | string | Buffer[];
    let headers = this.#template.headers;
    if (this.#template.format === 'multipart') {
      const built = this.#multipartBody(job);
      body = built.body;
      headers = built.headers;
    } else {
      body = this.#jsonBody(job);
    }
    // A fresh array per request: the client keeps the options of a request it has to queue.
    headers = [
      ...headers,
      ATTEMPT_HEADER,
      String(attempt.attempt),
      FIRST_ATTEMPT_HEADER,
      isoTime(attempt.firstAttemptAt),
      TRACEPARENT_HEADER,
      traceparent,
      FUNCTION_HEADER,
      this.#functionHeaderValue(job.functionName),
      JOB_HANDLE_HEADER,
      headerValue(job.handle, job.handleText),
      UNIQUE_HEADER,
      headerValue(job.unique, job.uniqueText),
    ];
    // Signed last, over the body exactly as built above; each attempt gets a fresh timestamp.
    if (this.#signer !== null) headers.push(...this.#signer.headers(webhookId(job.unique, job.handle), body));
    try {
      const exchange = this.#pool.dispatch(
        {
          path: this.#template.path,
          method: 'POST',
          headers,
          body,
          // keep_alive false: `connection: close`, and the socket closes after the response.
          closeConnection: !this.#template.keepAlive,
          // The client takes SNI from the request before the pool's TLS options; a set name must win.
          serverName: this.#template.tls?.serverName ?? undefined,
        },
        request,
      );
      request.started(exchange);
    } catch (error) {
      request.abort(new HttpRequestError(`request could not be started: ${errorReason(error, this.#template.https, this.#template.tls)}`, { cause: error }));
    }
    return request;
  }

  /** @internal Called once per request when its outcome is settled. */
  settled(): void {
    this.#inFlight--;
  }

  /**
   * @internal How long a 200 answer's body came after its headers. A run of ~40 ms gaps on kept-alive
   * connections is the Nagle + delayed-ACK stall: reported once per runner, with its cure.
   */
  noteBodyGap(gapMs: number): void {
    if (this.#stallReported || !this.#template.keepAlive) return;
    if (gapMs >= STALL_MIN_MS && gapMs < STALL_MAX_MS) {
      if (++this.#stallRun >= STALLS_TO_REPORT) {
        this.#stallReported = true;
        this.#onStalledBodies?.(gapMs);
      }
    } else {
      this.#stallRun = 0;
    }
  }

  /** Graceful: requests in flight finish, then the keep-alive connections close. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#pool.close().catch(() => undefined);
    return this.#closed;
  }

  /** Hard: in-flight requests are aborted (their outcomes are failures), connections closed. Idempotent. */
  destroy(): Promise<void> {
    const destroyed = this.#pool.destroy().catch(() => undefined);
    this.#closed ??= destroyed;
    return destroyed;
  }

  #functionHeaderValue(functionName: string): string {
    let value = this.#functionHeader.get(functionName);
    if (value === undefined) {
      value = headerValue(Buffer.from(functionName, 'utf8'));
      if (this.#functionHeader.size < 1024) this.#functionHeader.set(functionName, value);
    }
    return value;
  }

  #jsonBody(job: Job): string {
    let fn = this.#functionJson.get(job.functionName);
    if (fn === undefined) {
      fn = JSON.stringify(job.functionName);
      if (this.#functionJson.size < 1024) this.#functionJson.set(job.functionName, fn);
    }
    const head = `{"function_name":${fn},"job_handle":${JSON.stringify(job.handleText)},"unique":${JSON.stringify(job.uniqueText)},"workload":`;
    // A workload that is not valid UTF-8 cannot be a JSON string without loss: base64 it.
    if (isUtf8(job.workload)) return `${head}${JSON.stringify(job.workload.toString('utf8'))}}`;
    return `${head}${JSON.stringify(job.workload.toString('base64'))},"workload_encoding":"base64"}`;
  }

  /**
   * The original's wire format: four parts, each with only a Content-Disposition header, workload
   * bytes raw. Large workloads go out as [head, workload, tail] so they are never copied.
   */
  #multipartBody(job: Job): { body: Buffer | Buffer[]; headers: string[] } {
    let boundary = this.#template.boundary;
    let headers = this.#template.headers;
    // A body containing the boundary would cut the part short. The boundary is 48 random hex
    // characters, so this practically never happens; when it does this request gets its own.
    while (containsBoundary(job, boundary)) {
      boundary = newBoundary();
      headers = headers.slice();
      headers[1] = `multipart/form-data; boundary=${boundary}`;
    }
    const dash = `--${boundary}\r\nContent-Disposition: form-data; name=`;
    const head = Buffer.concat([
      Buffer.from(`${dash}"function_name"\r\n\r\n${job.functionName}\r\n${dash}"job_handle"\r\n\r\n`, 'utf8'),
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

function newBoundary(): string {
  return `driveshaft-${randomBytes(24).toString('hex')}`;
}

function containsBoundary(job: Job, boundary: string): boolean {
  return (
    job.workload.includes(boundary, 0, 'latin1') ||
    job.unique.includes(boundary, 0, 'latin1') ||
    job.handle.includes(boundary, 0, 'latin1') ||
    job.functionName.includes(boundary)
  );
}

/**
 * One job's HTTP exchange, as the HTTP client's listener. `#done` guarantees exactly one outcome
 * whatever order the client's callbacks and our aborts (timeout, shutdown) come in.
 */
export class JobRequest implements HttpResponseListener {
  readonly #runner: JobRunner;
  readonly #listener: JobListener;
  readonly #template: RequestTemplate;
  /** The client's handle on the request once dispatched: aborts it. */
  #exchange: HttpExchange | null = null;
  #status = 0;
  /** performance.now() when a 200's headers arrived (the stall detector's start). */
  #headersAt = 0;
  /** Retry-After of a 429/503, in milliseconds, else null. */
  #retryAfterMs: number | null = null;
  #chunks: Buffer[] = [];
  #bytes = 0;
  /** Set when a 200 answer is application/x-ndjson: its lines are handled as they arrive. */
  #ndjson: NdjsonAnswer | null = null;
  #done = false;
  /** Set when we aborted: the outcome is already settled; the client's onFailure then only cleans up. */
  #abortReason: Error | null = null;

  constructor(runner: JobRunner, listener: JobListener, template: RequestTemplate) {
    this.#runner = runner;
    this.#listener = listener;
    this.#template = template;
  }

  get done(): boolean {
    return this.#done;
  }

  /** The endpoint's status code once its headers arrived, else 0 (metrics: a response vs none). */
  get httpStatus(): number {
    return this.#status;
  }

  /** @internal The runner hands over the dispatched request, so an abort can stop it. */
  started(exchange: HttpExchange): void {
    this.#exchange = exchange;
    if (this.#abortReason !== null) exchange.abort(this.#abortReason);
  }

  /**
   * Ends the job now with a failure whose cause follows `reason`'s code (timeout, shutdown or a request
   * error). Settles the outcome at once, even if the client has not yet handed the request to a socket.
   */
  abort(reason: Error): void {
    if (this.#done) return;
    this.#abortReason = reason;
    const code = (reason as { code?: unknown }).code;
    if (code === ErrorCode.JOB_TIMEOUT) {
      this.#settle({ kind: 'transient', cause: TransientCause.TIMEOUT, reason: reason.message, retryAfterMs: null });
    } else {
      this.#settle({ kind: 'fail', cause: code === ErrorCode.SHUTTING_DOWN ? FailureCause.SHUTDOWN : FailureCause.HTTP, reason: reason.message });
    }
    this.#exchange?.abort(reason);
  }

  // ── HTTP client listener ─────────────────────────────────────────────────────────────────────────

  onHeaders(status: number, rawHeaders: readonly Buffer[]): void {
    this.#status = status;
    if (status === 200) {
      this.#headersAt = performance.now();
      if (isNdjsonResponse(rawHeaders)) this.#ndjson = new NdjsonAnswer((update) => this.#progress(update));
    } else if (status === 429 || status === 503) this.#retryAfterMs = retryAfterMs(rawHeaders);
  }

  onData(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#template.maxResponseBytes) {
      this.abort(new HttpResponseError(`response body is over the ${this.#template.maxResponseBytes}-byte limit`));
      return;
    }
    if (this.#ndjson !== null) {
      const problem = this.#ndjson.push(chunk);
      if (problem !== null) this.abort(new HttpResponseError(problem));
      return;
    }
    // Bodies of non-200 answers are read (so the connection stays reusable) but not kept.
    if (this.#status === 200) this.#chunks.push(chunk);
  }

  #progress(update: ProgressUpdate): void {
    if (!this.#done) this.#listener.onJobProgress(update);
  }

  onEnd(): void {
    if (this.#done) return;
    const status = this.#status;
    if (status !== 200) {
      if (this.#template.retryOnStatus.has(status)) {
        this.#settle({ kind: 'transient', cause: TransientCause.STATUS, reason: `endpoint answered HTTP ${status}`, retryAfterMs: this.#retryAfterMs });
      } else {
        this.#settle({ kind: 'fail', cause: FailureCause.HTTP, reason: `endpoint answered HTTP ${status}` });
      }
      return;
    }
    if (this.#ndjson !== null) {
      // A streamed answer's gaps are the endpoint's pace, not a Nagle stall: not measured.
      const final = this.#ndjson.end();
      this.#settle(typeof final === 'string' ? { kind: 'fail', cause: FailureCause.HTTP, reason: final } : interpretAnswer(final.line, final.parsed));
      return;
    }
    this.#runner.noteBodyGap(performance.now() - this.#headersAt);
    const chunks = this.#chunks;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.#bytes);
    this.#settle(interpretBody(body));
  }

  onFailure(error: Error, kind: HttpFailure): void {
    if (this.#done) return;
    if (kind === HttpFailure.UNSOLICITED_CONTINUE) {
      // The endpoint answered, wrongly, and will again: a permanent failure, named.
      const reason = `the endpoint sent an unsolicited "100 Continue", which undici (the HTTP client) does not accept: configure the endpoint's server to send only the final response (request failed: ${errorReason(error)})`;
      this.#settle({ kind: 'fail', cause: FailureCause.HTTP, reason });
    } else if (kind === HttpFailure.UPGRADE) {
      // Only reachable if the endpoint answers 101 to a POST: it answered, wrongly, so it is permanent.
      this.#settle({ kind: 'fail', cause: FailureCause.HTTP, reason: 'endpoint tried to upgrade the connection' });
    } else {
      // No complete answer: refused, reset, DNS, TLS, a socket closed mid-response. Nothing says the
      // endpoint meant to fail the job, so another attempt may well succeed.
      this.#settle({ kind: 'transient', cause: TransientCause.CONNECT, reason: `request failed: ${errorReason(error, this.#template.https, this.#template.tls)}`, retryAfterMs: null });
    }
  }

  #settle(outcome: JobOutcome): void {
    if (this.#done) return;
    this.#done = true;
    this.#chunks = [];
    this.#ndjson = null;
    this.#runner.settled();
    this.#listener.onJobOutcome(outcome);
  }
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

let isoMs = -1;
let isoText = '';

/** Date.toISOString, computed once per millisecond: thousands of jobs a second share a few hundred stamps. */
function isoTime(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}
