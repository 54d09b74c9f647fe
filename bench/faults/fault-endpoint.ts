/**
 * The endpoint of the fault benchmarks (`bench/delivery`, `bench/chaos`), a process of its own forked
 * by endpoint-control.ts with an IPC channel, so its CPU never mixes with the harness's and the
 * harness can take it down and up on command.
 *
 * Up, it answers every job POST with the success JSON and records the job's id (the workload, which
 * the harness makes unique per job): how many 200s each id got and when. Down, it behaves as one of
 * three real failures:
 * - `stop`: nothing listens on the port (listener closed, every open connection destroyed), so the
 *   daemon's connects are refused, as during a deploy that restarts the process;
 * - `503`: every request is answered 503 at once, as a load balancer with no healthy backend does;
 * - `hang`: requests are read and never answered while down (the daemon's max_running_time must cut
 *   them); those still open when the endpoint comes back up are answered 200 then, as a stuck
 *   backend that recovers would.
 * Requests that reach it while down are counted per outage (none can in `stop`). Narrower faults (one
 * function down, single poisoned ids) are in targeted-faults.ts.
 *
 * Ids answered 200 are recorded when the answer is written. A connection destroyed right after that
 * (`stop`) may lose the answer on the way: the job then counts as completed here although the daemon
 * saw an error, which is exactly the at-least-once window a real crash opens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { TargetedFaults, answer503, type PoisonKind, type PoisonRequest } from './targeted-faults.js';

export type { PoisonKind, PoisonRequest } from './targeted-faults.js';

export const SUCCESS_BODY = '{"gearman_ret":0,"response_string":"ok"}';
export const BUCKET_MS = 100;

export type OutageMode = 'stop' | '503' | 'hang';

/** When each id `${prefix}-${i}` was first answered 200 (0: never), and the ids answered more than once. */
export interface IdTimes {
  firstOkAtMs: number[];
  repeats: Array<{ index: number; atMs: number[] }>;
}

/** Harness → endpoint. `seq` pairs each command with its reply. */
export type EndpointCommand =
  | { seq: number; type: 'down'; mode: OutageMode }
  | { seq: number; type: 'up' }
  | { seq: number; type: 'stats' }
  | { seq: number; type: 'report'; prefix: string; count: number }
  | { seq: number; type: 'functionDown'; functionName: string }
  | { seq: number; type: 'functionUp'; functionName: string }
  | { seq: number; type: 'poison'; id: string; kind: PoisonKind }
  | { seq: number; type: 'cure'; id: string }
  | { seq: number; type: 'poisonRequests'; id: string }
  | { seq: number; type: 'idTimes'; prefix: string; count: number };

export interface EndpointStats {
  /** Every 200 answered (duplicates included). */
  ok: number;
  /** Distinct ids answered 200 at least once. */
  distinct: number;
  /** Requests that reached the endpoint while it was down, all outages. */
  downRequests: number;
  /** TCP connections accepted so far. */
  connections: number;
  /** Requests being held (hang mode). */
  held: number;
  state: 'up' | OutageMode;
}

export interface OutageRecord {
  mode: OutageMode;
  downAtMs: number;
  upAtMs: number;
  /** Requests that reached the endpoint while down (0 in stop mode: nothing listened). */
  requests: number;
  /** Held requests answered 200 when the endpoint came back (hang mode). */
  answeredHeld: number;
  /** Held requests whose client gave up (closed the connection) while down (hang mode). */
  abandonedHeld: number;
}

export interface EndpointReport extends EndpointStats {
  startedAtMs: number;
  bucketMs: number;
  /** First 200s per bucket (distinct completions), from startedAtMs. */
  firstOkBuckets: number[];
  /** Every 200 per bucket. */
  okBuckets: number[];
  /** Requests while down per bucket. */
  downBuckets: number[];
  outages: OutageRecord[];
  /** Ids answered 200 more than once, with the time of every 200 (ms since the epoch). */
  duplicates: Array<{ id: string; atMs: number[] }>;
  /** 200s beyond the first, summed over ids. */
  extraOk: number;
  /** Ids `${prefix}-0` … `${prefix}-${count-1}` never answered 200. */
  missing: string[];
  /** Ids answered 200 that the harness never queued (should be 0). */
  unexpected: number;
}

export type EndpointMessage =
  | { type: 'listening'; port: number }
  | {
      type: 'reply';
      seq: number;
      stats?: EndpointStats;
      outage?: OutageRecord;
      report?: EndpointReport;
      /** functionUp: the function's requests answered 503 while it was down. */
      requests?: number;
      poisonRequests?: PoisonRequest[];
      idTimes?: IdTimes;
    }
  | { type: 'error'; message: string };

const startedAtMs = Date.now();
/** Time of every 200 per id; one number for the common case of exactly one. */
const answered = new Map<string, number | number[]>();
let ok = 0;
let downRequests = 0;
let connections = 0;
let state: 'up' | OutageMode = 'up';
let current: OutageRecord | undefined;
const outages: OutageRecord[] = [];
const firstOkBuckets: number[] = [];
const okBuckets: number[] = [];
const downBuckets: number[] = [];
const sockets = new Set<Socket>();
const held = new Set<{ res: ServerResponse; id: string | undefined }>();
let port = 0;
const targeted = new TargetedFaults();

function bump(buckets: number[], atMs: number): void {
  const index = Math.floor((atMs - startedAtMs) / BUCKET_MS);
  while (buckets.length <= index) buckets.push(0);
  buckets[index] = (buckets[index] as number) + 1;
}

function send(message: EndpointMessage): void {
  process.send?.(message);
}

/** The job's id (the workload of the daemon's JSON request body) and its function. */
function jobOf(body: Buffer): { id: string | undefined; functionName: string | undefined } {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { workload?: unknown; function_name?: unknown };
    return {
      id: typeof parsed.workload === 'string' ? parsed.workload : undefined,
      functionName: typeof parsed.function_name === 'string' ? parsed.function_name : undefined,
    };
  } catch {
    return { id: undefined, functionName: undefined };
  }
}

function answerOk(res: ServerResponse, id: string | undefined): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(SUCCESS_BODY) });
  res.end(SUCCESS_BODY);
  const now = Date.now();
  ok++;
  bump(okBuckets, now);
  if (id === undefined) return;
  const before = answered.get(id);
  if (before === undefined) {
    answered.set(id, now);
    bump(firstOkBuckets, now);
  } else if (typeof before === 'number') {
    answered.set(id, [before, now]);
  } else {
    before.push(now);
  }
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/_ready') {
    res.writeHead(204).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const { id, functionName } = jobOf(Buffer.concat(chunks));
    if (targeted.handle(req, res, id, functionName)) return;
    if (state === 'up') {
      answerOk(res, id);
      return;
    }
    downRequests++;
    bump(downBuckets, Date.now());
    if (current !== undefined) current.requests++;
    if (state === '503') {
      answer503(res);
      return;
    }
    // hang (stop never gets here: nothing listens, and open connections were destroyed)
    const entry = { res, id };
    held.add(entry);
    res.on('close', () => {
      if (held.delete(entry) && current !== undefined) current.abandonedHeld++;
    });
  });
}

const server: Server = createServer({ keepAliveTimeout: 600_000 }, handle);
// The daemon keeps its connections for the whole run: Node's defaults would cut them.
server.maxRequestsPerSocket = 0;
server.headersTimeout = 600_000;
server.requestTimeout = 0;
server.on('connection', (socket: Socket) => {
  connections++;
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
});

function listen(onPort: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(onPort, '127.0.0.1', () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : onPort);
    });
  });
}

function stats(): EndpointStats {
  return { ok, distinct: answered.size, downRequests, connections, held: held.size, state };
}

async function down(mode: OutageMode): Promise<void> {
  if (state !== 'up') throw new Error(`endpoint is already down (${state})`);
  state = mode;
  current = { mode, downAtMs: Date.now(), upAtMs: 0, requests: 0, answeredHeld: 0, abandonedHeld: 0 };
  if (mode !== 'stop') return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of sockets) socket.destroy();
  await closed;
}

async function up(): Promise<OutageRecord> {
  const outage = current;
  if (state === 'up' || outage === undefined) throw new Error('endpoint is not down');
  if (state === 'stop') await listen(port);
  state = 'up';
  for (const entry of held) {
    if (!entry.res.writableEnded && !entry.res.destroyed) {
      answerOk(entry.res, entry.id);
      outage.answeredHeld++;
    }
  }
  held.clear();
  outage.upAtMs = Date.now();
  outages.push(outage);
  current = undefined;
  return outage;
}

function report(prefix: string, count: number): EndpointReport {
  const duplicates: Array<{ id: string; atMs: number[] }> = [];
  let extraOk = 0;
  let unexpected = 0;
  const expectedPrefix = `${prefix}-`;
  for (const [id, at] of answered) {
    if (typeof at !== 'number') {
      duplicates.push({ id, atMs: at });
      extraOk += at.length - 1;
    }
    const index = id.startsWith(expectedPrefix) ? Number(id.slice(expectedPrefix.length)) : NaN;
    if (!(Number.isInteger(index) && index >= 0 && index < count)) unexpected++;
  }
  const missing: string[] = [];
  for (let i = 0; i < count; i++) if (!answered.has(`${prefix}-${i}`)) missing.push(`${prefix}-${i}`);
  return {
    ...stats(),
    startedAtMs,
    bucketMs: BUCKET_MS,
    firstOkBuckets,
    okBuckets,
    downBuckets,
    outages: current === undefined ? outages : [...outages, current],
    duplicates,
    extraOk,
    missing,
    unexpected,
  };
}

function idTimes(prefix: string, count: number): IdTimes {
  const firstOkAtMs: number[] = [];
  const repeats: IdTimes['repeats'] = [];
  for (let i = 0; i < count; i++) {
    const at = answered.get(`${prefix}-${i}`);
    firstOkAtMs.push(at === undefined ? 0 : typeof at === 'number' ? at : (at[0] as number));
    if (typeof at === 'object') repeats.push({ index: i, atMs: at });
  }
  return { firstOkAtMs, repeats };
}

process.on('message', (message: EndpointCommand) => {
  const reply = async (): Promise<void> => {
    switch (message.type) {
      case 'down':
        await down(message.mode);
        send({ type: 'reply', seq: message.seq, stats: stats() });
        return;
      case 'up':
        send({ type: 'reply', seq: message.seq, outage: await up() });
        return;
      case 'stats':
        send({ type: 'reply', seq: message.seq, stats: stats() });
        return;
      case 'report':
        send({ type: 'reply', seq: message.seq, report: report(message.prefix, message.count) });
        return;
      case 'functionDown':
        targeted.functionDown(message.functionName);
        send({ type: 'reply', seq: message.seq });
        return;
      case 'functionUp':
        send({ type: 'reply', seq: message.seq, requests: targeted.functionUp(message.functionName) });
        return;
      case 'poison':
        targeted.poison(message.id, message.kind);
        send({ type: 'reply', seq: message.seq });
        return;
      case 'cure':
        targeted.cure(message.id);
        send({ type: 'reply', seq: message.seq });
        return;
      case 'poisonRequests':
        send({ type: 'reply', seq: message.seq, poisonRequests: targeted.requests(message.id) });
        return;
      case 'idTimes':
        send({ type: 'reply', seq: message.seq, idTimes: idTimes(message.prefix, message.count) });
        return;
    }
  };
  reply().catch((error: unknown) => send({ type: 'error', message: error instanceof Error ? error.message : String(error) }));
});
// The harness is gone: so is the reason to run.
process.on('disconnect', () => process.exit(0));

listen(0).then(
  (chosen) => {
    port = chosen;
    send({ type: 'listening', port });
  },
  (error: unknown) => {
    send({ type: 'error', message: `listen failed: ${error instanceof Error ? error.message : String(error)}` });
    process.exit(1);
  },
);
