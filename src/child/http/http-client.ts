/**
 * The child's HTTP client: the only module in src that knows undici. It offers what the job runner
 * needs and nothing of undici's own API: a keep-alive connection pool to one origin, one request at
 * a time dispatched with our callbacks, close and destroy. An undici upgrade (handler API, errors,
 * file layout) is then a change to this file alone.
 */
import { createRequire, registerHooks } from 'node:module';
import type { ConnectionOptions } from 'node:tls';
import type { Client as UndiciClient, Dispatcher, buildConnector as BuildConnector } from 'undici';
import { HttpResponseError } from '../../errors.js';

/**
 * undici's Client and connector from their own files, not from the package index: the index also loads
 * fetch, WebSocket, EventSource, the cache store and web streams (with zlib and more), which a child
 * never uses. With undici 8.13 on Node 26 the index costs 8.1 MiB of RSS and 8.3 MiB of PSS more than
 * its Pool file (a process that loads either and creates a 10-connection Pool, after GC, /proc
 * smaps_rollup, three runs each: 59.5 vs 67.8 MiB RSS), and these two are less than that file. The index
 * itself requires these same files, and package-lock pins undici, so a move of them would fail every
 * test at once rather than in production.
 */
const { Client, buildConnector } = loadUndiciWithoutHttp2();

/** The module of undici's that requires node:http2 at load, for its HTTP/2 client. */
const UNDICI_HTTP2_CLIENT = '/undici/lib/dispatcher/client-h2.js';

/**
 * undici's Client requires its HTTP/2 client, which requires node:http2 at once, whether or not any
 * connection ever speaks HTTP/2; node:http2 brings node:tls and its certificate machinery with it:
 * 2.9 MiB of private memory in every pool child (a process that loads the Pool, after GC, smaps_rollup).
 * A child never asks undici for HTTP/2 (its connector offers only http/1.1 in TLS's ALPN, allowH2
 * false below), so that one require is refused while the Client loads, and undici takes the stand-in it
 * keeps for runtimes without node:http2 (`{ constants: {} }`), which only its HTTP/2 code reads. An
 * https pool still loads node:tls, when its first connection is made. Where Node has no
 * module.registerHooks, the Client loads as it is.
 */
function loadUndiciWithoutHttp2(): { Client: typeof UndiciClient; buildConnector: typeof BuildConnector } {
  const hooks = registerHooks?.({
    resolve(specifier, context, nextResolve) {
      if (specifier === 'node:http2' && context.parentURL?.endsWith(UNDICI_HTTP2_CLIENT) === true) {
        throw Object.assign(new Error('node:http2 is not loaded in a pool child'), { code: 'ERR_UNKNOWN_BUILTIN_MODULE' });
      }
      return nextResolve(specifier, context);
    },
  });
  try {
    const requireUndici = createRequire(import.meta.url);
    return {
      Client: requireUndici('undici/lib/dispatcher/client.js') as typeof UndiciClient,
      buildConnector: requireUndici('undici/lib/core/connect.js') as typeof BuildConnector,
    };
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

/**
 * Keep-alive connections to one origin (`https://host:port`), each carrying one request at a time.
 *
 * Our own pool of undici Clients rather than undici's Pool: the Pool looks for a free connection by
 * walking all of them, twice per request (a free one to dispatch on, then whether any is left), so with
 * thousands of slots behind a slow endpoint, where nearly every connection is busy, each request cost
 * a walk over thousands: 13 % of the daemon's CPU at 5,000 slots (bench/e2e slow5000, profiled). Here
 * a request takes the connection freed last (a light load keeps reusing the same few warm ones) and
 * gives it back when its answer ended, both in constant time. All connections share one connector,
 * so TLS sessions are resumed across them as in undici's Pool.
 */
export class HttpPool {
  readonly #origin: string;
  readonly #clientOptions: UndiciClient.Options;
  readonly #maxConnections: number;
  /** Every client made and not retired. */
  readonly #clients = new Set<UndiciClient>();
  /** Clients with no request, most recently freed last. */
  readonly #idle: UndiciClient[] = [];
  /** Requests waiting for a connection (every one busy), first come first served. */
  readonly #waiting: ExchangeHandler[] = [];
  #waitingHead = 0;
  /** Requests handed to a client and not yet ended. */
  #inFlight = 0;
  #closing: Promise<void> | null = null;
  #resolveClosing: (() => void) | null = null;
  #destroyed = false;

  constructor(origin: string, options: HttpPoolOptions) {
    this.#origin = origin;
    this.#maxConnections = Math.max(1, options.connections);
    this.#clientOptions = {
      pipelining: 1,
      // Whoever calls bounds a request's whole time itself; undici's own per-phase timeouts would fire
      // at unrelated moments (and default to 300 s).
      headersTimeout: 0,
      bodyTimeout: 0,
      // HTTP/1.1 only: node:http2 is not loaded (above), and undici's connector would otherwise offer h2 in ALPN.
      allowH2: false,
      connect: buildConnector({ ...(options.tls ?? {}), allowH2: false } as BuildConnector.BuildOptions),
    };
  }

  /** Starts `request`; throws when the pool is closed. A request undici refuses (a bad header, path or body) fails through the listener. */
  dispatch(request: HttpRequest, listener: HttpResponseListener): HttpExchange {
    if (this.#closing !== null || this.#destroyed) throw new HttpResponseError('the HTTP connection pool is closed');
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
    const handler = new ExchangeHandler(this, listener, options);
    const client = this.#idle.pop() ?? (this.#clients.size < this.#maxConnections ? this.#newClient() : null);
    if (client === null) this.#waiting.push(handler);
    else this.#send(handler, client);
    return handler;
  }

  /** Graceful: requests in flight and waiting finish, then the connections close. */
  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closing = new Promise<void>((resolve) => {
        this.#resolveClosing = resolve;
      });
      this.#closeWhenIdle();
    }
    return this.#closing;
  }

  /** Hard: requests in flight and waiting fail, connections close. */
  async destroy(): Promise<void> {
    this.#destroyed = true;
    const error = new HttpResponseError('the HTTP connection pool was destroyed');
    for (let handler = this.#nextWaiting(); handler !== null; handler = this.#nextWaiting()) handler.failUnsent(error);
    const clients = [...this.#clients];
    this.#clients.clear();
    this.#idle.length = 0;
    await Promise.all(clients.map((client) => client.destroy(error)));
    this.#resolveClosing?.();
  }

  /** @internal A handler's request ended (answered or failed): its client takes the next waiting request, or idles. */
  ended(client: UndiciClient, failed: boolean): void {
    this.#inFlight--;
    if (failed || client.closed || client.destroyed) {
      // A failed connection is not reused (as undici's Pool retires it): the next request gets a new one.
      this.#clients.delete(client);
      // After undici's own callback has returned: destroying a client from inside it would re-enter it.
      queueMicrotask(() => {
        if (!client.destroyed) client.destroy().catch(() => undefined);
      });
      const next = this.#waiting.length > this.#waitingHead && !this.#destroyed ? this.#newClient() : null;
      if (next !== null) this.#sendNextOn(next);
    } else if (this.#waiting.length > this.#waitingHead) {
      this.#sendNextOn(client);
    } else {
      this.#idle.push(client);
    }
    if (this.#closing !== null) this.#closeWhenIdle();
  }

  #newClient(): UndiciClient {
    const client = new Client(this.#origin, this.#clientOptions);
    this.#clients.add(client);
    return client;
  }

  #send(handler: ExchangeHandler, client: UndiciClient): void {
    this.#inFlight++;
    handler.sendOn(client);
  }

  /**
   * The next waiting request goes to `client`, after the callback that freed it has returned: undici is
   * still finishing that answer, and a request dispatched from inside it would re-enter the client.
   */
  #sendNextOn(client: UndiciClient): void {
    const handler = this.#nextWaiting() as ExchangeHandler;
    this.#inFlight++;
    queueMicrotask(() => handler.sendOn(client));
  }

  #nextWaiting(): ExchangeHandler | null {
    if (this.#waitingHead >= this.#waiting.length) return null;
    const handler = this.#waiting[this.#waitingHead] as ExchangeHandler;
    this.#waiting[this.#waitingHead++] = undefined as unknown as ExchangeHandler;
    if (this.#waitingHead === this.#waiting.length) {
      this.#waiting.length = 0;
      this.#waitingHead = 0;
    }
    return handler;
  }

  #closeWhenIdle(): void {
    if (this.#inFlight > 0 || this.#waiting.length > this.#waitingHead || this.#resolveClosing === null) return;
    const resolve = this.#resolveClosing;
    this.#resolveClosing = null;
    const clients = [...this.#clients];
    this.#clients.clear();
    this.#idle.length = 0;
    void Promise.all(clients.map((client) => client.close().catch(() => undefined))).then(() => resolve());
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
  readonly #pool: HttpPool;
  readonly #listener: HttpResponseListener;
  #options: Dispatcher.DispatchOptions | null;
  /** The client carrying the request once the pool handed it one. */
  #client: UndiciClient | null = null;
  /** undici's handle on the request once a connection took it. */
  #controller: Dispatcher.DispatchController | null = null;
  /** Our abort before a connection took the request: applied when one does. */
  #abortReason: Error | null = null;
  /** A response began and its status line has not reached onResponseStart (the 100 Continue case). */
  #statusPending = false;

  constructor(pool: HttpPool, listener: HttpResponseListener, options: Dispatcher.DispatchOptions) {
    this.#pool = pool;
    this.#listener = listener;
    this.#options = options;
  }

  /** @internal The pool hands the request to `client`. */
  sendOn(client: UndiciClient): void {
    const options = this.#options as Dispatcher.DispatchOptions;
    this.#options = null;
    this.#client = client;
    // undici reports what it refuses (a bad header, path or body) through onResponseError.
    client.dispatch(options, this);
  }

  /** @internal The pool could not send the request (it was destroyed while the request waited). */
  failUnsent(error: Error): void {
    this.#options = null;
    this.#listener.onFailure(error, HttpFailure.CONNECT);
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
    this.#pool.ended(this.#client as UndiciClient, false);
    this.#listener.onEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#pool.ended(this.#client as UndiciClient, true);
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
    this.#pool.ended(this.#client as UndiciClient, true);
    this.#listener.onFailure(new HttpResponseError('the server switched protocols (HTTP 101)'), HttpFailure.UPGRADE);
  }
}
