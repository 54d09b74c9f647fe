/**
 * Issue #7 end to end: the real CLI with --exporter_addr, a real gearmand and a real endpoint.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import type { Gearmand } from '../helpers/gearmand.js';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import type { Endpoint, EndpointAnswer, JsonJob } from '../helpers/http-endpoint.js';
import { CHROMIUM, CHROMIUM_ARGS, NEEDS_CHROMIUM } from '../helpers/status-page-browser.js';
import { waitFor } from '../helpers/wait-for.js';
import net from 'node:net';
import { parseThreads, spawnDaemon, startServing, statusExchange } from './daemon.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';
import type { Daemon } from './daemon.js';
import type { PoolSpec } from '../helpers/jobs-file.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Rig {
  gearmand: Gearmand;
  endpoint: Endpoint;
  daemon: Daemon;
  base: string;
  statusPort: number;
  client: GearmanClient;
  release(): void;
}

/**
 * gearmand + an endpoint that answers by workload (`fail` → gearman_ret 1, `500` → HTTP 500, `slow…`
 * → held until release()), or as `answer` says when it says anything, + the daemon with the exporter
 * and the status port.
 */
async function rig(t: TestContext, pools: (endpoint: Endpoint, gearmand: Gearmand) => Record<string, PoolSpec>, answer?: (job: JsonJob) => EndpointAnswer | undefined): Promise<Rig> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const endpoint = await startEndpoint(async (req) => {
    const job = parseJsonJob(req.body);
    const special = answer?.(job);
    if (special !== undefined) return special;
    if (job.workload === 'fail') return { body: { gearman_ret: 1, response_string: '' } };
    if (job.workload === '500') return { status: 500, body: 'boom' };
    if (job.workload.startsWith('slow')) await held;
    return { body: { gearman_ret: 0, response_string: `done ${job.workload}` } };
  });
  t.after(() => {
    release();
    return endpoint.close();
  });
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [gearmand.label], pools(endpoint, gearmand));
  const exporterPort = await freePort();
  const statusPort = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--exporter_addr', String(exporterPort), '--loop_timeout', '0.5']);
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  return { gearmand, endpoint, daemon, base: `http://127.0.0.1:${exporterPort}`, statusPort, client, release };
}

async function text(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

/** `name{labels} value` lines of one family (HELP/TYPE excluded). */
function series(exposition: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    const match = /^([a-z_]+)(\{.*\})? (\S+)$/.exec(line);
    if (match !== null && match[1] === name) out.set(match[2] ?? '', Number(match[3]));
  }
  return out;
}

/** SIGKILLs the pool's child, waits for its successor, then for a /metrics body where `seen` holds. */
async function crashChild(r: Rig, pool: string, seen: (exposition: string) => boolean, message: string): Promise<string> {
  const child = r.daemon.logs.find((rec) => rec.event === 'ready' && rec.pool === pool)?.childPid as number;
  process.kill(child, 'SIGKILL');
  await r.daemon.waitForLog((rec) => rec.event === 'ready' && rec.pool === pool && rec.childPid !== child, 'the restarted child');
  return waitFor(
    async () => {
      const { body } = await text(`${r.base}/metrics`);
      return seen(body) && body;
    },
    { timeoutMs: 15_000, message },
  );
}

async function workersFor(gearmand: Gearmand, fn: string): Promise<number> {
  return (await gearmand.workers()).filter((w) => w.functions.includes(fn)).length;
}

test('GET /metrics should count real jobs exactly: outcomes, HTTP codes, durations, slots and gearmand queues', async (t) => {
  const r = await rig(t, (endpoint) => ({ Regular: { uri: endpoint.url, count: 2, jobs: ['Sum', 'Idle'] } }));
  await waitFor(async () => (await workersFor(r.gearmand, 'Sum')) === 2, { timeoutMs: 10_000, message: 'two Sum workers' });
  const outcomes = await Promise.all(['1', '2', '3', 'fail', '500'].map((w) => r.client.submit('Sum', w)));
  assert.deepEqual(outcomes.map((o) => o.outcome), ['complete', 'complete', 'complete', 'fail', 'fail']);
  // A queue nobody serves, for the gearmand figures.
  await r.client.submit('Backlog', 'a', { background: true });
  await r.client.submit('Backlog', 'b', { background: true });

  const backlog = `{server="${r.gearmand.label}",function="Backlog"}`;
  const metrics = await waitFor(
    async () => {
      const { status, body } = await text(`${r.base}/metrics`);
      assert.equal(status, 200);
      // Both the children's counts and a gearmand poll that already saw the backlog.
      return series(body, 'driveshaft_job_duration_seconds_count').get('{pool="Regular",function="Sum"}') === 5 &&
        series(body, 'driveshaft_gearmand_queue_jobs').get(backlog) === 2 &&
        body;
    },
    { timeoutMs: 10_000, message: 'metrics with the five jobs and a gearmand poll' },
  );

  assert.deepEqual(
    [...series(metrics, 'driveshaft_jobs_total')],
    [
      ['{pool="Regular",function="Sum",outcome="completed"}', 3],
      ['{pool="Regular",function="Sum",outcome="failed"}', 2],
      ['{pool="Regular",function="Sum",outcome="timed_out"}', 0],
      ['{pool="Regular",function="Sum",outcome="requeued"}', 0],
      ['{pool="Regular",function="Idle",outcome="completed"}', 0],
      ['{pool="Regular",function="Idle",outcome="failed"}', 0],
      ['{pool="Regular",function="Idle",outcome="timed_out"}', 0],
      ['{pool="Regular",function="Idle",outcome="requeued"}', 0],
    ],
  );
  assert.deepEqual(
    [...series(metrics, 'driveshaft_http_responses_total')],
    [
      ['{pool="Regular",code="200"}', 4],
      ['{pool="Regular",code="500"}', 1],
    ],
  );
  const buckets = series(metrics, 'driveshaft_job_duration_seconds_bucket');
  assert.equal(buckets.get('{pool="Regular",function="Sum",le="+Inf"}'), 5);
  assert.equal(buckets.get('{pool="Regular",function="Idle",le="+Inf"}'), 0);
  const sumLes = [...buckets.keys()].filter((k) => k.includes('function="Sum"')).map((k) => /le="([^"]+)"/.exec(k)?.[1]);
  assert.deepEqual(sumLes, ['0.001', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '+Inf']);
  const cumulative = [...buckets.entries()].filter(([k]) => k.includes('function="Sum"')).map(([, v]) => v);
  assert.ok(cumulative.every((v, i) => i === 0 || v >= (cumulative[i - 1] as number)), `cumulative buckets: ${cumulative.join(',')}`);
  const seconds = series(metrics, 'driveshaft_job_duration_seconds_sum').get('{pool="Regular",function="Sum"}') ?? -1;
  assert.ok(seconds > 0 && seconds < 5, `duration sum ${seconds}`);

  assert.deepEqual(
    [...series(metrics, 'driveshaft_slots')],
    [
      ['{pool="Regular",state="idle"}', 2],
      ['{pool="Regular",state="busy"}', 0],
      ['{pool="Regular",state="stopping"}', 0],
    ],
  );
  const server = `{server="${r.gearmand.label}"}`;
  assert.deepEqual([...series(metrics, 'driveshaft_gearmand_up')], [[server, 1]]);
  assert.deepEqual([...series(metrics, 'driveshaft_gearmand_scrape_ok')], [[server, 1]]);
  assert.equal(series(metrics, 'driveshaft_gearmand_queue_jobs').get(backlog), 2);
  assert.equal(series(metrics, 'driveshaft_gearmand_queue_running_jobs').get(backlog), 0);
  assert.equal(series(metrics, 'driveshaft_gearmand_queue_workers').get(backlog), 0);
  assert.equal(series(metrics, 'driveshaft_gearmand_queue_workers').get(`{server="${r.gearmand.label}",function="Sum"}`), 2);
  assert.deepEqual(
    [...series(metrics, 'driveshaft_reloads_total')],
    [
      ['{result="ok"}', 0],
      ['{result="failed"}', 0],
    ],
  );
  assert.deepEqual([...series(metrics, 'driveshaft_child_restarts_total')], [['{pool="Regular"}', 0]]);
  for (const family of ['driveshaft_jobs_total', 'driveshaft_job_duration_seconds', 'driveshaft_http_responses_total', 'driveshaft_slots']) {
    assert.match(metrics, new RegExp(`^# HELP ${family} .+\\n# TYPE ${family} (counter|gauge|histogram)$`, 'm'));
  }

  // The counts survive a child crash, and the restart shows.
  const after = await crashChild(r, 'Regular', (body) => series(body, 'driveshaft_child_restarts_total').get('{pool="Regular"}') === 1, 'the restart in the metrics');
  assert.equal(series(after, 'driveshaft_jobs_total').get('{pool="Regular",function="Sum",outcome="completed"}'), 3);
  assert.equal(series(after, 'driveshaft_http_responses_total').get('{pool="Regular",code="500"}'), 1);
});

test('GET /readyz should turn 503 naming the pool while gearmand is down, and 200 again once it is back', async (t) => {
  const r = await rig(t, (endpoint) => ({ Regular: { uri: endpoint.url, count: 2, jobs: ['Sum'] }, Parked: { uri: endpoint.url, count: 0, jobs: ['P'] } }));
  await waitFor(async () => (await text(`${r.base}/readyz`)).status === 200, { timeoutMs: 10_000, message: '/readyz 200 at start' });
  assert.deepEqual(await text(`${r.base}/healthz`), { status: 200, body: 'ok\n' });

  await r.gearmand.stop();
  const down = await waitFor(
    async () => {
      const answer = await text(`${r.base}/readyz`);
      return answer.status === 503 && answer;
    },
    { timeoutMs: 10_000, message: '/readyz 503 with gearmand stopped' },
  );
  assert.match(down.body, /^not ready\nRegular: no slot is registered with any gearmand \(2 slots, 1 servers: 127\.0\.0\.1:\d+\)\n$/);
  assert.ok(!down.body.includes('Parked'), 'a pool with worker_count 0 is never the reason');
  assert.deepEqual(await text(`${r.base}/healthz`), { status: 200, body: 'ok\n' }, 'alive all the same');
  const metrics = (await text(`${r.base}/metrics`)).body;
  assert.equal(series(metrics, 'driveshaft_gearmand_up').get(`{server="${r.gearmand.label}"}`), 0);

  await r.gearmand.restart();
  await waitFor(async () => (await text(`${r.base}/readyz`)).status === 200, { timeoutMs: 15_000, message: '/readyz 200 after gearmand restarted' });
  // And it really serves again (the rig's client died with the old gearmand).
  const client = await GearmanClient.connect(r.gearmand.port);
  t.after(() => client.close());
  assert.equal((await client.submit('Sum', 'again')).outcome, 'complete');
});

test('GET /status should show the same slots as threads on the status port, and the running job with its handle and age', async (t) => {
  const r = await rig(t, (endpoint) => ({ Regular: { uri: endpoint.url, count: 3, jobs: ['Sum'] } }));
  await waitFor(async () => (await workersFor(r.gearmand, 'Sum')) === 3, { timeoutMs: 10_000, message: 'three Sum workers' });
  const slow = r.client.submit('Sum', 'slow', { unique: 'unique-7' });
  await waitFor(() => r.endpoint.requests.length === 1, { timeoutMs: 10_000, message: 'the slow job at the endpoint' });
  const handle = parseJsonJob(r.endpoint.requests[0]?.body ?? Buffer.alloc(0)).job_handle;
  const threads = parseThreads(await statusExchange(r.statusPort, 'threads\n'));
  type StatusDoc = {
    state: string;
    config: { file: string; loadedAt: string; servers: string[] };
    pools: Array<{ name: string; slots: Array<{ id: string; state: string; stopping: boolean; job: { handle: string; unique: string; function: string; ageMs: number } | null }>; servers: Array<{ server: string; connectedSlots: number }>; counters: Record<string, number> }>;
    gearmand: Array<{ server: string; scrapeOk: boolean }>;
  };
  // The exporter serves one snapshot per second: wait for one taken after the job is a second old,
  // which also proves the age keeps counting while the job runs.
  const doc = await waitFor(
    async () => {
      const response = await fetch(`${r.base}/status`);
      assert.equal(response.status, 200);
      const candidate = (await response.json()) as StatusDoc;
      const running = candidate.pools.find((p) => p.name === 'Regular')?.slots.find((s) => s.job !== null);
      return (running?.job?.ageMs ?? 0) >= 1000 ? candidate : undefined;
    },
    { timeoutMs: 10_000, message: '/status showing the running job at least 1 s old' },
  );
  assert.equal(doc.state, 'running');
  assert.match(doc.config.file, /jobs\.json$/);
  assert.ok(Date.parse(doc.config.loadedAt) > 0);
  assert.deepEqual(doc.config.servers, [r.gearmand.label]);
  const pool = doc.pools.find((p) => p.name === 'Regular');
  assert.ok(pool !== undefined);
  assert.deepEqual(pool.slots.map((s) => s.id).sort(), threads.map((l) => l.id).sort(), 'same slot ids as threads');
  for (const line of threads) {
    const slot: (typeof pool.slots)[number] | undefined = pool.slots.find((s) => s.id === line.id);
    assert.equal(slot?.stopping, line.stopping === '1');
    assert.equal(line.state, slot?.job === null ? 'Waiting for work' : `job_handle=${slot?.job.handle} job_unique=${slot?.job.unique}`);
  }
  const busy = pool.slots.filter((s) => s.job !== null);
  assert.equal(busy.length, 1);
  assert.equal(busy[0]?.state, 'busy');
  assert.equal(busy[0]?.job?.handle, handle);
  assert.equal(busy[0]?.job?.unique, 'unique-7');
  assert.equal(busy[0]?.job?.function, 'Sum');
  assert.deepEqual(pool.servers.map((s) => [s.server, s.connectedSlots]), [[r.gearmand.label, 3]]);
  r.release();
  assert.equal((await slow).outcome, 'complete');
});

test('driveshaft should exit 2 with one line naming --exporter_addr when its port is taken', async (t) => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as net.AddressInfo).port;
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, ['127.0.0.1:1'], { Regular: { uri: 'http://127.0.0.1:1/job', count: 1, jobs: ['Sum'] } });
  const daemon = spawnDaemon(t, ['--jobsconfig', file, '--exporter_addr', `127.0.0.1:${port}`]);
  const { code } = await daemon.exited;
  assert.equal(code, 2);
  assert.match(daemon.output(), new RegExp(`^driveshaft: --exporter_addr 127\\.0\\.0\\.1:${port}: cannot listen: .*EADDRINUSE`, 'm'));
  assert.equal(daemon.count((r) => r.event === 'fork'), 0, 'no pool child was started');
});

test(
  'GET / should show the pools and a running job in headless Chromium',
  NEEDS_CHROMIUM,
  async (t) => {
    const { chromium } = await import('playwright-core');
    const r = await rig(t, (endpoint) => ({
      Regular: { uri: endpoint.url, count: 6, jobs: ['Sum', 'Resize'] },
      Reports: { uri: endpoint.url, count: 2, jobs: ['Report'] },
      Parked: { uri: endpoint.url, count: 0, jobs: ['Later'] },
    }));
    await waitFor(async () => (await workersFor(r.gearmand, 'Sum')) === 6 && (await workersFor(r.gearmand, 'Report')) === 2, { timeoutMs: 10_000, message: 'all workers' });
    await Promise.all(['1', '2', '3', '4', 'fail', '500'].map((w) => r.client.submit('Sum', w)));
    await Promise.all(['a', 'b'].map((w) => r.client.submit('Report', w)));
    const slow = r.client.submit('Resize', 'slow-image', { unique: 'img-0042' });
    await waitFor(() => r.endpoint.requests.some((q) => parseJsonJob(q.body).workload === 'slow-image'), { timeoutMs: 10_000, message: 'the slow job running' });
    const handle = parseJsonJob(r.endpoint.requests.find((q) => parseJsonJob(q.body).workload === 'slow-image')?.body ?? '').job_handle;
    for (const w of ['x', 'y', 'z']) await r.client.submit('Backlog', w, { background: true });

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS, '--disable-quic'],
    });
    t.after(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    await page.goto(`${r.base}/`);
    const regular = page.locator('section[data-pool="Regular"]');
    await regular.locator('table.jobs').getByText(handle).waitFor({ timeout: 10_000 });
    await page.locator('section[data-pool="Reports"]').waitFor({ timeout: 10_000 });
    await page.locator('section[data-pool="Parked"]').waitFor({ timeout: 10_000 });
    // Let it poll a few times with jobs flowing, so the job rate has deltas to show.
    await page.getByText('Backlog').waitFor({ timeout: 10_000 });
    for (let i = 0; i < 30; i++) {
      await r.client.submit(i % 10 === 9 ? 'Report' : 'Sum', i % 15 === 14 ? 'fail' : String(i));
      await page.waitForTimeout(100);
    }

    // The page renders a poll taken at most a second ago, which may still show the last Sum running:
    // wait for the settled state (only the held Resize job busy), then read one rendering of it.
    await regular.getByText(/Slots: 1 busy, 5 idle/i).waitFor({ timeout: 10_000 });
    const regularText = await regular.innerText();
    assert.match(regularText, /Slots: 1 busy, 5 idle/i);
    assert.match(regularText, /img-0042/);
    assert.match(regularText, /Resize/);
    assert.match(regularText, /HTTP 200: \d+ · HTTP 500: 1/);
    assert.doesNotMatch(regularText, /–\s*jobs\/s/, 'a job rate once two polls are in');
    assert.equal(await regular.locator('.slot').count(), 6);
    assert.equal(await regular.locator('.slot.busy').count(), 1);
    const ageText = await regular.locator('table.jobs td.num').first().innerText();
    assert.match(ageText, /^\d+(\.\d)? s$|^\d+ ms$/);
    assert.match(await page.locator('header').innerText(), /running[\s\S]*ready/);
    assert.deepEqual(problems, [], 'no script errors and nothing blocked by the CSP');

    const dir = path.join(ROOT, 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'status-page.png');
    await page.screenshot({ path: file, fullPage: true });
    assert.ok(statSync(file).size > 10_000);
    r.release();
    assert.equal((await slow).outcome, 'complete');
  },
);

test('one function\'s outage should show as that function\'s open breaker in /status, /metrics and gauges, while the pool breaker stays closed and /readyz 200', async (t) => {
  // Broken's jobs get 503 (transient: retried, then its breaker opens after 2 distinct jobs); Healthy's succeed.
  // A long cool-off keeps the breaker open for the whole test; no job's budget runs out meanwhile.
  const delivery = { breaker_threshold: 2, breaker_cooloff: 120, breaker_max_cooloff: 120, min_backoff: 0.05, max_backoff: 0.05, max_attempts: 1000 };
  const r = await rig(t, (endpoint) => ({ Split: { uri: endpoint.url, count: 2, jobs: ['Broken', 'Healthy'], extra: { delivery } } }), (job) =>
    job.function_name === 'Broken' ? { status: 503, body: 'down for maintenance' } : undefined,
  );
  await waitFor(async () => (await workersFor(r.gearmand, 'Broken')) === 2 && (await workersFor(r.gearmand, 'Healthy')) === 2, { timeoutMs: 10_000, message: 'two workers for each function' });
  for (const w of ['b1', 'b2', 'b3']) await r.client.submit('Broken', w, { background: true });

  type FunctionBreaker = { breaker: string; since: string; lastReason: string | null; openedTotal: number };
  type Delivery = { breaker: string; openedTotal: number; functions: Record<string, FunctionBreaker> };
  const delivered = await waitFor(
    async () => {
      const doc = (await (await fetch(`${r.base}/status`)).json()) as { pools: Array<{ name: string; delivery: Delivery | null }> };
      const d = doc.pools.find((p) => p.name === 'Split')?.delivery;
      return d?.functions.Broken?.breaker === 'open' && d;
    },
    { timeoutMs: 15_000, message: '/status showing Broken\'s breaker open' },
  );
  // Paused: gearmand no longer hands Broken's jobs to any slot, Healthy keeps both.
  await waitFor(async () => (await workersFor(r.gearmand, 'Broken')) === 0, { timeoutMs: 10_000, message: 'Broken unregistered' });
  assert.equal(await workersFor(r.gearmand, 'Healthy'), 2);
  assert.equal((await r.client.submit('Healthy', 'still running')).outcome, 'complete');

  assert.equal(delivered.breaker, 'closed', 'the pool breaker stays closed');
  assert.equal(delivered.openedTotal, 0);
  assert.deepEqual(Object.keys(delivered.functions), ['Broken'], 'Healthy never failed: no breaker');
  const broken = delivered.functions.Broken as FunctionBreaker;
  assert.equal(broken.openedTotal, 1);
  assert.match(broken.lastReason ?? '', /\b503\b/);
  assert.equal(new Date(broken.since).toISOString(), broken.since, 'since is an ISO time');
  assert.ok(Date.now() - Date.parse(broken.since) < 60_000);

  const metrics = await waitFor(
    async () => {
      const { body } = await text(`${r.base}/metrics`);
      return series(body, 'driveshaft_function_breaker_state').get('{pool="Split",function="Broken",state="open"}') === 1 && body;
    },
    { timeoutMs: 10_000, message: '/metrics showing Broken\'s breaker open' },
  );
  assert.deepEqual(
    [...series(metrics, 'driveshaft_function_breaker_state')],
    [
      ['{pool="Split",function="Broken",state="closed"}', 0],
      ['{pool="Split",function="Broken",state="open"}', 1],
      ['{pool="Split",function="Broken",state="half-open"}', 0],
    ],
  );
  assert.deepEqual(
    [...series(metrics, 'driveshaft_function_breaker_opened_total')],
    [
      ['{pool="Split",function="Broken"}', 1],
      ['{pool="Split",function="Healthy"}', 0],
    ],
  );
  assert.equal(series(metrics, 'driveshaft_breaker_state').get('{pool="Split",state="closed"}'), 1);
  assert.equal(series(metrics, 'driveshaft_breaker_opened_total').get('{pool="Split"}'), 0);
  assert.match(metrics, /^# TYPE driveshaft_function_breaker_opened_total counter$/m);
  assert.match(metrics, /^# TYPE driveshaft_function_breaker_state gauge$/m);

  const gauges = (await statusExchange(r.statusPort, 'gauges\n')).split('\r\n');
  assert.ok(gauges.includes('Split.breaker: closed'), gauges.join('\n'));
  assert.ok(gauges.includes('Split.paused_functions: 1'), gauges.join('\n'));
  assert.ok(gauges.includes('Split.function.Broken.breaker: open'), gauges.join('\n'));
  assert.ok(!gauges.some((line) => line.includes('Healthy')), 'no line for a function that runs');

  // Its other function runs, so the pool serves. Waited for, not read once: the breaker handed the
  // slots' held Broken jobs back by dropping their sockets (gearmand re-queues a job only then), and a
  // snapshot (up to 1 s old) taken while both reconnected says no slot is registered.
  const ready = await waitFor(
    async () => {
      const now = await text(`${r.base}/readyz`);
      return now.status === 200 ? now : undefined;
    },
    { timeoutMs: 5000, message: '/readyz 200 while Healthy runs' },
  );
  assert.deepEqual(ready, { status: 200, body: 'ready\n' });
  const waiting = (await r.gearmand.status()).find((f) => f.function === 'Broken');
  assert.equal(waiting?.total, 3, 'Broken\'s jobs wait in gearmand, none lost');

  // A crashed child's successor starts with closed breakers and counts its openings from zero: the
  // counter goes on from the pool's total (1 + the new child's 1), it does not go back.
  const after = await crashChild(
    r,
    'Split',
    (body) => series(body, 'driveshaft_function_breaker_opened_total').get('{pool="Split",function="Broken"}') === 2,
    'the new child\'s opening added to the old one\'s',
  );
  assert.equal(series(after, 'driveshaft_function_breaker_state').get('{pool="Split",function="Broken",state="open"}'), 1);
  assert.equal(series(after, 'driveshaft_function_breaker_opened_total').get('{pool="Split",function="Healthy"}'), 0);
});
