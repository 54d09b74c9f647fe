/**
 * The child's HTTP client: the only module in src that knows undici. It offers what the job runner
 * needs and nothing of undici's own API: a keep-alive connection pool to one origin, one request at
 * a time dispatched with our callbacks, close and destroy. An undici upgrade (handler API, errors,
 * file layout) is then a change to this file alone.
 */
import { createRequire, registerHooks } from 'node:module';
import type { ConnectionOptions } from 'node:tls';
import type { Dispatcher, Pool as UndiciPool } from 'undici';
import { HttpResponseError } from '../../errors.js';

/**
 * undici's Pool class from its own file, not from the package index: the index also loads fetch,
 * WebSocket, EventSource, the cache store and web streams (with zlib and more), which a child never
 * uses. With undici 8.13 on Node 26 the index costs 8.1 MiB of RSS and 8.3 MiB of PSS more than this
 * file (a process that loads either and creates a 10-connection Pool, after GC, /proc smaps_rollup,
 * three runs each: 59.5 vs 67.8 MiB RSS). The index itself requires this same file, and package-lock
 * pins undici, so a move of it would fail every test at once rather than in production.
 */
const Pool = loadPoolWithoutHttp2();

/** The module of undici's that requires node:http2 at load, for its HTTP/2 client. */
const UNDICI_HTTP2_CLIENT = '/undici/lib/dispatcher/client-h2.js';

/**
 * undici's Pool requires its HTTP/2 client, which requires node:http2 at once, whether or not any
 * connection ever speaks HTTP/2; node:http2 brings node:tls and its certificate machinery with it:
 * 2.9 MiB of private memory in every pool child (a process that loads the Pool, after GC, smaps_rollup).
 * A child never asks undici for HTTP/2 (allowH2 stays false), so that one require is refused while the
 * Pool loads, and undici takes the stand-in it keeps for runtimes without node:http2
 * (`{ constants: {} }`), which only its HTTP/2 code reads. An https pool still loads node:tls, when its
 * first connection is made. Where Node has no module.registerHooks, the Pool loads as it is.
 */
function loadPoolWithoutHttp2(): typeof UndiciPool {
  const hooks = registerHooks?.({
    resolve(specifier, context, nextResolve) {
      if (specifier === 'node:http2' && context.parentURL?.endsWith(UNDICI_HTTP2_CLIENT) === true) {
        throw Object.assign(new Error('node:http2 is not loaded in a pool child'), { code: 'ERR_UNKNOWN_BUILTIN_MODULE' });
      }
      return nextResolve(specifier, context);
    },
  });
  try {
    return createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
  } finally {
    hooks?.deregister();
  }
}

/** How a request ended without a complete answer. */
export const HttpFailure = {
  /** Reset, a socket closed mid-response, or our own abort, once a connection carried the request. */
  TRANSPORT: 'transport',
  /** No connection carried the request: refused, DNS, reset or closed during the TLS handshake, a certificate refused. */
  CONNECT: 'connect',
  /**
   * The HTTP/1.1 parser refused the response head at or after a Content-Length header: a second
   * Content-Length (even an equal one), an invalid length, Transfer-Encoding beside it, a malformed header.
   */
  MALFORMED_HEAD: 'malformed-head',
  /** The server sent "100 Continue" to a request that did not ask for it (undici drops the connection). */
  UNSOLICITED_CONTINUE: 'unsolicited-continue',
  /** The server answered 101 Switching Protocols. */
  UPGRADE: 'upgrade',
} as const;
export type HttpFailure = (typeof HttpFailure)[keyof typeof HttpFailure];

/** One request's answer, in order: onHeaders, onData any number of times, onEnd; or onFailure at any point. */
export interface HttpResponseListener {
  /** `rawHeaders`: [name, value, …] as received (names in the server's case), not parsed. */
  onHeaders(status: number, rawHeaders: readonly Buffer[]): void;
  onData(chunk: Buffer): void;
  onEnd(): void;
  /** Called at most once, and never after onEnd. */
  onFailure(error: Error, kind: HttpFailure): void;
}

export interface HttpRequest {
  /** Path and query, starting with `/`. */
  path: string;
  method: 'POST' | 'GET';
  /** Flat [name, value, …] with lower-case names; a fresh array per request (a queued request keeps it). */
  headers: string[];
  /** A string is sent as UTF-8; buffers in order (the caller sets content-length for a list). */
  body: string | Buffer | readonly Buffer[] | null;
  /** Close the connection after this answer (`connection: close`). */
  closeConnection: boolean;
  /** TLS server name (SNI) for this request, which wins over the pool's own; undefined: the pool's. */
  serverName: string | undefined;
}

export interface HttpPoolOptions {
  /** Most connections open at once; each carries one request at a time (no pipelining). */
  connections: number;
  /** node:tls options of an https origin's connections; null: Node's defaults. */
  tls?: ConnectionOptions | null;
}

/** A started request: abort() ends it with `reason` (its listener then hears onFailure, unless it already ended). */
export interface HttpExchange {
  abort(reason: Error): void;
  /** Reads no more of the response body (after the chunk being delivered) until resume(): TCP backpressure to the server. */
  pause(): void;
  resume(): void;
}

/** Keep-alive connections to one origin (`https://host:port`). */
export class HttpPool {
  readonly #origin: string;
  readonly #pool: UndiciPool;

  constructor(origin: string, options: HttpPoolOptions) {
    this.#origin = origin;
    this.#pool = new Pool(origin, {
      connections: options.connections,
      pipelining: 1,
      // Whoever calls bounds a request's whole time itself; undici's own per-phase timeouts would fire
      // at unrelated moments (and default to 300 s).
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(options.tls == null ? {} : { connect: options.tls }),
    });
  }

  /** Starts `request`; throws when undici refuses its options (a bad header, path or body). */
  dispatch(request: HttpRequest, listener: HttpResponseListener): HttpExchange {
    const handler = new ExchangeHandler(listener);
    // One object shape for every request (undici reads an absent option and an undefined one alike);
    // `servername` is a request option undici's types leave out.
    const options: Dispatcher.DispatchOptions & { servername: string | undefined } = {
      origin: this.#origin,
      path: request.path,
      method: request.method,
      headers: request.headers,
      body: request.body as Dispatcher.DispatchOptions['body'],
      reset: request.closeConnection ? true : undefined,
      servername: request.serverName,
    };
    this.#pool.dispatch(options, handler);
    return handler;
  }

  /** Graceful: requests in flight finish, then the connections close. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  /** Hard: requests in flight fail, connections close. */
  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}

/**
 * Whether `error` is a connection that closed before a single byte of an answer: on https, after a
 * handshake that seemed to succeed, the sign of a server refusing the client certificate under TLS 1.3.
 */
export function closedUnanswered(error: unknown): boolean {
  const fields = error as { code?: unknown; socket?: { bytesRead?: unknown } } | null;
  return fields?.code === 'UND_ERR_SOCKET' && fields.socket?.bytesRead === 0;
}

/** undici's dispatch handler (its controller API) for one request, translated to an HttpResponseListener. */
class ExchangeHandler implements Dispatcher.DispatchHandler, HttpExchange {
  readonly #listener: HttpResponseListener;
  /** undici's handle on the request once a connection took it. */
  #controller: Dispatcher.DispatchController | null = null;
  /** Our abort before a connection took the request: applied when one does. */
  #abortReason: Error | null = null;
  /** A response began and its status line has not reached onResponseStart (the 100 Continue case). */
  #statusPending = false;

  constructor(listener: HttpResponseListener) {
    this.#listener = listener;
  }

  abort(reason: Error): void {
    this.#abortReason ??= reason;
    this.#controller?.abort(reason);
  }

  pause(): void {
    this.#controller?.pause();
  }

  resume(): void {
    this.#controller?.resume();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Aborted while queued (e.g. the connection was still being made): stop it now.
    if (this.#abortReason !== null) controller.abort(this.#abortReason);
  }

  onResponseStarted(): void {
    this.#statusPending = true;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    this.#statusPending = false;
    this.#listener.onHeaders(statusCode, (controller as { rawHeaders?: Buffer[] | null }).rawHeaders ?? []);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#listener.onData(chunk);
  }

  onResponseEnd(): void {
    this.#listener.onEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#listener.onFailure(error, this.#failureKind(error));
  }

  #failureKind(error: Error): HttpFailure {
    // undici hands a request to onRequestStart only once it is written to a connected socket (after
    // the TLS handshake): an error before that is the connection's.
    if (this.#controller === null) return HttpFailure.CONNECT;
    if (!this.#statusPending) return HttpFailure.TRANSPORT;
    // undici's HTTP/1.1 client drops the connection on any 100 Continue (it never sends Expect) with
    // this generic error, before the status reaches onResponseStart; every other 1xx does.
    if (error.message === 'bad response') return HttpFailure.UNSOLICITED_CONTINUE;
    // When llhttp refuses a header, undici reports a body length mismatch instead of llhttp's reason if a
    // Content-Length header came before (client-h1.js createError checks its own count first, and it
    // adds up the digits of every Content-Length header): a mismatch before the head was complete
    // can only be that.
    if ((error as { code?: unknown }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return HttpFailure.MALFORMED_HEAD;
    return HttpFailure.TRANSPORT;
  }

  onRequestUpgrade(): void {
    this.#listener.onFailure(new HttpResponseError('the server switched protocols (HTTP 101)'), HttpFailure.UPGRADE);
  }
}
