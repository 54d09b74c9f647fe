/**
 * The ceiling's workers: `node echo-worker.js --port P --functions f1,f2 --connections 10 [--expect N]`.
 *
 * Each connection is the cheapest correct Gearman worker: CAN_DO, then GRAB_JOB_UNIQ ⇄ PRE_SLEEP/NOOP,
 * and every JOB_ASSIGN_UNIQ answered at once with WORK_COMPLETE "ok" plus the next GRAB_JOB_UNIQ in
 * the same write. No HTTP, no libgearman: what is left is gearmand's own cost per job, the ceiling a
 * worker manager is measured against. It runs in its own process so its CPU never mixes with the
 * harness's or the daemon's.
 *
 * With `--http URL` it is the **Node floor** instead: each job is first POSTed to URL (the JSON body
 * docs/http-contract.md describes, on one raw keep-alive socket per connection, request written in one piece,
 * response framed by Content-Length and JSON.parse'd) and WORK_COMPLETE follows the answer. No HTTP
 * library, no timers, no metrics, no logging: the least any Node worker manager must do per job, so
 * the daemon's 1-slot rate can be read against what Node itself allows on this machine.
 *
 * `--http URL --undici` is the **undici floor**: the same worker, the POST made through the daemon's
 * own HTTP adapter (src/child/http/http-client.ts, a pool of undici Clients) with the same one header, the answer
 * collected and JSON.parse'd. Between the two floors is what undici costs.
 *
 * `--http URL --contract` is the **contract floor**: the undici floor sending the request the HTTP
 * contract asks for (docs/http-contract.md) and reading the answer as it says, through the daemon's
 * own code for exactly that: the body and the job's headers from its RequestBuilder (attempt, first
 * attempt, traceparent with a fresh trace per job, function, handle, unique), the answer reduced by
 * its interpretBody, the result sent back in WORK_COMPLETE. Between it and the undici floor is what
 * the contract's request costs; between it and the daemon, what the daemon's own machinery costs
 * (slots, delivery, breakers, deadlines, liveness, metrics, logging).
 *
 * stdout, one JSON object per line:
 *   {"event":"ready"}                                   every connection registered and asleep
 *   {"event":"expecting","jobs":N}                      acknowledges `expect N`
 *   {"event":"done","jobs":N,"firstMs":…,"lastMs":…}   the N-th job was answered (times: epoch ms,
 *                                                        first JOB_ASSIGN_UNIQ seen, last WORK_COMPLETE sent)
 * stdin: `expect N` starts a new count (the next round of the same run).
 */
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { interpretBody } from '../../src/child/http/answer.js';
import { HttpPool } from '../../src/child/http/http-client.js';
import { RequestBuilder } from '../../src/child/http/request-builder.js';
import { jobFromAssignment } from '../../src/child/gearman/socket-job.js';
import { newJobTrace, traceparentFor } from '../../src/child/trace-context.js';
import {
  GRAB_JOB_UNIQ_PACKET,
  PRE_SLEEP_PACKET,
  PacketType,
  Parser,
  encodeCanDo,
  encodeWorkComplete,
  type Packet,
} from '../../src/codec/index.js';

const RESULT = Buffer.from('ok');

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    functions: { type: 'string' },
    connections: { type: 'string', default: '10' },
    expect: { type: 'string', default: '0' },
    http: { type: 'string' },
    undici: { type: 'boolean', default: false },
    contract: { type: 'boolean', default: false },
  },
});
if (values.port === undefined || values.functions === undefined) {
  process.stderr.write('usage: echo-worker.js --port P --functions f1,f2 [--connections N] [--expect JOBS]\n');
  process.exit(2);
}
const port = Number(values.port);
const functionNames = values.functions.split(',');
const connectionCount = Number(values.connections);

let expect = Number(values.expect);
let jobs = 0;
let firstMs = 0;
let lastMs = 0;
let ready = 0;

function now(): number {
  return performance.timeOrigin + performance.now();
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function onJobDone(): void {
  jobs++;
  lastMs = now();
  if (jobs === expect) emit({ event: 'done', jobs, firstMs, lastMs });
}

/** POSTs the job of a JOB_ASSIGN_UNIQ; `done` gets the result WORK_COMPLETE carries, once the full answer is in. */
type Post = (assignment: Packet, done: (result: Buffer) => void) => void;

/** The JSON body of docs/http-contract.md for UTF-8 fields (the benchmark's), built directly. */
function plainJsonBody(assignment: Packet): string {
  const [handle, functionName, unique, workload] = assignment.args as Buffer[];
  return JSON.stringify({
    function_name: (functionName as Buffer).toString('utf8'),
    job_handle: (handle as Buffer).toString('latin1'),
    unique: (unique as Buffer).toString('utf8'),
    workload: (workload as Buffer).toString('utf8'),
  });
}

/** One keep-alive HTTP/1.1 connection of the floor: POST, then the callback once the full answer is in. */
function floorHttp(url: URL): Post {
  const socket = connect({ host: url.hostname, port: Number(url.port || 80) });
  socket.setNoDelay(true);
  const head = `POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: `;
  let pending: Buffer = Buffer.alloc(0);
  let waiting: ((result: Buffer) => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const headEnd = pending.indexOf('\r\n\r\n');
    if (headEnd === -1) return;
    const length = /content-length: *(\d+)/i.exec(pending.toString('latin1', 0, headEnd));
    if (length === null) fail('Node floor', 'the endpoint answered without Content-Length');
    const end = headEnd + 4 + Number(length[1]);
    if (pending.length < end) return;
    const answer = JSON.parse(pending.toString('utf8', headEnd + 4, end)) as { gearman_ret?: unknown };
    if (answer.gearman_ret !== 0) fail('Node floor', `gearman_ret ${String(answer.gearman_ret)}`);
    pending = pending.subarray(end);
    const callback = waiting;
    waiting = null;
    callback?.(RESULT);
  });
  socket.on('error', (error) => fail('Node floor', error.message));
  return (assignment, done) => {
    const body = plainJsonBody(assignment);
    waiting = done;
    socket.write(`${head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
  };
}

/** The undici floor's POST: one request on the daemon's HTTP adapter, the callback once the full answer is in. */
function undiciHttp(url: URL): Post {
  const pool = new HttpPool(url.origin, { connections: 1 });
  return (assignment, done) => {
    const chunks: Buffer[] = [];
    pool.dispatch(
      { path: url.pathname, method: 'POST', headers: ['content-type', 'application/json'], body: plainJsonBody(assignment), closeConnection: false, serverName: undefined },
      {
        onHeaders: (status) => {
          if (status !== 200) fail('undici floor', `status ${status}`);
        },
        onData: (chunk) => chunks.push(chunk),
        onEnd: () => {
          const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { gearman_ret?: unknown };
          if (answer.gearman_ret !== 0) fail('undici floor', `gearman_ret ${String(answer.gearman_ret)}`);
          done(RESULT);
        },
        onFailure: (error) => fail('undici floor', error.message),
      },
    );
  };
}

/**
 * The contract floor's POST: the request the daemon's RequestBuilder makes of the job (a fresh trace,
 * attempt 1 first made now), the answer reduced by the daemon's interpretBody, its result returned.
 */
function contractHttp(url: URL): Post {
  const pool = new HttpPool(url.origin, { connections: 1 });
  const builder = new RequestBuilder({ format: 'json', headers: {} });
  return (assignment, done) => {
    // The Job the daemon's connection makes of an assignment (gearman-connection.ts reads the handle and
    // the function name the same way).
    const [handle, functionName] = assignment.args as Buffer[];
    const job = jobFromAssignment(assignment, 'bench', handle as Buffer, (functionName as Buffer).toString('utf8'));
    const { body, headers } = builder.build(job, { attempt: 1, firstAttemptAt: Date.now() }, traceparentFor(newJobTrace()));
    let first: Buffer | null = null;
    let more: Buffer[] | null = null;
    pool.dispatch(
      { path: url.pathname, method: 'POST', headers, body, closeConnection: false, serverName: undefined },
      {
        onHeaders: (status) => {
          if (status !== 200) fail('contract floor', `status ${status}`);
        },
        onData: (chunk) => {
          if (first === null) first = chunk;
          else (more ??= [first]).push(chunk);
        },
        onEnd: () => {
          const outcome = interpretBody(more !== null ? Buffer.concat(more) : (first ?? Buffer.alloc(0)));
          if (outcome.kind !== 'complete') fail('contract floor', `outcome ${outcome.kind}`);
          done(outcome.result);
        },
        onFailure: (error) => fail('contract floor', error.message),
      },
    );
  };
}

function fail(floor: string, why: string): never {
  process.stderr.write(`echo-worker: ${floor}: ${why}\n`);
  process.exit(1);
}

function startConnection(): void {
  const socket: Socket = connect({ host: values.host, port });
  const url = values.http === undefined ? null : new URL(values.http);
  const post = url === null ? null : values.contract ? contractHttp(url) : values.undici ? undiciHttp(url) : floorHttp(url);
  let sleptOnce = false;
  const parser = new Parser({
    onPacket: (packet: Packet) => {
      switch (packet.type) {
        case PacketType.NO_JOB:
          socket.write(PRE_SLEEP_PACKET);
          if (!sleptOnce) {
            sleptOnce = true;
            if (++ready === connectionCount) emit({ event: 'ready' });
          }
          return;
        case PacketType.NOOP:
          socket.write(GRAB_JOB_UNIQ_PACKET);
          return;
        case PacketType.JOB_ASSIGN_UNIQ: {
          if (jobs === 0 && firstMs === 0) firstMs = now();
          const handle = packet.args[0] as Buffer;
          // One write for the answer and the next grab: the same number of syscalls a worker that
          // pipelines its packets makes.
          const complete = (result: Buffer): void => {
            socket.cork();
            socket.write(encodeWorkComplete(handle, result));
            socket.write(GRAB_JOB_UNIQ_PACKET);
            socket.uncork();
            onJobDone();
          };
          // The job's buffers stay valid until the answer: the codec never rewrites memory it handed out.
          if (post === null) complete(RESULT);
          else post(packet, complete);
          return;
        }
        default:
          return;
      }
    },
    onError: (error) => {
      process.stderr.write(`echo-worker: ${error.message}\n`);
      process.exit(1);
    },
  });
  socket.setNoDelay(true);
  socket.on('connect', () => {
    socket.cork();
    for (const name of functionNames) socket.write(encodeCanDo(name));
    socket.write(GRAB_JOB_UNIQ_PACKET);
    socket.uncork();
  });
  socket.on('data', (chunk: Buffer) => parser.push(chunk));
  socket.on('error', (error) => {
    process.stderr.write(`echo-worker: ${error.message}\n`);
    process.exit(1);
  });
  socket.on('close', () => process.exit(0));
}

for (let i = 0; i < connectionCount; i++) startConnection();

createInterface({ input: process.stdin }).on('line', (line) => {
  const match = /^expect (\d+)$/.exec(line.trim());
  if (match === null) return;
  expect = Number(match[1]);
  jobs = 0;
  firstMs = 0;
  lastMs = 0;
  // The harness freezes this process right after the ack: the new count must be in place before
  // any job of the next round can arrive.
  emit({ event: 'expecting', jobs: expect });
});
process.stdin.on('end', () => process.exit(0));
// The harness stops it with SIGTERM: exit cleanly, so a --cpu-prof in NODE_OPTIONS gets written.
process.on('SIGTERM', () => process.exit(0));
