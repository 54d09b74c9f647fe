/**
 * Stand-in endpoint for machines without nginx: `node node-endpoint.js <port> <log path> [bodies] [delay ms]`.
 * Answers every POST with the success JSON over keep-alive and writes the same access-log line as
 * the nginx config (`$msec $status $connection $request_length $request_time [body]`). It runs in its own process
 * so its CPU never mixes with the harness's. Being Node, it is slower than nginx: results taken with
 * it say so.
 */
import { openSync, writeSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

const SUCCESS = Buffer.from('{"gearman_ret":0,"response_string":"ok"}');
const FLUSH_MS = 50;
const FLUSH_BYTES = 64 * 1024;

const [portArg, logPath, bodiesArg, delayArg] = process.argv.slice(2);
if (portArg === undefined || logPath === undefined) {
  process.stderr.write('usage: node-endpoint.js <port> <log path> [bodies|no-bodies]\n');
  process.exit(2);
}
const withBodies = bodiesArg === 'bodies';
/** Each answer waits this long after the request arrived (the slow-endpoint scenarios). */
const delayMs = Number(delayArg ?? 0);
const logFd = openSync(logPath, 'a');
let pending: string[] = [];
let pendingBytes = 0;

function flush(): void {
  if (pending.length === 0) return;
  writeSync(logFd, pending.join(''));
  pending = [];
  pendingBytes = 0;
}

function log(line: string): void {
  pending.push(line);
  pendingBytes += line.length;
  // Buffered like nginx's `buffer=64k flush=50ms`: one write per batch, not per request.
  if (pendingBytes >= FLUSH_BYTES) flush();
}

const connectionIds = new WeakMap<Socket, number>();
let nextConnection = 1;

/** nginx's log escaping, so one parser reads both logs. */
function escape(text: string): string {
  return text.replace(/[^\x20-\x7e]|["\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/_ready') {
    res.writeHead(204).end();
    return;
  }
  const arrived = Date.now();
  const chunks: Buffer[] = [];
  let length = 0;
  req.on('data', (chunk: Buffer) => {
    if (withBodies) chunks.push(chunk);
    length += chunk.length;
  });
  req.on('end', () => {
    if (delayMs > 0) setTimeout(answer, Math.max(0, arrived + delayMs - Date.now()));
    else answer();
  });
  function answer(): void {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': SUCCESS.length, 'Keep-Alive': 'timeout=600' });
    res.end(SUCCESS);
    const socket = req.socket;
    let id = connectionIds.get(socket);
    if (id === undefined) connectionIds.set(socket, (id = nextConnection++));
    const now = Date.now();
    const body = withBodies ? ` ${escape(Buffer.concat(chunks).toString('latin1'))}` : '';
    log(`${(now / 1000).toFixed(3)} 200 ${id} ${length} ${((now - arrived) / 1000).toFixed(3)}${body}\n`);
  }
}

const server = createServer({ keepAliveTimeout: 600_000 }, handle);
// The daemon keeps its connections for the whole run; Node's defaults would cut them.
server.maxRequestsPerSocket = 0;
server.headersTimeout = 600_000;
server.requestTimeout = 0;
setInterval(flush, FLUSH_MS).unref();
server.listen(Number(portArg), '127.0.0.1');

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    flush();
    process.exit(0);
  });
}
