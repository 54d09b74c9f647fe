import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { RELEASE_AFTER_ACTIVE_MS, RELEASE_AFTER_GROWTH_BYTES, startIdleMemoryRelease } from '../src/idle-memory.js';
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

test('a quiet process that did a little work but grew its heap should give memory back, spaced out', async (t) => {
  const releases: { at: number; before: number; after: number }[] = [];
  const spacingMs = 400;
  const release = startIdleMemoryRelease({ intervalMs: 50, growthSpacingMs: spacingMs, onRelease: (before, after) => releases.push({ at: performance.now(), before, after }) });
  t.after(() => release.stop());
  // Start-up counts as a burst: the first release comes on its own.
  await waitFor(() => releases.length === 1, { timeoutMs: 5_000, message: 'the start-up release' });

  // A few jobs' worth: far less event-loop time than a burst, but objects that outlive a scavenge or two.
  const start = performance.now();
  let keep: object[] = [];
  for (let i = 0; i < 40_000; i++) keep.push({ i, list: [i, i + 1] });
  const grownBy = getHeapStatistics().total_physical_size - releases[0]!.after;
  keep = [];
  const busyMs = performance.now() - start;
  assert.ok(busyMs < RELEASE_AFTER_ACTIVE_MS / 2, `the work was short: ${busyMs.toFixed(1)} ms`);
  assert.ok(grownBy >= RELEASE_AFTER_GROWTH_BYTES, `the work grew the heap: ${grownBy} bytes`);

  // Growth releases are spaced by growthSpacingMs and by 100× the last release's GC duration: the
  // start-up GC takes ~18 ms alone (so this one comes ~1.8 s after it), and can pass 50 ms when the
  // whole suite loads the 2 cores, which once made it later than a 5 s wait.
  await waitFor(() => releases.length === 2, { timeoutMs: 20_000, message: 'the release after a little work' });
  const second = releases[1]!;
  assert.ok(second.at - releases[0]!.at >= spacingMs, `no sooner than the spacing: ${(second.at - releases[0]!.at).toFixed(0)} ms`);
  assert.ok(second.after < second.before, `the heap shrank: ${second.before} → ${second.after}`);

  // Nothing done since: no further collection, however long it stays quiet.
  await new Promise((resolve) => setTimeout(resolve, 2 * spacingMs));
  assert.equal(releases.length, 2, 'collected again without any work in between');
});
