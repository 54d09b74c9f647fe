/**
 * Liveness of delivery under faults (issue #19): one bad job, one failing function or one full disk
 * neither stalls the pool nor spins it in a loop. Real gearmand, a real endpoint, a WorkerPool in this
 * process; the full disk is a real, small tmpfs (root only: mount).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_DELIVERY } from '../../src/config/types.js';
import type { DeliveryPolicy, PoolConfig } from '../../src/config/types.js';
import { parseJsonJob } from '../helpers/http-endpoint.js';
import type { EndpointHandler } from '../helpers/http-endpoint.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { rig } from './fixtures.js';
import type { Rig } from './fixtures.js';

const OK = { body: { gearman_ret: 0, response_string: 'ok' } };
const isRoot = process.getuid?.() === 0;

function policy(overrides: Partial<DeliveryPolicy>): DeliveryPolicy {
  return { ...DEFAULT_DELIVERY, retryOnStatus: [...DEFAULT_DELIVERY.retryOnStatus], ...overrides };
}

function functionBreaker(r: Rig, fn: string): string | undefined {
  return r.pool.status().delivery?.functions?.[fn]?.breaker;
}

async function queuedOf(r: Rig, fn: string): Promise<number> {
  return (await r.gearmand.status()).find((f) => f.function === fn)?.total ?? 0;
}

function functionOf(request: { body: Buffer }): string {
  return parseJsonJob(request.body).function_name;
}

/** Two functions in one pool: the rig's own (A) and `${A}-b` (B). */
async function twoFunctionRig(t: Parameters<typeof rig>[0], delivery: DeliveryPolicy, handler: EndpointHandler, workerCount = 4, pool: Partial<PoolConfig> = {}): Promise<{ r: Rig; a: string; b: string }> {
  const name = `fault${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const a = `${name}-a`;
  const b = `${name}-b`;
  const r = await rig(t, { pool: { workerCount, jobsList: [a, b], delivery, ...pool }, handler, logLevel: 'info' });
  return { r, a, b };
}

test('a lone job that always gets a transient answer reaches the dead-letter file after max_attempts, without opening any breaker, while other functions keep running', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'letters.jsonl');
  const { r, a, b } = await twoFunctionRig(t, policy({ maxAttempts: 4, minBackoffMs: 20, maxBackoffMs: 60, deadLetterFile: file }), (req) => (functionOf(req).endsWith('-a') ? { status: 503 } : OK));
  const poison = r.client.submit(a, 'poison', { unique: 'lone-poison', timeoutMs: 20_000 });
  // The pool's other function is served at once while the poison job retries.
  for (let i = 0; i < 5; i++) assert.equal((await r.client.submit(b, `b${i}`, { timeoutMs: 5000 })).outcome, 'complete');
  const result = await poison;
  assert.equal(result.outcome, 'fail', 'a poison job ends, with its letter written first');
  const posts = r.endpoint.requests.filter((q) => functionOf(q) === a).length;
  assert.equal(posts, 4, 'exactly max_attempts POSTs');
  const letters = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(letters.length, 1);
  assert.equal(letters[0]?.unique, 'lone-poison');
  assert.equal(letters[0]?.attempts, 4);
  const delivery = r.pool.status().delivery;
  assert.equal(delivery?.opened, 0, 'the pool breaker never opened');
  assert.equal(delivery?.functions?.[a]?.opened ?? 0, 0, 'one job alone does not open its function\'s breaker');
  assert.equal(r.pool.status().counters.jobs_handed_back, 0);
});

test('a lone job whose endpoint hangs, or streams progress for ever, is cut at max_running_time each attempt and dead-lettered after max_attempts, without opening a breaker', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'letters.jsonl');
  function* forever(): Generator<{ data: object; delayMs: number }> {
    for (let i = 0; ; i++) yield { data: { status: [i, 1_000_000] }, delayMs: 20 };
  }
  const { r, a, b } = await twoFunctionRig(
    t,
    policy({ maxAttempts: 3, minBackoffMs: 20, maxBackoffMs: 40, deadLetterFile: file }),
    (req) => {
      const unique = parseJsonJob(req.body).unique;
      if (unique === 'hangs') return { delayMs: 60_000, ...OK };
      if (unique === 'streams') return { stream: forever() };
      return OK;
    },
    4,
    { maxRunningTimeMs: 300 },
  );
  const hangs = r.client.submit(a, 'h', { unique: 'hangs', timeoutMs: 20_000 });
  const streams = r.client.submit(a, 's', { unique: 'streams', timeoutMs: 20_000 });
  for (let i = 0; i < 5; i++) assert.equal((await r.client.submit(b, `b${i}`, { timeoutMs: 5000 })).outcome, 'complete', 'the other function runs meanwhile');
  assert.equal((await hangs).outcome, 'fail');
  assert.equal((await streams).outcome, 'fail');
  const letters = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { unique: string; attempts: number; reason: string });
  assert.deepEqual(letters.map((l) => l.unique).sort(), ['hangs', 'streams']);
  for (const letter of letters) {
    assert.equal(letter.attempts, 3);
    assert.match(letter.reason, /gave up after 3 attempts: no answer from the endpoint within max_running_time \(300 ms\)/);
  }
  assert.equal(r.endpoint.requests.filter((q) => parseJsonJob(q.body).unique === 'hangs').length, 3);
  const delivery = r.pool.status().delivery;
  assert.equal(delivery?.opened, 0);
  assert.equal(delivery?.functions?.[a]?.breaker ?? 'closed', 'closed', 'two failing jobs are below the threshold of 4 distinct jobs');
});

test('the retry budget spans hand-backs: jobs given back while their function is open keep their attempts and first-attempt time, and end in the dead-letter file', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'letters.jsonl');
  const { r, a } = await twoFunctionRig(
    t,
    policy({ maxAttempts: 100, maxRetryDurationMs: 1500, minBackoffMs: 20, maxBackoffMs: 40, breakerThreshold: 2, breakerCooloffMs: 200, breakerMaxCooloffMs: 200, deadLetterFile: file }),
    () => ({ status: 503 }),
    2,
  );
  for (let i = 0; i < 4; i++) await r.client.submit(a, `j${i}`, { unique: `span-${i}`, background: true });
  await waitFor(() => (r.pool.status().counters.jobs_dead_lettered === 4 ? true : undefined), { timeoutMs: 20_000, message: 'all four jobs dead-lettered' });
  assert.ok(r.pool.status().counters.jobs_handed_back >= 2, 'jobs were handed back on the way');
  const posts = new Map<string, Array<{ attempt: string; first: string }>>();
  for (const q of r.endpoint.requests) {
    const unique = parseJsonJob(q.body).unique;
    posts.set(unique, [...(posts.get(unique) ?? []), { attempt: String(q.headers['driveshaft-attempt']), first: String(q.headers['driveshaft-first-attempt']) }]);
  }
  const letters = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { unique: string; attempts: number; reason: string });
  for (const letter of letters) {
    const seen = posts.get(letter.unique) ?? [];
    assert.match(letter.reason, /gave up after max_retry_duration/);
    assert.equal(letter.attempts, seen.length, `${letter.unique}: the letter counts every POST: ${JSON.stringify(seen)}`);
    assert.deepEqual(seen.map((p) => p.attempt), seen.map((_, i) => String(i + 1)), `${letter.unique}: attempt numbers continue across hand-backs`);
    assert.equal(new Set(seen.map((p) => p.first)).size, 1, `${letter.unique}: one first-attempt time across hand-backs`);
  }
  assert.ok([...posts.values()].some((seen) => seen.length >= 2), 'at least one job was attempted again after a hand-back');
  assert.equal(await queuedOf(r, a), 0);
});

test('Retry-After far beyond max_retry_after does not hold the slots: the function pauses, the other function runs, and its jobs run once the endpoint is back', async (t) => {
  let aDown = true;
  const { r, a, b } = await twoFunctionRig(
    t,
    policy({ maxRetryDurationMs: 0, maxRetryAfterMs: 1500, minBackoffMs: 20, maxBackoffMs: 200 }),
    (req) => (functionOf(req).endsWith('-a') && aDown ? { status: 503, headers: { 'Retry-After': '86400' } } : OK),
  );
  for (let i = 0; i < 20; i++) await r.client.submit(a, `a${i}`, { unique: `ra-${i}`, background: true });
  await waitFor(() => (functionBreaker(r, a) === 'open' ? true : undefined), { timeoutMs: 5000, message: `${a} to pause` });
  const started = performance.now();
  const bJobs = await Promise.all(Array.from({ length: 20 }, (_, i) => r.client.submit(b, `b${i}`, { timeoutMs: 10_000 })));
  assert.ok(bJobs.every((job) => job.outcome === 'complete'), 'every job of the other function completed');
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 1500, `the other function's 20 jobs took ${Math.round(tookMs)} ms while ${a} was paused (less than one cool-off)`);
  assert.ok((await queuedOf(r, a)) > 0, `${a}'s jobs wait in gearmand`);
  assert.equal(r.pool.status().counters.jobs_failed, 0);
  assert.equal(r.pool.status().delivery?.opened, 0, 'the pool breaker stayed closed');
  aDown = false;
  await waitFor(async () => ((await queuedOf(r, a)) === 0 ? true : undefined), { timeoutMs: 15_000, message: `${a}'s jobs to run once the endpoint is back` });
  assert.equal(r.pool.status().counters.jobs_failed, 0);
  assert.equal(new Set(r.endpoint.requests.filter((q) => functionOf(q) === a && q.receivedAt > 0).map((q) => parseJsonJob(q.body).unique)).size, 20);
});

test('a Retry-After longer than the rest of max_retry_duration is neither an instant failure nor a parked slot: the last attempt comes at the budget\'s end', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'letters.jsonl');
  const { r, a } = await twoFunctionRig(t, policy({ maxRetryDurationMs: 1500, maxRetryAfterMs: 60_000, deadLetterFile: file }), () => ({ status: 503, headers: { 'Retry-After': '120' } }), 2);
  const started = Date.now();
  const result = await r.client.submit(a, 'late', { unique: 'budget-end', timeoutMs: 20_000 });
  assert.equal(result.outcome, 'fail');
  const posts = r.endpoint.requests.filter((q) => parseJsonJob(q.body).unique === 'budget-end');
  assert.equal(posts.length, 2, 'the first attempt and the last one at the budget\'s end');
  const [first, last] = posts.map((q) => q.receivedAt);
  assert.ok(first !== undefined && last !== undefined);
  assert.ok(last - first >= 1300, `the last attempt came ${last - first} ms after the first (budget 1500 ms)`);
  assert.ok(Date.now() - started < 10_000);
  const letter = JSON.parse(readFileSync(file, 'utf8').trim()) as { reason: string };
  assert.match(letter.reason, /gave up after max_retry_duration \(1500 ms\)/);
});

test('a breaker\'s cool-off honours the endpoint\'s Retry-After, up to max_retry_after', async (t) => {
  const { r, a } = await twoFunctionRig(
    t,
    policy({ minBackoffMs: 20, maxBackoffMs: 5000, breakerThreshold: 2, breakerCooloffMs: 100, breakerMaxCooloffMs: 200, maxRetryAfterMs: 1200 }),
    () => ({ status: 503, headers: { 'Retry-After': '1' } }),
    2,
  );
  for (let i = 0; i < 6; i++) await r.client.submit(a, `p${i}`, { background: true });
  await waitFor(() => (r.endpoint.requests.length >= 5 ? true : undefined), { timeoutMs: 15_000, message: 'a few probes' });
  const times = r.endpoint.requests.map((q) => q.receivedAt);
  const gaps = times.slice(1).map((time, i) => time - (times[i] as number));
  // After the breaker opened (two jobs, first two requests), each probe waits the asked second.
  const probeGaps = gaps.slice(2);
  assert.ok(probeGaps.length >= 2);
  assert.ok(probeGaps.every((gap) => gap >= 950), `gaps between probes: ${probeGaps.join(', ')} ms (Retry-After 1 s, cool-off 0.1 s)`);
  assert.equal(r.pool.status().counters.jobs_failed, 0);
});

test('one function\'s outage opens only its own breaker: the pool breaker stays closed and the other function is never handed back', async (t) => {
  const { r, a, b } = await twoFunctionRig(t, policy({ minBackoffMs: 20, breakerThreshold: 3, breakerCooloffMs: 300, breakerMaxCooloffMs: 300 }), (req) => (functionOf(req).endsWith('-a') ? { status: 503 } : OK));
  for (let i = 0; i < 30; i++) await r.client.submit(a, `a${i}`, { background: true });
  await waitFor(() => (functionBreaker(r, a) === 'open' ? true : undefined), { timeoutMs: 5000, message: `${a}'s breaker to open` });
  const bResults = [];
  for (let i = 0; i < 40; i++) bResults.push(await r.client.submit(b, `b${i}`, { timeoutMs: 5000 }));
  assert.ok(bResults.every((job) => job.outcome === 'complete'));
  const status = r.pool.status();
  assert.equal(status.delivery?.breaker, 'closed');
  assert.equal(status.delivery?.opened, 0);
  assert.equal(status.delivery?.functions?.[b], undefined, `${b} never failed, so it has no breaker`);
  const bPosts = r.endpoint.requests.filter((q) => functionOf(q) === b).length;
  assert.equal(bPosts, 40, `each of ${b}'s jobs was posted once`);
  assert.equal(status.counters.jobs_failed, 0);
});

test('a full dead-letter disk is a transient outcome: no job is posted twice, the loop backs off, and every letter is written once space is back', { skip: isRoot ? false : 'needs root to mount a small tmpfs' }, async (t) => {
  const mount = mkdtempSync(path.join(tmpdir(), 'driveshaft-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mount]);
  t.after(() => {
    // Lazy: the pool may still hold the file open when this runs.
    execFileSync('umount', ['-l', mount]);
    rmSync(mount, { recursive: true, force: true });
  });
  // Room for a few letters only (each is about 1.4 KB); the filler is removed later to make room for all.
  const filler = path.join(mount, 'filler');
  writeFileSync(filler, Buffer.alloc(500 * 1024));
  const file = path.join(mount, 'letters.jsonl');
  const jobs = 200;
  const { r, a } = await twoFunctionRig(t, policy({ deadLetterFile: file, breakerMaxCooloffMs: 1000 }), () => ({ body: { gearman_ret: 1 } }), 4);
  const workload = 'x'.repeat(1024);
  for (let i = 0; i < jobs; i++) await r.client.submit(a, workload, { unique: `full-${i}`, background: true });
  await waitFor(() => (r.logger.find('cannot write to the dead-letter file').length > 0 ? true : undefined), { timeoutMs: 10_000, message: 'the disk to fill up' });
  // While the disk is full: each job was posted once, and the pool is not spinning.
  const windowStart = r.endpoint.requests.length;
  const logsAt = r.logger.records.length;
  await new Promise((resolve) => setTimeout(resolve, 3000)); // the measured window is the point of this check
  assert.ok(r.endpoint.requests.length - windowStart <= 4 * 3, `${r.endpoint.requests.length - windowStart} POSTs in 3 s while the disk was full`);
  assert.ok(r.logger.records.length - logsAt < 20, `${r.logger.records.length - logsAt} log lines in 3 s while the disk was full`);
  const posted = new Map<string, number>();
  for (const q of r.endpoint.requests) posted.set(parseJsonJob(q.body).unique, (posted.get(parseJsonJob(q.body).unique) ?? 0) + 1);
  assert.ok([...posted.values()].every((count) => count === 1), 'no job was posted twice');
  assert.equal(r.pool.status().counters.jobs_failed, r.pool.status().counters.jobs_dead_lettered, 'no job failed without its letter');
  rmSync(filler);
  await waitFor(() => (r.pool.status().counters.jobs_dead_lettered === jobs ? true : undefined), { timeoutMs: 30_000, message: `all ${jobs} letters written once space is back` });
  const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
  const uniques = new Set<string>();
  for (const line of lines) {
    try {
      uniques.add((JSON.parse(line) as { unique: string }).unique);
    } catch {
      // A letter torn by the full disk is one bad line; the same letter is written whole later.
    }
  }
  assert.equal(uniques.size, jobs, 'every job has a whole letter');
  assert.equal(r.pool.status().counters.jobs_failed, jobs);
  assert.equal(r.endpoint.requests.length, jobs, 'every job was posted exactly once');
  assert.equal(r.logger.find('the dead-letter file can be written again').length, 1);
});
