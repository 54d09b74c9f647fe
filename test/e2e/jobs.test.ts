import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import { startEndpoint } from '../helpers/http-endpoint.js';
import { parseJsonJob } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { isAlive, nameValues, parseThreads, startServing, statusExchange } from './daemon.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);

test('driveshaft should run a job submitted with the gearman CLI and return the endpoint response_string', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint((req) => ({ body: { gearman_ret: 0, response_string: `sum=${parseJsonJob(req.body).workload}` } }));
  t.after(() => endpoint.close());
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [gearmand.label], { Regular: { uri: endpoint.url, count: 2, jobs: ['Sum', 'Sum2'] } });
  const statusPort = await freePort();
  await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--loop_timeout', '0.5']);
  await waitFor(async () => (await gearmand.workers()).filter((w) => w.functions.includes('Sum')).length === 2, { timeoutMs: 10_000, message: 'two Sum workers' });
  const { stdout } = await run('gearman', ['-h', '127.0.0.1', '-p', String(gearmand.port), '-f', 'Sum', '[1,2]'], { timeout: 20_000 });
  assert.equal(stdout.trim(), 'sum=[1,2]');
  const job = parseJsonJob(endpoint.requests[0]?.body ?? Buffer.alloc(0));
  assert.equal(job.function_name, 'Sum');
  assert.match(job.job_handle, /^H:/);

  // counters after jobs: one more through a client of our own, then read the values.
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  const results = await Promise.all([1, 2, 3].map((n) => client.submit('Sum2', String(n))));
  assert.deepEqual(results.map((r) => r.result?.toString()), ['sum=1', 'sum=2', 'sum=3']);
  const counters = nameValues(await statusExchange(statusPort, 'counters\r\n'));
  assert.equal(counters.get('Regular.jobs_completed'), 4);
  assert.equal(counters.get('Regular.jobs_failed'), 0);
  assert.equal(counters.get('Regular.http_errors'), 0);
  const gauges = nameValues(await statusExchange(statusPort, 'gauges\n'));
  assert.equal(gauges.get('Regular.slots'), 2);
  assert.equal(gauges.get('Regular.busy_slots'), 0);
  assert.equal(gauges.get('Regular.connected_servers'), 1);
  assert.equal(gauges.get('children'), 1);
});

test('driveshaft threads should show a running job field by field, and failures should count', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  let release: () => void = () => {};
  const hold = new Promise<void>((resolve) => (release = resolve));
  const endpoint = await startEndpoint(async (req) => {
    const job = parseJsonJob(req.body);
    if (job.workload === 'slow') await hold;
    if (job.workload === 'bad') return { status: 500, body: 'oops' };
    return { body: { gearman_ret: 0, response_string: 'done' } };
  });
  t.after(() => {
    release();
    return endpoint.close();
  });
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [gearmand.label], { Regular: { uri: endpoint.url, count: 2, jobs: ['Slow'] } });
  const statusPort = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--loop_timeout', '0.5']);
  await waitFor(async () => (await gearmand.workers()).filter((w) => w.functions.includes('Slow')).length === 2, { timeoutMs: 10_000, message: 'two Slow workers' });
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  const slow = client.submit('Slow', 'slow', { unique: 'unique-42' });
  await waitFor(() => endpoint.requests.length === 1, { timeoutMs: 10_000, message: 'the slow job at the endpoint' });
  const lines = parseThreads(await statusExchange(statusPort, 'threads\n'));
  assert.equal(lines.length, 2);
  const busy = lines.filter((l) => l.state !== 'Waiting for work');
  assert.equal(busy.length, 1);
  const childPid = (daemon.logs.find((r) => r.event === 'ready')?.childPid as number) ?? -1;
  for (const line of lines) {
    assert.match(line.id, new RegExp(`^${childPid}-\\d+$`));
    assert.equal(line.pool, 'Regular');
    assert.equal(line.stopping, '0');
  }
  const handle = parseJsonJob(endpoint.requests[0]?.body ?? Buffer.alloc(0)).job_handle;
  assert.equal(busy[0]?.state, `job_handle=${handle} job_unique=unique-42`);
  assert.equal(nameValues(await statusExchange(statusPort, 'gauges\n')).get('Regular.busy_slots'), 1);
  release();
  assert.equal((await slow).outcome, 'complete');
  const failed = await client.submit('Slow', 'bad');
  assert.equal(failed.outcome, 'fail');
  const counters = nameValues(await statusExchange(statusPort, 'counters\n'));
  assert.equal(counters.get('Regular.jobs_completed'), 1);
  assert.equal(counters.get('Regular.jobs_failed'), 1);
  assert.equal(counters.get('Regular.http_errors'), 1);
});

test('driveshaft should restart a SIGKILLed pool child without interrupting the other pool', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [gearmand.label], { Alpha: { uri: endpoint.url, count: 2, jobs: ['A'] }, Beta: { uri: endpoint.url, count: 2, jobs: ['B'] } });
  const statusPort = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--loop_timeout', '0.5']);
  const ready = (pool: string) => daemon.logs.filter((r) => r.event === 'ready' && r.pool === pool).map((r) => r.childPid as number);
  const [alpha] = ready('Alpha');
  const [beta] = ready('Beta');
  assert.ok(
    alpha !== undefined && beta !== undefined && alpha !== beta,
    `one process per pool; supervisor events: ${JSON.stringify(daemon.logs.filter((r) => r.pool !== undefined && r.event !== undefined).map((r) => [r.pool, r.event, r.childPid]))}\n${daemon.output()}`,
  );
  const fdsOf = async (fn: string) => (await gearmand.workers()).filter((w) => w.functions.includes(fn)).map((w) => `${w.fd}/${w.clientId}`).sort();
  await waitFor(async () => (await fdsOf('A')).length === 2 && (await fdsOf('B')).length === 2, { timeoutMs: 10_000, message: 'all workers registered' });
  const betaBefore = await fdsOf('B');

  process.kill(alpha, 'SIGKILL');
  await daemon.waitForLog((r) => r.event === 'child-exit' && r.pool === 'Alpha' && r.signal === 'SIGKILL', 'the crash to be logged');
  await waitFor(() => ready('Alpha').length === 2, { timeoutMs: 10_000, message: 'Alpha restarted' });
  const alphaAfter = ready('Alpha')[1] as number;
  assert.notEqual(alphaAfter, alpha);
  assert.equal(isAlive(alpha), false);
  await waitFor(async () => {
    const workers = (await gearmand.workers()).filter((w) => w.functions.includes('A'));
    return workers.length === 2 && workers.every((w) => w.clientId.startsWith(`${alphaAfter}-`));
  }, { timeoutMs: 10_000, message: 'the new Alpha child registered' });
  assert.deepEqual(await fdsOf('B'), betaBefore, 'Beta connections untouched');
  assert.equal(ready('Beta').length, 1);
  const counters = nameValues(await statusExchange(statusPort, 'counters\n'));
  assert.equal(counters.get('child_restarts'), 1);
  assert.equal(counters.get('Alpha.child_restarts'), 1);
  assert.equal(counters.get('Beta.child_restarts'), 0);
  // Both pools still run jobs.
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  assert.equal((await client.submit('A', 'x')).outcome, 'complete');
  assert.equal((await client.submit('B', 'y')).outcome, 'complete');
});
