/**
 * HeldJobs (src/child/delivery/delivered-job.ts): the list of held jobs the delivery walks when a
 * breaker opens and when the deadline watch fires. Jobs leave it while it is walked (hand-backs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeliveredJob, HeldJobs } from '../../../src/child/delivery/delivered-job.js';
import type { DeliveryDecisions, JobHolder } from '../../../src/child/delivery/delivered-job.js';
import type { Job } from '../../../src/child/job.js';
import { memoryLogger } from '../../helpers/memory-logger.js';

const decisions: DeliveryDecisions = { begin: () => undefined, attemptEnded: () => undefined, connectionLost: () => undefined, slotStopping: () => undefined };
const holder: JobHolder = { stopping: false, holds: () => true, progress: () => undefined, answer: () => true, release: () => undefined, forget: () => undefined };

function job(name: string): DeliveredJob {
  const handle = Buffer.from(name);
  const held: Job = { handle, handleText: name, functionName: 'fn', functionBytes: Buffer.from('fn'), unique: Buffer.alloc(0), uniqueText: '', workload: Buffer.alloc(0), server: 's' };
  return new DeliveredJob(decisions, holder, held, undefined, { traceId: '1'.repeat(32), flags: '01' }, memoryLogger().logger);
}

const names = (list: HeldJobs): string[] => {
  const seen: string[] = [];
  list.forEach((j) => seen.push(j.job.handleText));
  return seen;
};

test('HeldJobs should keep jobs in the order they were added and drop one from anywhere', () => {
  const list = new HeldJobs();
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(job) as [DeliveredJob, DeliveredJob, DeliveredJob, DeliveredJob];
  for (const j of [a, b, c, d]) list.add(j);
  assert.deepEqual(names(list), ['a', 'b', 'c', 'd']);
  list.delete(c);
  list.delete(a);
  assert.deepEqual(names(list), ['b', 'd']);
  list.delete(d);
  list.add(a);
  assert.deepEqual(names(list), ['b', 'a']);
  list.delete(b);
  list.delete(a);
  assert.deepEqual(names(list), []);
  list.add(c);
  assert.deepEqual(names(list), ['c']);
});

test('HeldJobs delete should ignore a job it does not hold, or no longer holds', () => {
  const list = new HeldJobs();
  const [a, b] = ['a', 'b'].map(job) as [DeliveredJob, DeliveredJob];
  list.add(a);
  list.delete(b);
  list.delete(a);
  list.delete(a);
  assert.deepEqual(names(list), []);
  list.add(b);
  list.delete(a);
  assert.deepEqual(names(list), ['b']);
});

test('HeldJobs forEach should visit every job once while the visitor takes jobs out', () => {
  const list = new HeldJobs();
  const all = ['a', 'b', 'c', 'd', 'e'].map(job);
  for (const j of all) list.add(j);
  const visited: string[] = [];
  list.forEach((j) => {
    visited.push(j.job.handleText);
    // Hand back every other job, as onBreakerOpen does with the waiting ones.
    if (visited.length % 2 === 1) list.delete(j);
  });
  assert.deepEqual(visited, ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(names(list), ['b', 'd']);
  // A job taken out holds no link to one still held (a dead job must not keep a live one reachable).
  const a = all[0] as DeliveredJob;
  assert.equal(a.heldPrev, null);
  assert.equal(a.heldNext, null);
});
