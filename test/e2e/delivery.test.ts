/**
 * The delivery promise end to end, with the real daemon and its default policy: an endpoint that is
 * down for 5 seconds (really stopped, answering 503, or hanging past max_running_time) while 1,000
 * background jobs are queued at 10 slots loses none of them and fails none of them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import type { Gearmand } from '../helpers/gearmand.js';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import type { Endpoint, EndpointAnswer } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { BIN, nameValues, startServing, statusExchange } from './daemon.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);

const JOBS = 1000;
const OUTAGE_MS = 5000;
const OK: EndpointAnswer = { body: { gearman_ret: 0, response_string: 'ok' } };

interface Scenario {
  gearmand: Gearmand;
  endpoint: Endpoint;
  statusPort: number;
  /** Uniques the endpoint answered 200 for, with how often. */
  completed: Map<string, number>;
}

/** gearmand, an endpoint that records every unique it answers 200 for, and the daemon at 10 slots. */
async function scenario(t: TestContext, down: () => boolean, whileDown: EndpointAnswer, maxRunningTime = '5'): Promise<Scenario> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const completed = new Map<string, number>();
  const endpoint = await startEndpoint((req) => {
    if (down()) return whileDown;
    const unique = parseJsonJob(req.body).unique;
    completed.set(unique, (completed.get(unique) ?? 0) + 1);
    return OK;
  });
  t.after(() => endpoint.close());
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [gearmand.label], { Delivery: { uri: endpoint.url, count: 10, jobs: ['Deliver'] } });
  const statusPort = await freePort();
  await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--loop_timeout', '1', '--max_running_time', maxRunningTime]);
  await waitFor(async () => (await gearmand.workers()).filter((w) => w.functions.includes('Deliver')).length === 10 || undefined, { timeoutMs: 10_000, message: '10 Deliver workers' });
  return { gearmand, endpoint, statusPort, completed };
}

async function queueJobs(gearmand: Gearmand): Promise<void> {
  const client = await GearmanClient.connect(gearmand.port);
  try {
    await Promise.all(Array.from({ length: JOBS }, (_, i) => client.submit('Deliver', `job ${i}`, { unique: `job-${i}`, background: true })));
  } finally {
    await client.close();
  }
}

async function assertAllDelivered(s: Scenario): Promise<void> {
  await waitFor(() => (s.completed.size === JOBS ? true : undefined), { timeoutMs: 60_000, message: `all ${JOBS} jobs answered 200 (so far ${s.completed.size})` });
  await waitFor(async () => ((await s.gearmand.status()).find((f) => f.function === 'Deliver')?.total === 0 ? true : undefined), {
    timeoutMs: 10_000,
    message: 'gearmand to hold no job',
  });
  const counters = nameValues(await statusExchange(s.statusPort, 'counters\n'));
  assert.equal(counters.get('Delivery.jobs_failed'), 0, 'no WORK_FAIL');
  assert.equal(counters.get('Delivery.jobs_completed'), JOBS);
  assert.ok((counters.get('Delivery.jobs_handed_back') ?? 0) > 0, 'the breaker handed jobs back to gearmand');
}

test('an endpoint stopped for 5 s with 1,000 jobs queued at 10 slots: every job completes, none fails', async (t) => {
  let stopped = false;
  const s = await scenario(t, () => false, OK);
  const port = s.endpoint.port;
  await s.endpoint.close();
  stopped = true;
  await queueJobs(s.gearmand);
  await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS)); // the outage's length is the scenario
  const back = await startEndpoint((req) => {
    const unique = parseJsonJob(req.body).unique;
    s.completed.set(unique, (s.completed.get(unique) ?? 0) + 1);
    return OK;
  }, { port });
  t.after(() => back.close());
  assert.ok(stopped);
  await assertAllDelivered(s);
});

test('an endpoint answering 503 for 5 s: every job completes, none fails, and the open breaker sends only probes', async (t) => {
  let down = true;
  const s = await scenario(t, () => down, { status: 503 });
  await queueJobs(s.gearmand);
  // A status is the function's failure: its breaker opens (the host answered, so the pool's stays closed).
  await waitFor(async () => (/^Delivery\.function\.Deliver\.breaker: open\r$/m.test(await statusExchange(s.statusPort, 'gauges\n')) ? true : undefined), {
    timeoutMs: 5000,
    message: 'the breaker to open',
  });
  const before = s.endpoint.requests.length;
  await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS)); // the outage's length is the scenario
  const duringOutage = s.endpoint.requests.length - before;
  down = false;
  // Default cool-off 1 s doubling to 30 s: at most a handful of probes in 5 s, never one per job.
  assert.ok(duringOutage <= 8, `${duringOutage} requests reached the endpoint while it answered 503 with the breaker open`);
  await assertAllDelivered(s);
});

test('an endpoint hanging past max_running_time for 5 s: every job completes, none fails', async (t) => {
  let down = true;
  const s = await scenario(t, () => down, { delayMs: 60_000, ...OK }, '1');
  await queueJobs(s.gearmand);
  await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS)); // the outage's length is the scenario
  down = false;
  await assertAllDelivered(s);
});

test('a permanent failure is dead-lettered, and after the endpoint is fixed the file replays into gearmand and the jobs run', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  let fixed = false;
  const completed = new Map<string, Buffer>();
  const endpoint = await startEndpoint((req) => {
    if (!fixed) return { status: 500, body: 'bug in the endpoint' };
    const job = parseJsonJob(req.body);
    completed.set(job.unique, job.workloadBytes);
    return OK;
  });
  t.after(() => endpoint.close());
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, [gearmand.label], { Letters: { uri: endpoint.url, count: 2, jobs: ['Letter'], extra: { delivery: { dead_letter_file: 'letters.jsonl' } } } });
  await startServing(t, ['--jobsconfig', file, '--loop_timeout', '1']);
  await waitFor(async () => (await gearmand.workers()).filter((w) => w.functions.includes('Letter')).length === 2 || undefined, { timeoutMs: 10_000, message: '2 Letter workers' });
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  const workloads = Array.from({ length: 5 }, (_, i) => Buffer.from([i, 0x00, 0xfe, 0x41 + i]));
  for (const [i, workload] of workloads.entries()) await client.submit('Letter', workload, { unique: `letter-${i}`, background: true });
  const letters = path.join(dir, 'letters.jsonl');
  await waitFor(() => (existsSync(letters) && readFileSync(letters, 'utf8').trim().split('\n').length === 5 ? true : undefined), { timeoutMs: 10_000, message: 'five dead letters' });
  assert.equal(endpoint.requests.length, 5, 'a permanent failure is posted once, never retried');

  fixed = true;
  const replay = await run(process.execPath, [BIN, 'replay', '--file', letters, '--servers', gearmand.label], { timeout: 20_000 });
  assert.match(replay.stdout, /replayed 5 of 5 letters/);
  await waitFor(() => (completed.size === 5 ? true : undefined), { timeoutMs: 10_000, message: 'the five replayed jobs to run' });
  for (const [i, workload] of workloads.entries()) assert.deepEqual(completed.get(`letter-${i}`), workload, `letter-${i} ran with its exact bytes`);
});
