/**
 * The fast HTTP endpoint the daemon posts jobs to: Debian's nginx answering the fixed success JSON
 * with `return 200`, so the endpoint is code nobody here wrote and costs next to nothing. Without
 * nginx, a minimal Node endpoint in its own process stands in (node-endpoint.ts), and the report says so.
 *
 * Both write one access-log line per request, `$msec $status $connection $request_length`, and the
 * harness takes the job rate from the first and last `$msec`, as the original's harness did. With
 * `verifyBodies` each line also ends with the request body, so every job's unique can be checked for
 * loss and duplication. nginx only has `$request_body` when something read the body, and `return`
 * never does: the verify config mirrors the request (which reads the body) and answers from a named
 * location after a deliberate 405. That costs nginx a subrequest per job, so it is opt-in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readSync, closeSync, fstatSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/free-port.js';
import { stopChild } from './proc-stats.js';

export const SUCCESS_BODY = '{"gearman_ret":0,"response_string":"ok"}';

export type EndpointKind = 'nginx' | 'node';

export interface LogLine {
  /** $msec: seconds since the epoch with millisecond resolution, as milliseconds (when the answer was sent). */
  atMs: number;
  /** $msec − $request_time: when the request's first bytes arrived, as milliseconds. */
  startMs: number;
  status: number;
  /** $connection: the connection's serial number, so keep-alive reuse is visible. */
  connection: number;
  requestLength: number;
  /** The request body, only when started with verifyBodies. */
  body?: string;
}

export interface Endpoint {
  readonly kind: EndpointKind;
  readonly url: string;
  readonly pid: number;
  /** Why nginx was not used, when kind is 'node'. */
  readonly fallbackReason?: string;
  /** Number of complete log lines written so far (cheap: reads only what was appended since the last call). */
  count(): number;
  /** Every line logged after byte `fromLine` lines in, parsed. */
  lines(fromLine?: number): LogLine[];
  stop(): Promise<void>;
}

export interface StartEndpointOptions {
  dir: string;
  verifyBodies?: boolean;
  /**
   * Answer each request this many ms after it arrived (0: at once). nginx sleeps with the echo module's
   * `echo_sleep` (Debian's libnginx-mod-http-echo: a timer per request, no thread); without the
   * module the Node stand-in delays instead.
   */
  delayMs?: number;
  /** Skip nginx even when it is installed (to test the fallback). */
  forceNode?: boolean;
}

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const START_ATTEMPTS = 3;

function nginxBinary(): string | undefined {
  const fromEnv = process.env['NGINX_BIN'];
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  // /usr/sbin is not on a non-root PATH on Debian.
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Debian's echo module for nginx (libnginx-mod-http-echo), which the slow endpoint sleeps with. */
const ECHO_MODULE = '/usr/lib/nginx/modules/ngx_http_echo_module.so';

function nginxConf(dir: string, port: number, logPath: string, verifyBodies: boolean, delayMs: number): string {
  const body = SUCCESS_BODY.replace(/'/g, "\\'");
  const location = delayMs > 0
    ? // echo_read_request_body makes $request_body loggable (verifyBodies); without it nginx discards the body.
      `    location / { ${verifyBodies ? 'echo_read_request_body; ' : ''}echo_sleep ${(delayMs / 1000).toFixed(3)}; echo -n '${body}'; }`
    : verifyBodies
    ? `    location / {
      # The mirror reads the body, which is what makes $request_body loggable. The content must come
      # from the static module (a 404 on an empty root, turned into the success answer): 'return'
      # and try_files act before the mirror and would skip it.
      mirror /_mirror;
      mirror_request_body on;
      root ${dir}/www;
      error_page 404 =200 @ok;
    }
    location @ok { return 200 '${body}'; }
    location = /_mirror { internal; return 204; }`
    : `    location / { return 200 '${body}'; }`;
  return `# Written by bench/e2e: a single-process endpoint that answers every job with success.
${delayMs > 0 ? `load_module ${ECHO_MODULE};\n` : ''}daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 16384; }
http {
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # The daemon keeps its connections for the whole run: nginx must not cut them (default: 100 requests, 75 s).
  # The second value is sent as "Keep-Alive: timeout=600", which undici honours: without it undici
  # closes a connection idle for 4 s, and every run (after the pause that queues its jobs) would open
  # all of them again: 5,000 connects at slow5000.
  keepalive_requests 100000;
  keepalive_timeout 600s 600s;
  client_body_buffer_size 1m;
  default_type application/json;
  log_not_found off;
  log_format bench '$msec $status $connection $request_length $request_time${verifyBodies ? ' $request_body' : ''}';
  # Buffered: one write per 64 KiB instead of one per request keeps nginx's share of the 2 cores small;
  # $msec is taken when the request ends, not when the buffer is flushed.
  access_log ${logPath} bench buffer=64k flush=50ms;
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    location = /_ready { access_log off; return 204; }
${location}
  }
}
`;
}

/** Resolves once GET /_ready answers; rejects on timeout or when the process exits. */
async function waitReady(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  for (;;) {
    if (exited || child.exitCode !== null) throw new Error(`endpoint exited before answering: ${output() || '<no output>'}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/_ready', method: 'GET', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode === 204 || res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
      req.end();
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`endpoint on port ${port} did not answer within ${READY_TIMEOUT_MS} ms: ${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

class LogReader {
  readonly #path: string;
  #offset = 0;
  #lines = 0;

  constructor(path: string) {
    this.#path = path;
  }

  count(): number {
    let fd: number;
    try {
      fd = openSync(this.#path, 'r');
    } catch {
      return this.#lines; // not created yet
    }
    try {
      const size = fstatSync(fd).size;
      const buffer = Buffer.allocUnsafe(64 * 1024);
      while (this.#offset < size) {
        const n = readSync(fd, buffer, 0, Math.min(buffer.length, size - this.#offset), this.#offset);
        if (n <= 0) break;
        for (let i = 0; i < n; i++) if (buffer[i] === 0x0a) this.#lines++;
        this.#offset += n;
      }
    } finally {
      closeSync(fd);
    }
    return this.#lines;
  }

  lines(fromLine: number): LogLine[] {
    let text: string;
    try {
      const fd = openSync(this.#path, 'r');
      try {
        const size = fstatSync(fd).size;
        const buffer = Buffer.allocUnsafe(size);
        readSync(fd, buffer, 0, size, 0);
        text = buffer.toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch {
      return [];
    }
    const all = text.split('\n');
    all.pop(); // the part after the last newline is incomplete (or empty)
    return all.slice(fromLine).map(parseLogLine);
  }
}

/** The fields before the optional body: `$msec $status $connection $request_length $request_time`. */
const LOG_FIELDS = 5;

function parseLogLine(line: string): LogLine {
  const [msec, status, connection, requestLength, requestTime] = line.split(' ', LOG_FIELDS);
  const atMs = Math.round(Number(msec) * 1000);
  const parsed: LogLine = {
    atMs,
    startMs: atMs - Math.round(Number(requestTime) * 1000),
    status: Number(status),
    connection: Number(connection),
    requestLength: Number(requestLength),
  };
  let rest = line;
  for (let i = 0; i < LOG_FIELDS; i++) rest = rest.slice(rest.indexOf(' ') + 1);
  if (line.split(' ').length > LOG_FIELDS) parsed.body = unescapeNginx(rest);
  return parsed;
}

/** nginx writes bytes outside printable ASCII, `"` and `\` in log variables as \xHH. */
function unescapeNginx(text: string): string {
  return text.replace(/\\x([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function collectOutput(child: ChildProcess): () => string {
  const chunks: Buffer[] = [];
  for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks).toString('utf8').trim().slice(-4000);
}


function makeEndpoint(
  kind: EndpointKind,
  child: ChildProcess,
  port: number,
  logPath: string,
  fallbackReason: string | undefined,
): Endpoint {
  const reader = new LogReader(logPath);
  return {
    kind,
    url: `http://127.0.0.1:${port}/job`,
    pid: child.pid ?? 0,
    ...(fallbackReason === undefined ? {} : { fallbackReason }),
    count: () => reader.count(),
    lines: (fromLine = 0) => reader.lines(fromLine),
    // nginx: SIGQUIT is its graceful stop, which also flushes the buffered access log.
    stop: () => stopChild(child, kind === 'nginx' ? 'SIGQUIT' : 'SIGTERM', STOP_TIMEOUT_MS),
  };
}

/**
 * Spawns an endpoint on a free port and waits until it answers; another process can take the port in
 * between, so a failed start is retried on a new one.
 */
async function startOnFreePort(
  kind: EndpointKind,
  dir: string,
  spawnOn: (port: number, logPath: string) => ChildProcess,
  fallbackReason: string | undefined,
): Promise<Endpoint> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const logPath = join(dir, `access-${port}.log`);
    const child = spawnOn(port, logPath);
    const output = collectOutput(child);
    try {
      await waitReady(port, child, output);
      return makeEndpoint(kind, child, port, logPath, fallbackReason);
    } catch (error) {
      lastError = error;
      await stopChild(child, 'SIGKILL', STOP_TIMEOUT_MS);
    }
  }
  throw lastError;
}

function startNginx(binary: string, dir: string, verifyBodies: boolean, delayMs: number): Promise<Endpoint> {
  mkdirSync(join(dir, 'www'), { recursive: true });
  const confPath = join(dir, 'nginx.conf');
  return startOnFreePort(
    'nginx',
    dir,
    (port, logPath) => {
      writeFileSync(confPath, nginxConf(dir, port, logPath, verifyBodies, delayMs));
      // -e: nginx opens its error log before reading the config; the default path is not writable here.
      return spawn(binary, ['-c', confPath, '-p', dir, '-e', join(dir, 'nginx-error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
    },
    undefined,
  );
}

function startNodeEndpoint(dir: string, verifyBodies: boolean, delayMs: number, reason: string): Promise<Endpoint> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'node-endpoint.js');
  return startOnFreePort(
    'node',
    dir,
    (port, logPath) =>
      spawn(process.execPath, [script, String(port), logPath, verifyBodies ? 'bodies' : 'no-bodies', String(delayMs)], { stdio: ['ignore', 'pipe', 'pipe'] }),
    reason,
  );
}

/** Starts nginx, or the Node stand-in when nginx is missing (the endpoint's `fallbackReason` says why). */
export async function startEndpoint(options: StartEndpointOptions): Promise<Endpoint> {
  mkdirSync(options.dir, { recursive: true });
  const verifyBodies = options.verifyBodies ?? false;
  const delayMs = options.delayMs ?? 0;
  const binary = options.forceNode ? undefined : nginxBinary();
  const echoMissing = delayMs > 0 && !existsSync(ECHO_MODULE);
  if (binary === undefined || echoMissing) {
    const reason = options.forceNode
      ? 'nginx skipped (--endpoint node)'
      : binary === undefined
        ? 'nginx not found (looked for $NGINX_BIN, /usr/sbin/nginx, /usr/local/sbin/nginx, /usr/bin/nginx)'
        : `nginx's echo module (${ECHO_MODULE}, Debian libnginx-mod-http-echo) is missing, which the slow endpoint sleeps with`;
    return startNodeEndpoint(options.dir, verifyBodies, delayMs, reason);
  }
  return startNginx(binary, options.dir, verifyBodies, delayMs);
}
