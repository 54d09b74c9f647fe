import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PoolPause, runningByFunction, whenQuiet } from '../../src/child/pool-pause.js';
import type { PausedSlot } from '../../src/child/pool-pause.js';

test('PoolPause.set should take the whole pause and say what changed', () => {
  const pause = new PoolPause();
  assert.deepEqual(pause.set({ pool: true, functions: [] }), { pool: true, functions: false });
  assert.deepEqual(pause.set({ pool: true, functions: ['Resize'] }), { pool: false, functions: true });
  assert.deepEqual(pause.set({ pool: true, functions: ['Resize'] }), { pool: false, functions: false }, 'the same pause twice changes nothing');
  assert.deepEqual(pause.set({ pool: false, functions: ['Crop'] }), { pool: true, functions: true });
  assert.deepEqual(pause.allowed(['Resize', 'Crop', 'Sum']), ['Resize', 'Sum']);
  assert.deepEqual(pause.status(['Sum', 'Crop', 'Gone']), { paused: false, pausedFunctions: ['Crop'] });
});

test('PoolPause.settled should wait for GRABs outstanding while the pool is paused, and for CANT_DOs behind a GRAB', () => {
  const slot = (grabbing: boolean, cantDoBehindGrab = false): PausedSlot => ({ grabbing, cantDoBehindGrab });
  const pause = new PoolPause();
  assert.equal(pause.settled([slot(true)], [slot(true)]), true, 'a grab of a pool that is not paused is no concern');
  pause.set({ pool: true, functions: [] });
  assert.equal(pause.settled([slot(false), slot(true)], []), false, 'an outgoing slot grabbing counts too');
  assert.equal(pause.settled([slot(false)], [slot(false)]), true);
  pause.set({ pool: false, functions: ['Resize'] });
  assert.equal(pause.settled([slot(true)], [slot(true, true)]), false);
  assert.equal(pause.settled([slot(true)], [slot(true, false)]), true);
});

test('runningByFunction should count the held jobs by function as own properties', () => {
  const job = (functionName: string) => ({ handle: 'H', unique: 'u', functionName, server: 's', startedAt: 0 });
  const slots = [job('Sum'), null, job('__proto__'), job('Sum')].map((held, i) => ({ id: `1-${i}`, stopping: false, job: held, connectedServers: 1 }));
  const running = runningByFunction(slots);
  assert.deepEqual(Object.entries(running), [['Sum', 2], ['__proto__', 1]]);
});

test('whenQuiet should resolve true once the condition holds, false when it still does not at the timeout', async () => {
  let quiet = false;
  setTimeout(() => (quiet = true), 30);
  assert.equal(await whenQuiet(() => quiet, 5000), true);
  const started = Date.now();
  assert.equal(await whenQuiet(() => false, 50), false);
  assert.ok(Date.now() - started >= 50);
});
