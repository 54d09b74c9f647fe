/**
 * The default dead-letter location end to end, with the real daemon, a real gearmand and an endpoint
 * that fails every job for good ({"gearman_ret":1}): a pool that names no dead_letter_file keeps its
 * failed background jobs in <--dead_letter_dir>/<pool>.jsonl, in a folder the master creates 0700.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { startEndpoint, type Endpoint } from '../helpers/http-endpoint.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { startServing } from './daemon.js';

const FAIL = { body: { gearman_ret: 1 } };

async function failingWorld(t: TestContext): Promise<{ gearmand: Gearmand; endpoint: Endpoint; dir: string }> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint(() => FAIL);
  t.after(() => endpoint.close());
  return { gearmand, endpoint, dir: tempDir(t) };
}

async function submitBackground(t: TestContext, gearmand: Gearmand, functionName: string, unique: string, workload: Buffer): Promise<void> {
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  await client.submit(functionName, workload, { unique, background: true });
}

function letters(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test('a pool without dead_letter_file should write a failed background job to <--dead_letter_dir>/<pool>.jsonl (folder 0700, file 0600)', async (t) => {
  const { gearmand, endpoint, dir } = await failingWorld(t);
  const jobs = path.join(dir, 'jobs.json');
  // A pool name with characters a file name must not carry as they are.
  writeJobs(jobs, [gearmand.label], { 'Orders/EU ü': { uri: endpoint.url, count: 1, jobs: ['Order'] } });
  const deadLetterDir = path.join(dir, 'state', 'dead-letters');
  const daemon = await startServing(t, ['--jobsconfig', jobs, '--dead_letter_dir', deadLetterDir, '--loop_timeout', '1']);
  const created = daemon.logs.find((r) => r.event === 'dead-letter-dir-created');
  assert.equal(created?.dir, deadLetterDir);
  assert.equal(statSync(deadLetterDir).mode & 0o777, 0o700);

  const workload = Buffer.from([0x00, 0xff, 0x41]);
  await submitBackground(t, gearmand, 'Order', 'order-1', workload);
  const file = path.join(deadLetterDir, 'Orders%2FEU%20%C3%BC.jsonl');
  const [letter] = await waitFor(() => (letters(file).length === 1 ? letters(file) : undefined), { timeoutMs: 15_000, message: 'the failed job in the default dead-letter file' });
  assert.equal(letter?.pool, 'Orders/EU ü');
  assert.equal(letter?.function, 'Order');
  assert.equal(letter?.unique, 'order-1');
  assert.equal(letter?.workload, workload.toString('base64'));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(endpoint.requests.length, 1, 'a permanent failure is posted once');
  // gearmand has let go of it: the letter is the only copy, as it should be.
  await waitFor(async () => ((await gearmand.status()).every((row) => row.total === 0) ? true : undefined), { timeoutMs: 10_000, message: 'gearmand to drop the failed job' });
});

test('"dead_letter_file": false and "fail_fast" should keep no letters; a reload adding a pool should create the folder', async (t) => {
  const { gearmand, endpoint, dir } = await failingWorld(t);
  const jobs = path.join(dir, 'jobs.json');
  writeJobs(jobs, [gearmand.label], {
    Off: { uri: endpoint.url, count: 1, jobs: ['Off'], extra: { delivery: { dead_letter_file: false } } },
    Fast: { uri: endpoint.url, count: 1, jobs: ['Fast'], extra: { delivery: { mode: 'fail_fast' } } },
  });
  const deadLetterDir = path.join(dir, 'dead-letters');
  const daemon = await startServing(t, ['--jobsconfig', jobs, '--dead_letter_dir', deadLetterDir, '--loop_timeout', '1']);
  assert.equal(existsSync(deadLetterDir), false, 'no pool writes there: nothing created');
  await submitBackground(t, gearmand, 'Off', 'off-1', Buffer.from('x'));
  await submitBackground(t, gearmand, 'Fast', 'fast-1', Buffer.from('y'));
  await waitFor(() => (endpoint.requests.length === 2 ? true : undefined), { timeoutMs: 15_000, message: 'both jobs posted' });
  await waitFor(async () => ((await gearmand.status()).every((row) => row.total === 0) ? true : undefined), { timeoutMs: 10_000, message: 'both jobs failed' });
  assert.equal(existsSync(deadLetterDir), false);

  writeJobs(jobs, [gearmand.label], {
    Off: { uri: endpoint.url, count: 1, jobs: ['Off'], extra: { delivery: { dead_letter_file: false } } },
    Fast: { uri: endpoint.url, count: 1, jobs: ['Fast'], extra: { delivery: { mode: 'fail_fast' } } },
    Added: { uri: endpoint.url, count: 1, jobs: ['Added'] },
  });
  daemon.proc.kill('SIGHUP');
  await daemon.waitForLog((r) => r.event === 'reloaded', 'the reload');
  assert.equal(statSync(deadLetterDir).mode & 0o777, 0o700);
  await submitBackground(t, gearmand, 'Added', 'added-1', Buffer.from('z'));
  const file = path.join(deadLetterDir, 'Added.jsonl');
  await waitFor(() => (letters(file).length === 1 ? true : undefined), { timeoutMs: 15_000, message: 'the added pool to dead-letter its job' });
});

test('a --dead_letter_dir that cannot be created should be one error line naming the folder and the option, and the daemon should run', async (t) => {
  const { gearmand, endpoint, dir } = await failingWorld(t);
  const jobs = path.join(dir, 'jobs.json');
  writeJobs(jobs, [gearmand.label], { Regular: { uri: endpoint.url, count: 1, jobs: ['Sum'] } });
  const blocker = path.join(dir, 'a-file');
  writeFileSync(blocker, '');
  const deadLetterDir = path.join(blocker, 'dead-letters');
  const daemon = await startServing(t, ['--jobsconfig', jobs, '--dead_letter_dir', deadLetterDir, '--loop_timeout', '1']);
  const failures = daemon.logs.filter((r) => r.event === 'dead-letter-dir-failed');
  assert.equal(failures.length, 1);
  assert.ok((failures[0]?.level ?? 0) >= 50, 'an error');
  assert.equal(
    failures[0]?.msg,
    `--dead_letter_dir ${deadLetterDir}: cannot create the folder: a parent of it is not a directory; pools "Regular" keep no dead letters until it can be written (a job they would dead-letter is handed back to gearmand instead): create it or set --dead_letter_dir`,
  );
  await waitFor(async () => ((await gearmand.workers()).some((w) => w.functions.includes('Sum')) ? true : undefined), { timeoutMs: 10_000, message: 'the pool to serve Sum' });
});
