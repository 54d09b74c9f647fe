/**
 * max_workload_bytes against a real gearmand: a job over the limit fails with the reason, without an
 * HTTP request and without the child ever holding its workload; the slot then serves the next job.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rig } from './fixtures.js';

const MiB = 1024 * 1024;

/**
 * Runs `work` and returns the largest Buffer this process asked for meanwhile. Every way the parser or
 * the job runner could hold a workload goes through one of these.
 */
async function largestAllocation(work: () => Promise<void>): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- Buffer's static allocators do not use `this`
  const { alloc, allocUnsafe, allocUnsafeSlow } = Buffer;
  let largest = 0;
  const note = (size: number): void => {
    if (size > largest) largest = size;
  };
  Buffer.alloc = ((size: number, ...rest: Parameters<typeof alloc> extends [number, ...infer R] ? R : never) => {
    note(size);
    return alloc(size, ...rest);
  }) as typeof alloc;
  Buffer.allocUnsafe = ((size: number) => {
    note(size);
    return allocUnsafe(size);
  }) as typeof allocUnsafe;
  Buffer.allocUnsafeSlow = ((size: number) => {
    note(size);
    return allocUnsafeSlow(size);
  }) as typeof allocUnsafeSlow;
  try {
    await work();
  } finally {
    Buffer.alloc = alloc;
    Buffer.allocUnsafe = allocUnsafe;
    Buffer.allocUnsafeSlow = allocUnsafeSlow;
  }
  return largest;
}

test('WorkerPool should fail a 10 MiB job over max_workload_bytes 1 MiB unread, then run the next job on the same slot', async (t) => {
  const r = await rig(t, { pool: { maxWorkloadBytes: MiB } });
  const big = Buffer.alloc(10 * MiB, 0x61);
  let outcome: string | undefined;
  // The client encodes the whole SUBMIT_JOB synchronously inside submit(): only what follows counts.
  const submitted = r.client.submit(r.fn, big, { unique: 'big' });
  const largest = await largestAllocation(async () => {
    outcome = (await submitted).outcome;
  });
  assert.equal(outcome, 'fail');
  assert.ok(largest < MiB, `the worker allocated a ${largest}-byte buffer while the 10 MiB job ran`);
  assert.equal(r.endpoint.requests.length, 0, 'no HTTP request for the oversized job');
  const [line, ...more] = r.logger.find('job failed');
  assert.equal(more.length, 0);
  assert.equal(line?.function, r.fn);
  assert.match(String(line?.handle), /^H:/);
  assert.equal(line?.workloadBytes, 10 * MiB);
  assert.equal(line?.maxWorkloadBytes, MiB);
  assert.equal(line?.cause, 'workload-limit');
  assert.equal(line?.reason, `workload of ${10 * MiB} bytes is over max_workload_bytes (${MiB})`);

  // The same (only) slot takes the next job; a workload exactly at the limit still goes through.
  const atLimit = await r.client.submit(r.fn, Buffer.alloc(MiB, 0x62), { unique: 'at-limit' });
  assert.equal(atLimit.outcome, 'complete');
  assert.equal(r.endpoint.requests.length, 1);
  const status = r.pool.status();
  assert.equal(status.slots.length, 1);
  assert.equal(status.counters.jobs_failed, 1);
  assert.equal(status.counters.jobs_completed, 1);
  assert.equal(status.counters.http_errors, 0, 'an oversized workload is not an HTTP error');
});

test('WorkerPool without max_workload_bytes should run the same 10 MiB job, allocating its workload (the measurement sees it)', async (t) => {
  const r = await rig(t);
  const submitted = r.client.submit(r.fn, Buffer.alloc(10 * MiB, 0x61), { unique: 'big' });
  let outcome: string | undefined;
  const largest = await largestAllocation(async () => {
    outcome = (await submitted).outcome;
  });
  assert.equal(outcome, 'complete');
  assert.ok(largest >= 10 * MiB, `largest allocation ${largest} bytes`);
});
