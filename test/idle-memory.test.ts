import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeapSpaceStatistics } from 'node:v8';
import { RELEASE_AFTER_ACTIVE_MS, startIdleMemoryRelease } from '../src/idle-memory.js';
import { waitFor } from './helpers/wait-for.js';

function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.physical_space_size ?? NaN;
}

/** Keeps the event loop busy for `ms` with short-lived objects that grow V8's young generation. */
function work(ms: number): void {
  const end = performance.now() + ms;
  let keep: object[] = [];
  while (performance.now() < end) {
    keep.push({ at: performance.now(), list: [1, 2, 3] });
    if (keep.length > 100_000) keep = [];
  }
}

test('a quiet process after work should give its young generation back, and only once per stretch of work', async (t) => {
  const releases: { before: number; after: number; newSpace: number }[] = [];
  work(300);
  const grown = newSpaceBytes();
  assert.ok(grown > 1024 * 1024, `the work grew the young generation: ${grown} bytes`);
  const release = startIdleMemoryRelease({ intervalMs: 50, onRelease: (before, after) => releases.push({ before, after, newSpace: newSpaceBytes() }) });
  t.after(() => release.stop());
  await waitFor(() => releases.length === 1, { timeoutMs: 5_000, message: 'the first release' });
  const first = releases[0]!;
  assert.ok(first.after < first.before, `the heap shrank: ${first.before} → ${first.after}`);
  assert.ok(first.newSpace < grown / 2, `the young generation shrank: ${grown} → ${first.newSpace}`);

  // Quiet with nothing done since: no second collection.
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(releases.length, 1, 'collected again without any work in between');

  // Work spread over intervals (each one busy), then quiet: released again.
  for (let i = 0; i < 6; i++) {
    work(RELEASE_AFTER_ACTIVE_MS / 4);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await waitFor(() => releases.length === 2, { timeoutMs: 5_000, message: 'the release after more work' });
});
