import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import { startEndpoint } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { isAlive, parseThreads, spawnDaemon, startServing, statusExchange } from './daemon.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';

async function slowSetup(t: import('node:test').TestContext, delayMs: number) {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint(() => ({ delayMs, body: { gearman_ret: 0, response_string: 'finished' } }));
  t.after(() => endpoint.close());
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, [gearmand.label], { Regular: { uri: endpoint.url, count: 1, jobs: ['Slow'] } });
  return { gearmand, endpoint, file, dir };
}

test('SIGTERM should let a running job finish, then exit 0 within the graceful deadline', async (t) => {
  const { gearmand, endpoint, file, dir } = await slowSetup(t, 700);
  const pidFile = path.join(dir, 'driveshaft.pid');
  const statusPort = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '0.5', '--pid_file', pidFile, '--status_port', String(statusPort)]);
  const childPid = daemon.logs.find((r) => r.event === 'ready')?.childPid as number;
  await waitFor(async () => (await gearmand.workers()).some((w) => w.functions.includes('Slow')), { timeoutMs: 10_000, message: 'the Slow worker' });
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  const job = client.submit('Slow', 'payload');
  await waitFor(() => endpoint.requests.length === 1, { timeoutMs: 10_000, message: 'the job at the endpoint' });
  const started = Date.now();
  process.kill(daemon.pid, 'SIGTERM');
  await daemon.waitForLog((r) => r.event === 'shutdown', 'the shutdown log line');
  // While draining, the status port still answers and shows the slot told to stop.
  const lines = parseThreads(await statusExchange(statusPort, 'threads\n'));
  assert.equal(lines[0]?.stopping, '1');
  const result = await job;
  assert.equal(result.outcome, 'complete');
  assert.equal(result.result?.toString(), 'finished');
  const { code } = await daemon.exited;
  const took = Date.now() - started;
  assert.equal(code, 0);
  // Graceful deadline is 4 × loop_timeout = 2 s (plus escalation grace); the job needed 0.7 s.
  assert.ok(took < 3500, `exit after ${took} ms`);
  assert.equal(isAlive(childPid), false);
  assert.equal(existsSync(pidFile), false, 'pid file removed on exit');
  assert.ok(daemon.logs.some((r) => r.event === 'stopped' && r.code === 0));
});

test('a second SIGTERM should stop hard: the running job gets WORK_FAIL and the daemon exits quickly', async (t) => {
  const { gearmand, endpoint, file } = await slowSetup(t, 30_000);
  const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '1']);
  await waitFor(async () => (await gearmand.workers()).some((w) => w.functions.includes('Slow')), { timeoutMs: 10_000, message: 'the Slow worker' });
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  const job = client.submit('Slow', 'payload');
  await waitFor(() => endpoint.requests.length === 1, { timeoutMs: 10_000, message: 'the job at the endpoint' });
  process.kill(daemon.pid, 'SIGTERM');
  await daemon.waitForLog((r) => r.event === 'shutdown' && r.mode === 'graceful', 'graceful shutdown');
  const started = Date.now();
  process.kill(daemon.pid, 'SIGTERM');
  const result = await job;
  assert.equal(result.outcome, 'fail');
  const { code } = await daemon.exited;
  const took = Date.now() - started;
  assert.equal(code, 0);
  // Hard stop closes within 2 × loop_timeout.
  assert.ok(took < 2000, `exit after ${took} ms`);
  assert.ok(daemon.logs.some((r) => r.event === 'shutdown' && r.mode === 'hard'));
});

test('SIGQUIT should stop hard at once', async (t) => {
  const { gearmand, file } = await slowSetup(t, 30_000);
  const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '1']);
  await waitFor(async () => (await gearmand.workers()).some((w) => w.functions.includes('Slow')), { timeoutMs: 10_000, message: 'the Slow worker' });
  const started = Date.now();
  process.kill(daemon.pid, 'SIGQUIT');
  assert.equal((await daemon.exited).code, 0);
  assert.ok(Date.now() - started < 2000);
  assert.ok(daemon.logs.some((r) => r.event === 'shutdown' && r.mode === 'hard'));
});

test('--pid_file should be written, refuse a live pid with exit 2, take over a stale one', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, [gearmand.label], { Regular: { uri: 'http://127.0.0.1:1/job', count: 1, jobs: ['Sum'] } });
  const pidFile = path.join(dir, 'run', '..', 'driveshaft.pid');
  // A stale file: a pid no process has.
  writeFileSync(path.join(dir, 'driveshaft.pid'), '999999999\n');
  const first = await startServing(t, ['--jobsconfig', file, '--pid_file', pidFile, '--loop_timeout', '0.5']);
  assert.equal(readFileSync(path.join(dir, 'driveshaft.pid'), 'utf8'), `${first.pid}\n`);
  assert.ok(first.logs.some((r) => r.event === 'pid-file-stale'));

  const second = spawnDaemon(t, ['--jobsconfig', file, '--pid_file', path.join(dir, 'driveshaft.pid'), '--loop_timeout', '0.5']);
  const { code } = await second.exited;
  assert.equal(code, 2);
  const output = second.output().trim().split('\n');
  assert.equal(output.length, 1, second.output());
  assert.match(output[0] ?? '', new RegExp(`driveshaft\\.pid: pid file names process ${first.pid}, which is running`));
  assert.equal(second.logs.length, 0, 'refused before logging started');
  // The refused start left the file alone.
  assert.equal(readFileSync(path.join(dir, 'driveshaft.pid'), 'utf8'), `${first.pid}\n`);

  process.kill(first.pid, 'SIGTERM');
  assert.equal((await first.exited).code, 0);
  assert.equal(existsSync(path.join(dir, 'driveshaft.pid')), false);
});

test('SIGUSR1 and SIGINT should stop gracefully like SIGTERM', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, [gearmand.label], { Regular: { uri: 'http://127.0.0.1:1/job', count: 1, jobs: ['Sum'] } });
  for (const signal of ['SIGUSR1', 'SIGINT'] as const) {
    const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '0.5']);
    process.kill(daemon.pid, signal);
    assert.equal((await daemon.exited).code, 0, signal);
    const shutdown = daemon.logs.find((r) => r.event === 'shutdown');
    assert.equal(shutdown?.mode, 'graceful');
    assert.equal(shutdown?.reason, signal);
  }
});

test('pool children should exit on their own when the master is killed', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, [gearmand.label], { A: { uri: 'http://127.0.0.1:1/job', count: 1, jobs: ['A'] }, B: { uri: 'http://127.0.0.1:1/job', count: 1, jobs: ['B'] } });
  const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '0.5']);
  const children = daemon.logs.filter((r) => r.event === 'ready').map((r) => r.childPid as number);
  assert.equal(children.length, 2);
  process.kill(daemon.pid, 'SIGKILL');
  await daemon.exited;
  await waitFor(() => children.every((pid) => !isAlive(pid)), { timeoutMs: 10_000, message: 'orphaned children to exit' });
  await waitFor(async () => (await gearmand.workers()).length === 0, { timeoutMs: 10_000, message: 'gearmand to see the workers go' });
});
