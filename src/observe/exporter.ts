/**
 * The observability listener (`--exporter_addr`, issue #7): one node:http server in the master.
 *
 *   GET /metrics   Prometheus text format 0.0.4, summed over every pool child
 *   GET /status    JSON: config, pools, slots with their running jobs, connections, counters, queues
 *   GET /healthz   200 "ok": the master's event loop answers
 *   GET /readyz    200 when every pool with workers serves (observation.ts, readiness), else 503;
 *                  pools an operator paused are listed after the verdict (they count as ready)
 *   GET /          the live status page (polls /status every second)
 *
 * Decisions:
 * - The children are asked only when a request needs them, and at most once per `cacheMs` (1 s):
 *   concurrent requests share one poll, and a dashboard refreshing every second plus a scraper cost
 *   the children one status round-trip per second at most. /healthz never asks them.
 * - gearmand's queues come from the poller's cache: a scrape never waits on a gearmand.
 * - The rendered /metrics and /status bodies are kept with their snapshot: a scraper every 100 ms
 *   costs one render per snapshot, not one per request (bench/scrape-overhead.ts).
 * - HEAD is answered like GET without a body; any other method gets 405 with `Allow`; unknown paths
 *   404. The query string is ignored.
 * - Slow or idle clients are cut off: the request head must arrive within headersTimeoutMs (5 s) of
 *   connecting (bytes trickling in do not move that deadline), the whole request within
 *   requestTimeoutMs, an idle keep-alive connection is closed after 5 s, and a socket idle for
 *   idleTimeoutMs is closed (a client that stops reading a response included).
 * - At most maxClients (MAX_CONNECTIONS, 64) connections at once. A newcomer to a full listener takes
 *   the place of the oldest connection with no request being answered (an unfinished head or an idle
 *   keep-alive), which is closed: slow clients cannot keep a real one out. When every place has a
 *   request being answered, the newcomer gets a 503 with Retry-After and is closed.
 * - Malformed requests get a 400 (431 for oversized headers) and the connection is closed; an error
 *   while answering is a 500 and a log line, never an exception out of the server.
 * - Bound before privileges are dropped, like the status port; 127.0.0.1 unless told otherwise.
 * - Every request, whatever its path, first passes the Host check and then, with basic_auth_users in
 *   --web_config_file, basic authentication (exporter-access.ts); with tls_server_config it is HTTPS.
 * - Every body is redacted with the one rule (src/config/redact.ts) before it is sent or cached.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import { redactUris } from '../config/redact.js';
import { ClientAuth, type ExporterWebConfig } from '../config/web-config.js';
import type { Logger } from '../log/logger.js';
import { AuthVerdict, BasicAuth, HostCheck } from './exporter-access.js';
import type { GearmandScrape } from './gearmand-poller.js';
import { metricFamilies, pausedPools, readiness, statusDocument } from './observation.js';
import type { Observation } from './observation.js';
import { EXPOSITION_CONTENT_TYPE, formatExposition } from './prometheus.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';
import { listenOn } from '../daemon/listen.js';

export const MAX_CONNECTIONS = 64;

/**
 * From process.getBuiltinModule, not `import`: on Node 24 and later, importing node:http as an ES module
 * builds its namespace by reading every export, and its lazy WebSocket export then loads Node's own
 * bundled undici with zlib and web streams: about 8 MiB more RSS in the master (measured on Node 24 and
 * 26; test/memory-footprint.test.ts).
 */
const { createServer } = process.getBuiltinModule('node:http');

/** bcryptjs is loaded with the first password to check: most exporters have no basic auth. */
async function bcryptCompare(password: string, hash: string): Promise<boolean> {
  const { compare } = await import('bcryptjs');
  return compare(password, hash);
}

/** What the exporter reads: a (fresh) snapshot of the master and the gearmand poller's cache. */
export interface ExporterSource {
  observe(): Promise<Observation>;
  gearmandScrapes(): GearmandScrape[];
}

export interface ExporterOptions {
  host: string;
  port: number;
  source: ExporterSource;
  logger: Logger;
  /** Reuse a snapshot of the children this long (default 1000 ms). */
  cacheMs?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Connections at once (default MAX_CONNECTIONS). */
  maxClients?: number;
  /** --exporter_allowed_hosts: names a request's Host may carry besides localhost, IP addresses and `host`. */
  allowedHosts?: readonly string[];
  /** --web_config_file: TLS and basic auth; null or absent: plain HTTP, no auth. */
  web?: ExporterWebConfig | null;
}

const ROUTES = new Set(['/', '/metrics', '/status', '/healthz', '/readyz']);
const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;
const BUSY_BODY = 'server busy\n';
const BUSY_RESPONSE = `HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${BUSY_BODY.length}\r\nConnection: close\r\n\r\n${BUSY_BODY}`;
/** Busy refusals (and refused Host headers) are logged at most this often, with the count since the last line. */
const BUSY_LOG_INTERVAL_MS = 60_000;
const AUTH_CHALLENGE = 'Basic realm="driveshaft", charset="UTF-8"';

export class Exporter {
  readonly #options: ExporterOptions;
  readonly #log: Logger;
  readonly #server: http.Server;
  readonly #cacheMs: number;
  readonly #maxClients: number;
  /** Every connection holding a place, oldest first. */
  readonly #sockets = new Set<Socket>();
  /** Requests being answered per connection: a connection without any may give its place to a newcomer. */
  readonly #inFlight = new Map<Socket, number>();
  /** Connections told 503 at accept: node:http may still parse a request from them, which is not answered. */
  readonly #refused = new WeakSet<Socket>();
  #busy = { refused: 0, displaced: 0, loggedAt: 0 };
  #snapshot: { at: number; observation: Promise<Observation> } | null = null;
  /** Bodies rendered from one snapshot and one state of the gearmand cache. */
  #rendered: { observation: Observation; gearmand: string; bodies: Map<string, Buffer> } | null = null;
  #closing: Promise<void> | null = null;
  #requests = 0;
  readonly #hosts: HostCheck;
  readonly #auth: BasicAuth | null;
  #misdirected = { count: 0, lastHost: '', loggedAt: 0 };

  constructor(options: ExporterOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'exporter' });
    this.#cacheMs = options.cacheMs ?? 1000;
    const headersTimeout = options.headersTimeoutMs ?? 5000;
    this.#hosts = new HostCheck(options.host, options.allowedHosts ?? []);
    const users = options.web?.basicAuthUsers ?? {};
    this.#auth = Object.keys(users).length === 0 ? null : new BasicAuth(users, bcryptCompare);
    const httpOptions: http.ServerOptions = {
      headersTimeout,
      requestTimeout: Math.max(headersTimeout, options.requestTimeoutMs ?? 10_000),
      keepAliveTimeout: 5000,
      // Node checks the two timeouts above only this often (30 s by default): a slow client would
      // hold its connection far past them.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 2))),
      maxHeaderSize: 16 * 1024,
    };
    const tls = options.web?.tls ?? null;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.#handle(req, res);
    this.#server =
      tls === null
        ? createServer(httpOptions, handler)
        : process.getBuiltinModule('node:https').createServer(
            {
              ...httpOptions,
              cert: tls.cert,
              key: tls.key,
              ...(tls.clientCa === null ? {} : { ca: tls.clientCa }),
              requestCert: tls.clientAuth === ClientAuth.REQUIRE_AND_VERIFY,
              rejectUnauthorized: tls.clientAuth === ClientAuth.REQUIRE_AND_VERIFY,
              minVersion: tls.minVersion,
              maxVersion: tls.maxVersion,
              // A handshake is bounded like a request head (Node's default is 120 s).
              handshakeTimeout: headersTimeout,
            },
            handler,
          );
    // No server.maxConnections: Node would drop a newcomer unanswered while slow clients keep their
    // places; #admit decides instead.
    this.#maxClients = Math.max(1, options.maxClients ?? MAX_CONNECTIONS);
    // A socket with no traffic for this long is destroyed, including one that stopped reading.
    this.#server.timeout = options.idleTimeoutMs ?? 10_000;
    // Over TLS the sockets requests arrive on are the TLS sockets: places are held by those.
    this.#server.on(tls === null ? 'connection' : 'secureConnection', (socket: Socket) => this.#admit(socket));
    this.#server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const socket = req.socket;
      this.#inFlight.set(socket, (this.#inFlight.get(socket) ?? 0) + 1);
      res.once('close', () => {
        const left = (this.#inFlight.get(socket) ?? 1) - 1;
        if (left > 0) this.#inFlight.set(socket, left);
        else this.#inFlight.delete(socket);
      });
    });
    this.#server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.#clientError(error, socket));
  }

  /** Requests answered since start (for tests and the curious). */
  get requests(): number {
    return this.#requests;
  }

  /** Connections holding a place right now. */
  get clients(): number {
    return this.#sockets.size;
  }

  /** Binds host:port; rejects with the listen error (EADDRINUSE, EACCES…). */
  listen(): Promise<{ host: string; port: number }> {
    return listenOn(this.#server, this.#options.host, this.#options.port, this.#log, 'exporter');
  }


  /** Stops accepting and drops every connection. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closing = new Promise((resolve) => {
      if (!this.#server.listening) {
        for (const socket of this.#sockets) socket.destroy();
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
    return this.#closing;
  }

  /** One poll of the children shared by every request within cacheMs (and by concurrent ones). */
  #observe(): Promise<Observation> {
    const now = Date.now();
    const cached = this.#snapshot;
    if (cached !== null && now - cached.at < this.#cacheMs) return cached.observation;
    const observation = this.#options.source.observe();
    const entry = { at: now, observation };
    this.#snapshot = entry;
    // A failed poll must not be served from the cache to the next request.
    observation.catch(() => {
      if (this.#snapshot === entry) this.#snapshot = null;
    });
    return observation;
  }

  /** Gives a new connection a place, displacing the oldest one with no request being answered if full. */
  #admit(socket: Socket): void {
    if (this.#sockets.size >= this.#maxClients) {
      let idle: Socket | undefined;
      for (const candidate of this.#sockets) {
        if (!this.#inFlight.has(candidate)) {
          idle = candidate;
          break;
        }
      }
      if (idle === undefined) {
        this.#refused.add(socket);
        socket.on('error', () => socket.destroy());
        socket.end(BUSY_RESPONSE, () => socket.destroy());
        setTimeout(() => socket.destroy(), 1000).unref();
        this.#countBusy(false);
        return;
      }
      this.#sockets.delete(idle);
      idle.destroy();
      this.#countBusy(true);
    }
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#inFlight.delete(socket);
    });
  }

  #countBusy(displaced: boolean): void {
    if (displaced) this.#busy.displaced++;
    else this.#busy.refused++;
    const now = Date.now();
    if (now - this.#busy.loggedAt < BUSY_LOG_INTERVAL_MS) return;
    this.#log.warn(
      { event: 'exporter-busy', displaced: this.#busy.displaced, refused: this.#busy.refused, maxClients: this.#maxClients },
      `exporter full (${this.#maxClients} connections): ${this.#busy.displaced} idle or slow connections displaced by newcomers, ${this.#busy.refused} newcomers refused with 503`,
    );
    this.#busy = { refused: 0, displaced: 0, loggedAt: now };
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.#refused.has(req.socket)) {
      res.destroy();
      return;
    }
    this.#requests++;
    res.on('error', () => res.destroy());
    try {
      if (!(await this.#admitted(req, res))) return;
      const method = req.method ?? '';
      const path = (req.url ?? '/').split('?', 1)[0] as string;
      if (!ROUTES.has(path)) {
        this.#send(res, 404, 'text/plain; charset=utf-8', `not found: ${path.slice(0, 200)}\ntry /, /metrics, /status, /healthz or /readyz\n`);
        return;
      }
      if (method !== 'GET' && method !== 'HEAD') {
        // The request body (if any) is not read: close the connection instead of draining it.
        res.setHeader('allow', 'GET, HEAD');
        res.setHeader('connection', 'close');
        this.#send(res, 405, 'text/plain; charset=utf-8', `method ${method.slice(0, 20)} not allowed; use GET\n`);
        return;
      }
      switch (path) {
        case '/healthz':
          this.#send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
          return;
        case '/':
          res.setHeader('content-security-policy', STATUS_PAGE_CSP);
          res.setHeader('referrer-policy', 'no-referrer');
          this.#send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML);
          return;
        case '/metrics':
        case '/status': {
          const body = this.#render(path, await this.#observe());
          this.#send(res, 200, path === '/metrics' ? EXPOSITION_CONTENT_TYPE : 'application/json; charset=utf-8', body);
          return;
        }
        case '/readyz': {
          const observation = await this.#observe();
          const verdict = readiness(observation);
          // A pool an operator paused is ready: it is said after the verdict, one line each.
          const paused = pausedPools(observation).map((p) => `${p.pool}: ${p.reason}\n`).join('');
          const body = redactUris(verdict.ready ? `ready\n${paused}` : `not ready\n${verdict.problems.map((p) => `${p.pool}: ${p.reason}`).join('\n')}\n${paused}`);
          this.#send(res, verdict.ready ? 200 : 503, 'text/plain; charset=utf-8', body);
          return;
        }
      }
    } catch (error) {
      this.#log.error({ err: error, url: String(req.url).slice(0, 200) }, `exporter request failed: ${(error as Error).message}`);
      if (!res.headersSent) this.#send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    }
  }

  #render(path: '/metrics' | '/status', observation: Observation): Buffer {
    const scrapes = this.#options.source.gearmandScrapes();
    // The poll times identify the gearmand cache's state: a new poll means a new body.
    const gearmand = scrapes.map((scrape) => `${scrape.server}@${scrape.at}`).join(' ');
    let cache = this.#rendered;
    if (cache === null || cache.observation !== observation || cache.gearmand !== gearmand) {
      cache = { observation, gearmand, bodies: new Map() };
      this.#rendered = cache;
    }
    let body = cache.bodies.get(path);
    if (body === undefined) {
      const text =
        path === '/metrics'
          ? formatExposition(metricFamilies(observation, scrapes))
          : `${JSON.stringify(statusDocument(observation, scrapes), null, 2)}\n`;
      body = Buffer.from(redactUris(text), 'utf8');
      cache.bodies.set(path, body);
    }
    return body;
  }

  /**
   * The Host check, then basic auth: false after answering 400, 421, 401 or 503. Refused requests
   * close their connection, so a client that keeps trying pays a new connection each time.
   */
  async #admitted(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    const host = req.headers.host;
    if (!this.#hosts.allows(host)) {
      res.setHeader('connection', 'close');
      if (host === undefined || host === '') {
        this.#send(res, 400, 'text/plain; charset=utf-8', 'a Host header is required\n');
      } else {
        this.#countMisdirected(host);
        this.#send(res, 421, 'text/plain; charset=utf-8', 'this exporter does not answer for that host name; an operator adds it with --exporter_allowed_hosts\n');
      }
      return false;
    }
    if (this.#auth === null) return true;
    const verdict = await this.#auth.check(req.headers.authorization);
    if (verdict === AuthVerdict.OK) return true;
    res.setHeader('connection', 'close');
    if (verdict === AuthVerdict.BUSY) {
      res.setHeader('retry-after', '1');
      this.#send(res, 503, 'text/plain; charset=utf-8', 'too many password checks at once; try again\n');
    } else {
      res.setHeader('www-authenticate', AUTH_CHALLENGE);
      this.#send(res, 401, 'text/plain; charset=utf-8', 'unauthorized\n');
    }
    return false;
  }

  /** A refused Host is worth a warning (it may be a DNS rebinding attempt), at most once a minute. */
  #countMisdirected(host: string): void {
    this.#misdirected.count++;
    this.#misdirected.lastHost = host.slice(0, 100);
    const now = Date.now();
    if (now - this.#misdirected.loggedAt < BUSY_LOG_INTERVAL_MS) return;
    const { count, lastHost } = this.#misdirected;
    this.#log.warn(
      { event: 'exporter-host-refused', count, host: lastHost },
      `exporter refused ${count} request${count === 1 ? '' : 's'} for a host name it does not answer for (last: ${JSON.stringify(lastHost)}); a browser page may be trying DNS rebinding, or a scraper needs --exporter_allowed_hosts`,
    );
    this.#misdirected = { count: 0, lastHost: '', loggedAt: now };
  }

  #send(res: http.ServerResponse, status: number, contentType: string, body: string | Buffer): void {
    if (res.destroyed || res.writableEnded) return;
    const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    res.writeHead(status, { ...COMMON_HEADERS, 'content-type': contentType, 'content-length': payload.length });
    res.end(payload);
  }

  /** What node:http could not parse: answer if the socket still takes it, then close. */
  #clientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (error.code !== 'ECONNRESET' && socket.writable && !(socket as Socket & { _httpMessage?: unknown })._httpMessage) {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
      // A client that never reads the answer does not keep the socket either.
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    socket.destroy();
  }
}
