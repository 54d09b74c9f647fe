/**
 * A pause answers only once nothing sent before it can still bring a job it forbids (pool-pause.ts):
 * a GRAB outstanding when the pool is paused is waited for, and the job it brings is counted as
 * running. Against a fake gearmand that holds its answer to a GRAB, as a slow or stopped server would
 * (with a real gearmand the answer is too quick to pause in between).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { startEndpoint } from '../helpers/http-endpoint.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { waitFor } from '../helpers/wait-for.js';
import { buildPacket } from '../helpers/packet-builder.js';
import { FakeGearmand, T } from './fake-gearmand.js';
import type { FakeConnection } from './fake-gearmand.js';
import { makeSettings } from './fixtures.js';

test('WorkerPool.setPause should wait for a GRAB outstanding when the pool is paused, and count the job it brings', async (t) => {
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  let held: FakeConnection | undefined;
  fake.hook = (connection, packet) => {
    if (held !== undefined || packet.type !== T.GRAB_JOB_UNIQ) return false;
    held = connection;
    return true;
  };
  // The job is held at the endpoint, so it is still running when the pause counts it.
  let release: () => void = () => {};
  const holding = new Promise<void>((resolve) => (release = resolve));
  const endpoint = await startEndpoint(async () => {
    await holding;
    return { body: { gearman_ret: 0, response_string: 'done' } };
  });
  t.after(() => {
    release();
    return endpoint.close();
  });
  const settings = makeSettings([fake.address], endpoint.url, { workerCount: 1 }, { loopTimeoutMs: 5000 });
  const fn = settings.pool.jobsList[0] as string;
  const pool = new WorkerPool({ log: memoryLogger('info').logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  const grab = await waitFor(() => held, { timeoutMs: 5000, message: 'a GRAB on the fake, held unanswered' });

  let answered = false;
  const paused = pool.setPause({ pool: true, functions: [] }).then((result) => {
    answered = true;
    return result;
  });
  // The scenario: the GRAB stays outstanding for a while after the pause.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(answered, false, 'the pause waits for the GRAB sent before it');
  fake.hook = null;
  grab.send(FakeGearmand.jobAssign({ handle: 'H:fake:1', fn, unique: 'u-1', workload: Buffer.from('late') }));
  assert.deepEqual(await paused, { running: { [fn]: 1 }, settled: true });
  await waitFor(() => endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the job assigned before the pause to run' });
  assert.equal(pool.status().flow?.paused, true);
  release();
  await waitFor(() => pool.status().slots.every((slot) => slot.job === null) || undefined, { timeoutMs: 5000, message: 'the job to finish' });
});

test('WorkerPool.setPause should wait until a paused function\'s CANT_DO, held back by a GRAB outstanding, has gone out', async (t) => {
  const fake = await FakeGearmand.start();
  t.after(() => fake.close());
  let held: FakeConnection | undefined;
  fake.hook = (connection, packet) => {
    if (held !== undefined || packet.type !== T.GRAB_JOB_UNIQ) return false;
    held = connection;
    return true;
  };
  const endpoint = await startEndpoint(() => ({ body: { gearman_ret: 0, response_string: 'done' } }));
  t.after(() => endpoint.close());
  const settings = makeSettings([fake.address], endpoint.url, { workerCount: 1, jobsList: ['Resize', 'Sum'] }, { loopTimeoutMs: 5000 });
  const pool = new WorkerPool({ log: memoryLogger('info').logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  const grab = await waitFor(() => held, { timeoutMs: 5000, message: 'a GRAB on the fake, held unanswered' });

  let answered = false;
  const paused = pool.setPause({ pool: false, functions: ['Resize'] }).then((result) => {
    answered = true;
    return result;
  });
  // The scenario: the GRAB stays outstanding for a while after the pause.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(answered, false, 'the pause waits: the GRAB could still bring a Resize job');
  assert.equal(grab.packets.some((packet) => packet.type === T.CANT_DO), false, 'no CANT_DO while the GRAB is outstanding');
  fake.hook = null;
  grab.send(buildPacket('RES', T.NO_JOB, []));
  assert.deepEqual(await paused, { running: {}, settled: true });
  // Written before the pause settled; the fake reads it a moment later (reading at once failed 1 run in 3).
  const cantDo = await waitFor(() => grab.packets.find((packet) => packet.type === T.CANT_DO), { timeoutMs: 2000, message: 'the CANT_DO at the fake' });
  assert.equal(cantDo.data.toString(), 'Resize');
});
