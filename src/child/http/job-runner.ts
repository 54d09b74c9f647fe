/**
 * Runs one attempt of a Gearman job as one HTTP POST to the pool's job_processing_uri
 * (docs/http-contract.md) and reduces the endpoint's answer to exactly one outcome. What happens next
 * (retry, hand back, dead-letter, answer) is the delivery's decision (src/child/delivery), not this one's.
 *
 * One HTTP connection pool per runner (http-client.ts), keep-alive, `connections` = worker_count: a
 * slot runs at most one job, so the pool never queues a request behind another one (the original
 * opened a TCP connection per job). Each request is answered through callbacks: no stream, no promise
 * per job; the two response headers we read come from the raw header list.
 */
import { DEFAULT_MAX_RESPONSE_BYTES } from '../../config/types.js';
import type { PoolTls, RequestFormat } from '../../config/types.js';
import { ErrorCode, HttpRequestError, HttpResponseError, ShuttingDownError } from '../../errors.js';
import { FailureCause, TransientCause } from '../job.js';
import type { AttemptInfo, Job, JobOutcome } from '../job.js';
import { interpretAnswer, interpretBody, retryAfterMs } from './answer.js';
import { CLOSED_AFTER_HANDSHAKE, RESET_IN_HANDSHAKE, tlsAdvice, tlsConnectOptions } from './endpoint-security.js';
import { HttpFailure, HttpPool, closedUnanswered } from './http-client.js';
import type { HttpExchange, HttpResponseListener } from './http-client.js';
import { NdjsonAnswer, isNdjsonResponse } from './ndjson-answer.js';
import type { ProgressUpdate } from '../job.js';
import { RequestBuilder } from './request-builder.js';

/** Who hears how one attempt went. */
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
  /** The pool's max_response_bytes: a longer body fails the job. */
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

/**
 * An endpoint without TCP_NODELAY that writes headers and body separately stalls each response on a
 * reused connection until the client's delayed ACK (40 ms on Linux). A body this long after its headers,
 * this many times in a row, is reported once.
 */
const STALL_MIN_MS = 35;
const STALL_MAX_MS = 60;
const STALLS_TO_REPORT = 8;
const EMPTY_BODY = Buffer.alloc(0);

/**
 * `CODE: message (cause)`, and for a TLS failure of an https endpoint what to change: the code alone
 * rarely says which setting. `connecting`: the error came before a connection carried the request.
 */
function errorReason(error: unknown, https = false, tls: PoolTls | null = null, connecting = false): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const cause = (error as { cause?: unknown }).cause;
  // OpenSSL's messages end with a line break.
  const message = error.message.trimEnd();
  let reason = typeof code === 'string' ? `${code}: ${message}` : message;
  if (cause instanceof Error && cause.message !== error.message) reason += ` (${cause.message.trimEnd()})`;
  if (https && typeof code === 'string') {
    const advice = tlsAdvice(closedUnanswered(error) ? CLOSED_AFTER_HANDSHAKE : connecting && code === 'ECONNRESET' ? RESET_IN_HANDSHAKE : code, tls);
    if (advice !== null) reason += `; ${advice}`;
  }
  return reason;
}

/** Per-runner answer handling, computed once. */
interface RunnerSettings {
  maxResponseBytes: number;
  keepAlive: boolean;
  retryOnStatus: ReadonlySet<number>;
  https: boolean;
  tls: PoolTls | null;
}

export class JobRunner {
  readonly #pool: HttpPool;
  readonly #builder: RequestBuilder;
  readonly #settings: RunnerSettings;
  readonly #path: string;
  readonly #maxRunningTimeMs: number;
  readonly #connections: number;
  readonly #onStalledBodies: ((gapMs: number) => void) | null;
  #stallRun = 0;
  #stallReported = false;
  #inFlight = 0;
  #closed: Promise<void> | null = null;

  constructor(options: JobRunnerOptions) {
    const url = new URL(options.uri);
    const tls = options.tls ?? null;
    this.#builder = new RequestBuilder(options);
    this.#path = `${url.pathname}${url.search}`;
    this.#maxRunningTimeMs = options.maxRunningTimeMs;
    this.#settings = {
      maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      keepAlive: options.keepAlive ?? true,
      retryOnStatus: new Set(options.retryOnStatus ?? []),
      https: url.protocol === 'https:',
      tls,
    };
    this.#onStalledBodies = options.onStalledBodies ?? null;
    this.#connections = Math.max(1, options.connections);
    // max_running_time is enforced by the delivery's deadline watch, not by the client.
    this.#pool = new HttpPool(url.origin, { connections: this.#connections, tls: tls === null ? null : tlsConnectOptions(tls) });
  }

  get maxRunningTimeMs(): number {
    return this.#maxRunningTimeMs;
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
   * caller's to enforce (one pool-wide deadline watch instead of a timer per job), by `abort()`ing
   * the returned request with a JobTimeoutError.
   */
  start(job: Job, listener: JobListener, attempt: AttemptInfo, traceparent: string): JobRequest {
    const request = new JobRequest(this, listener, this.#settings);
    this.#inFlight++;
    if (this.#closed !== null) {
      request.abort(new ShuttingDownError('the job runner is closed'));
      return request;
    }
    const { body, headers } = this.#builder.build(job, attempt, traceparent);
    try {
      const exchange = this.#pool.dispatch(
        {
          path: this.#path,
          method: 'POST',
          headers,
          body,
          // keep_alive false: `connection: close`, and the socket closes after the response.
          closeConnection: !this.#settings.keepAlive,
          // The client takes SNI from the request before the pool's TLS options; a set name must win.
          serverName: this.#settings.tls?.serverName ?? undefined,
        },
        request,
      );
      request.started(exchange);
    } catch (error) {
      request.abort(new HttpRequestError(`request could not be started: ${errorReason(error, this.#settings.https, this.#settings.tls)}`, { cause: error }));
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
    if (this.#stallReported || !this.#settings.keepAlive) return;
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
}

/**
 * One job's HTTP exchange, as the HTTP client's listener. `#done` guarantees exactly one outcome
 * whatever order the client's callbacks and our aborts (timeout, shutdown) come in.
 */
export class JobRequest implements HttpResponseListener {
  readonly #runner: JobRunner;
  readonly #listener: JobListener;
  readonly #settings: RunnerSettings;
  /** The client's handle on the request once dispatched: aborts it. */
  #exchange: HttpExchange | null = null;
  #status = 0;
  /** performance.now() when a 200's headers arrived (the stall detector's start). */
  #headersAt = 0;
  /** Retry-After of a 429/503, in milliseconds, else null. */
  #retryAfterMs: number | null = null;
  /** A 200's body: its first chunk, and the rest only when it came in several (most come in one). */
  #firstChunk: Buffer | null = null;
  #moreChunks: Buffer[] | null = null;
  #bytes = 0;
  /** Set when a 200 answer is application/x-ndjson: its lines are handled as they arrive. */
  #ndjson: NdjsonAnswer | null = null;
  #done = false;
  /** Set when we aborted: the outcome is already settled; the client's onFailure then only cleans up. */
  #abortReason: Error | null = null;

  constructor(runner: JobRunner, listener: JobListener, settings: RunnerSettings) {
    this.#runner = runner;
    this.#listener = listener;
    this.#settings = settings;
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

  /** Reads no more of the answer until resumeBody() (progress lines wait for gearmand). */
  pauseBody(): void {
    if (!this.#done) this.#exchange?.pause();
  }

  resumeBody(): void {
    this.#exchange?.resume();
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
    if (this.#bytes > this.#settings.maxResponseBytes) {
      this.abort(new HttpResponseError(`response body is over max_response_bytes (${this.#settings.maxResponseBytes})`));
      return;
    }
    if (this.#ndjson !== null) {
      const problem = this.#ndjson.push(chunk);
      if (problem !== null) this.abort(new HttpResponseError(problem));
      return;
    }
    // Bodies of non-200 answers are read (so the connection stays reusable) but not kept.
    if (this.#status !== 200) return;
    if (this.#firstChunk === null) this.#firstChunk = chunk;
    else (this.#moreChunks ??= [this.#firstChunk]).push(chunk);
  }

  #progress(update: ProgressUpdate): void {
    if (!this.#done) this.#listener.onJobProgress(update);
  }

  onEnd(): void {
    if (this.#done) return;
    const status = this.#status;
    if (status !== 200) {
      if (this.#settings.retryOnStatus.has(status)) {
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
    const body = this.#moreChunks !== null ? Buffer.concat(this.#moreChunks, this.#bytes) : (this.#firstChunk ?? EMPTY_BODY);
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
    } else if (kind === HttpFailure.MALFORMED_HEAD) {
      // Transient like every other response the parser refuses: a proxy in between may be the one at fault.
      const reason = `request failed: the endpoint's response head is not valid HTTP/1.1: the parser refused it at or after its Content-Length header (a second Content-Length, refused even when both agree; an invalid length such as "5, 5"; Transfer-Encoding beside it; or a malformed header), which undici reports as ${errorReason(error)}`;
      this.#settle({ kind: 'transient', cause: TransientCause.CONNECT, reason, retryAfterMs: null });
    } else {
      // No complete answer: refused, reset, DNS, TLS, a socket closed mid-response. Nothing says the
      // endpoint meant to fail the job, so another attempt may well succeed.
      const reason = `request failed: ${errorReason(error, this.#settings.https, this.#settings.tls, kind === HttpFailure.CONNECT)}`;
      this.#settle({ kind: 'transient', cause: TransientCause.CONNECT, reason, retryAfterMs: null });
    }
  }

  #settle(outcome: JobOutcome): void {
    if (this.#done) return;
    this.#done = true;
    this.#firstChunk = null;
    this.#moreChunks = null;
    this.#ndjson = null;
    this.#runner.settled();
    this.#listener.onJobOutcome(outcome);
  }
}
