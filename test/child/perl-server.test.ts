/**
 * The Perl Gearman::Server (Debian's `gearman-server`, the first Gearman server; issue #22, item 2):
 * it knows GRAB_JOB but not GRAB_JOB_UNIQ, WORK_DATA or WORK_WARNING. Jobs submitted by the Perl
 * client (Gearman::Client, `libgearman-client-perl`) complete through the pool, a streamed answer
 * included. The package installs its server as /usr/bin/gearmand: it is called by that full path, the
 * C server by /usr/sbin/gearmand. Without the two packages (scripts/install-deps.sh --perl) the test
 * is skipped with the reason; CI installs them.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { freePort } from '../helpers/free-port.js';
import { adminCommand, parseStatus, parseWorkers } from '../helpers/gearmand.js';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { waitFor } from '../helpers/wait-for.js';
import { makeSettings } from './fixtures.js';

const PERL_SERVER = '/usr/bin/gearmand';

/** Why the test cannot run here, or false. */
function missingPerl(): string | false {
  let head = '';
  try {
    head = readFileSync(PERL_SERVER, 'latin1').slice(0, 64);
  } catch {
    return `${PERL_SERVER} (Debian's gearman-server) is not installed: scripts/install-deps.sh --perl`;
  }
  if (!head.startsWith('#!') || !head.includes('perl')) return `${PERL_SERVER} is not the Perl Gearman::Server`;
  const client = spawnSync('perl', ['-MGearman::Client', '-e', '1'], { stdio: 'ignore' });
  if (client.status !== 0) return 'the Perl Gearman::Client (libgearman-client-perl) is not installed: scripts/install-deps.sh --perl';
  return false;
}

/** The Perl server on a free port, stopped after the test. */
async function startPerlServer(t: TestContext): Promise<number> {
  const port = await freePort();
  const server = spawn(PERL_SERVER, ['--listen', '127.0.0.1', '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.after(() => {
    server.kill('SIGKILL');
  });
  await waitFor(
    () =>
      new Promise<boolean>((resolve, reject) => {
        if (server.exitCode !== null) reject(new Error(`the Perl server exited (${server.exitCode}): ${stderr}`));
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      }),
    { timeoutMs: 10_000, message: `the Perl gearmand to accept on ${port}` },
  );
  return port;
}

/** The text admin commands (the Perl server's format is gearmand's), through the gearmand helper's client. */
async function workersFor(port: number, fn: string): Promise<number> {
  return parseWorkers(await adminCommand(port, 'workers', 5000)).filter((worker) => worker.functions.includes(fn)).length;
}

/** The function's total (queued or running) and running jobs; zero when the server lists no such function. */
async function statusFor(port: number, fn: string): Promise<{ total: number; running: number }> {
  const line = parseStatus(await adminCommand(port, 'status', 5000)).find((f) => f.function === fn);
  return { total: line?.total ?? 0, running: line?.running ?? 0 };
}

/** One job through Perl's Gearman::Client; resolves with what do_task returned. */
function perlDoTask(port: number, fn: string, workload: string, unique: string): Promise<string> {
  const script = `
    use Gearman::Client;
    my $client = Gearman::Client->new(job_servers => ["127.0.0.1:${port}"]);
    my $result = $client->do_task($ARGV[0], $ARGV[1], { uniq => $ARGV[2], timeout => 20 });
    print defined $result ? "OK " . $$result : "FAILED";
  `;
  return new Promise((resolve, reject) => {
    const child = spawn('perl', ['-e', script, fn, workload, unique], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`perl exited ${String(code)}: ${err}`))));
  });
}

test('WorkerPool should run jobs from the Perl Gearman::Server, submitted by the Perl client', { skip: missingPerl() }, async (t) => {
  const port = await startPerlServer(t);
  const endpoint = await startEndpoint((req) => {
    const job = parseJsonJob(req.body);
    const answer = { gearman_ret: 0, response_string: `perl:${job.workload}` };
    // A streamed answer: its WORK_DATA is refused by the Perl server with ERROR, the job still completes.
    if (job.workload === 'streamed') return { stream: [{ data: { data: 'partial' } }, { data: answer }] };
    if (job.workload === 'invalid') return { body: { gearman_ret: 1, exception: 'order 42 is invalid' } };
    return { body: answer };
  });
  t.after(() => endpoint.close());
  const logger = memoryLogger('info');
  const settings = makeSettings([{ host: '127.0.0.1', port, label: `127.0.0.1:${port}` }], endpoint.url, { workerCount: 2 }, { loopTimeoutMs: 2000 });
  const fn = settings.pool.jobsList[0] as string;
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  await waitFor(async () => (await workersFor(port, fn)) === 2 || undefined, { timeoutMs: 10_000, message: 'two workers registered with the Perl server' });

  assert.equal(await perlDoTask(port, fn, 'hello', 'perl-unique-1'), 'OK perl:hello');
  assert.equal(await perlDoTask(port, fn, 'streamed', 'perl-unique-2'), 'OK perl:streamed');
  // An exception: the Perl server relays WORK_EXCEPTION but keeps the job running; the WORK_FAIL sent
  // after it ends the job there (without it the client waited for its 20 s timeout and the server
  // kept the job as running on our connection).
  const exceptionAt = Date.now();
  assert.equal(await perlDoTask(port, fn, 'invalid', 'perl-unique-3'), 'FAILED');
  const exceptionMs = Date.now() - exceptionAt;
  assert.deepEqual(await statusFor(port, fn), { total: 0, running: 0 }, 'the job ended at the server');
  assert.ok(exceptionMs < 10_000, `the client had its answer after ${exceptionMs} ms, not at its own timeout`);
  assert.equal(endpoint.requests.length, 3, 'each job POSTed once');
  const first = endpoint.requests[0];
  assert.ok(first !== undefined);
  const body = parseJsonJob(first.body);
  assert.equal(body.function_name, fn);
  assert.equal(body.workload, 'hello');
  // GRAB_JOB's JOB_ASSIGN has no unique: the endpoint gets an empty one (docs/http-contract.md).
  assert.equal(body.unique, '');
  assert.equal(first.headers['driveshaft-unique'], '');
  assert.equal(logger.find('does not know GRAB_JOB_UNIQ').length, 1, 'the fallback is said once');
  assert.equal(logger.find('refused a progress packet').length, 1, 'the WORK_DATA was refused, and said once');
  assert.equal(logger.find('lost connection').length, 0, 'no reconnect');
});
