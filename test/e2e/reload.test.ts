import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import type { Gearmand, GearmandWorker } from '../helpers/gearmand.js';
import { startEndpoint, type Endpoint } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';
import { nameValues, startServing, statusExchange } from './daemon.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';
import type { Daemon } from './daemon.js';
import type { PoolSpec } from '../helpers/jobs-file.js';

/** A real gearmand and endpoint for one test, and the path of its (not yet written) jobs config. */
async function peers(t: TestContext): Promise<{ gearmand: Gearmand; endpoint: Endpoint; file: string; servers: string[] }> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  return { gearmand, endpoint, file: path.join(tempDir(t), 'jobs.json'), servers: [gearmand.label] };
}

function byFunction(workers: GearmandWorker[], fn: string): GearmandWorker[] {
  return workers.filter((w) => w.functions.includes(fn));
}

async function workerCount(gearmand: Gearmand, fn: string): Promise<number> {
  return byFunction(await gearmand.workers(), fn).length;
}

async function waitWorkers(gearmand: Gearmand, fn: string, n: number): Promise<void> {
  await waitFor(async () => (await workerCount(gearmand, fn)) === n, { timeoutMs: 10_000, message: `${n} workers for ${fn}` });
}

function reloads(daemon: Daemon): number {
  return daemon.count((r) => r.event === 'reloaded');
}

async function nextReload(daemon: Daemon, before: number) {
  return daemon.waitForLog((r) => r.event === 'reloaded' && daemon.logs.filter((x) => x.event === 'reloaded').indexOf(r) === before, `reload #${before + 1}`);
}

test('driveshaft should apply jobs-config edits: resize, add, remove, change URI; unchanged pools keep their connections', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const first = await startEndpoint(() => ({ body: { gearman_ret: 0, response_string: 'first' } }));
  t.after(() => first.close());
  const second = await startEndpoint(() => ({ body: { gearman_ret: 0, response_string: 'second' } }));
  t.after(() => second.close());
  const file = path.join(tempDir(t), 'jobs.json');
  const pools: Record<string, PoolSpec> = {
    Steady: { uri: first.url, count: 1, jobs: ['Steady'] },
    Grow: { uri: first.url, count: 1, jobs: ['Grow'] },
  };
  const servers = [gearmand.label];
  writeJobs(file, servers, pools);
  const statusPort = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--loop_timeout', '0.5']);
  await waitWorkers(gearmand, 'Steady', 1);
  await waitWorkers(gearmand, 'Grow', 1);
  const steady = byFunction(await gearmand.workers(), 'Steady').map((w) => `${w.fd}/${w.clientId}`);

  // worker_count raised.
  pools.Grow = { uri: first.url, count: 3, jobs: ['Grow'] };
  writeJobs(file, servers, pools);
  const raised = await nextReload(daemon, 0);
  assert.deepEqual(raised.resized, [{ pool: 'Grow', from: 1, to: 3 }]);
  assert.equal(raised.trigger, 'file');
  await waitWorkers(gearmand, 'Grow', 3);

  // worker_count lowered.
  pools.Grow = { uri: first.url, count: 2, jobs: ['Grow'] };
  writeJobs(file, servers, pools);
  await nextReload(daemon, 1);
  await waitWorkers(gearmand, 'Grow', 2);

  // A pool added, then removed.
  pools.Extra = { uri: first.url, count: 2, jobs: ['Extra'] };
  writeJobs(file, servers, pools);
  assert.deepEqual((await nextReload(daemon, 2)).added, ['Extra']);
  await waitWorkers(gearmand, 'Extra', 2);
  delete pools.Extra;
  writeJobs(file, servers, pools);
  assert.deepEqual((await nextReload(daemon, 3)).removed, ['Extra']);
  await waitWorkers(gearmand, 'Extra', 0);

  // URI changed: slots replaced, the pool never drops to zero workers meanwhile.
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  assert.equal((await client.submit('Grow', 'x')).result?.toString(), 'first');
  let minimum = Infinity;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      minimum = Math.min(minimum, await workerCount(gearmand, 'Grow'));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  pools.Grow = { uri: second.url, count: 2, jobs: ['Grow'] };
  writeJobs(file, servers, pools);
  assert.deepEqual((await nextReload(daemon, 4)).replaced, ['Grow']);
  await waitFor(async () => (await client.submit('Grow', 'y')).result?.toString() === 'second', { timeoutMs: 10_000, message: 'jobs to reach the new URI' });
  await waitWorkers(gearmand, 'Grow', 2);
  watching = false;
  await watcher;
  assert.ok(minimum >= 1, `Grow dropped to ${minimum} workers during the URI change`);

  // Through all of it, Steady was not touched.
  assert.deepEqual(byFunction(await gearmand.workers(), 'Steady').map((w) => `${w.fd}/${w.clientId}`), steady);
  assert.equal(nameValues(await statusExchange(statusPort, 'counters\n')).get('reloads'), 5);
  assert.equal(reloads(daemon), 5);
});

test('driveshaft should reload on SIGHUP, turn a pool off and on with worker_count 0, and keep serving through an invalid edit', async (t) => {
  const { gearmand, endpoint, file, servers } = await peers(t);
  const pools: Record<string, PoolSpec> = { Main: { uri: endpoint.url, count: 2, jobs: ['Main'] }, Switch: { uri: endpoint.url, count: 1, jobs: ['Switch'] } };
  writeJobs(file, servers, pools);
  // A long loop_timeout: the file poll (every 10 s) cannot be what reloads here, only SIGHUP.
  const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '20']);
  await waitWorkers(gearmand, 'Switch', 1);

  pools.Switch = { uri: endpoint.url, count: 0, jobs: ['Switch'] };
  writeJobs(file, servers, pools);
  process.kill(daemon.pid, 'SIGHUP');
  const off = await nextReload(daemon, 0);
  assert.equal(off.trigger, 'signal');
  await waitWorkers(gearmand, 'Switch', 0);

  pools.Switch = { uri: endpoint.url, count: 1, jobs: ['Switch'] };
  writeJobs(file, servers, pools);
  process.kill(daemon.pid, 'SIGHUP');
  await nextReload(daemon, 1);
  await waitWorkers(gearmand, 'Switch', 1);

  const mainWorkers = byFunction(await gearmand.workers(), 'Main').map((w) => w.fd).sort();
  writeFileSync(file, '{"gearman_servers_list": ["127.0.0.1:1"], "pools_list": {"Main": {"job_processing_uri": "ftp://x", "worker_count": -1, "jobs_list": ["Main"]}}}');
  process.kill(daemon.pid, 'SIGHUP');
  const failed = await daemon.waitForLog((r) => r.event === 'reload-failed', 'the invalid edit to be refused');
  assert.ok(failed.level >= 50);
  assert.ok(String(failed.msg).includes(file), failed.msg);
  assert.ok((failed.problems as string[]).length >= 1);
  assert.ok((failed.problems as string[]).every((p) => p.startsWith(file)), JSON.stringify(failed.problems));
  // Old config still serving, untouched.
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  assert.equal((await client.submit('Main', 'still here')).outcome, 'complete');
  assert.deepEqual(byFunction(await gearmand.workers(), 'Main').map((w) => w.fd).sort(), mainWorkers);
  assert.equal(reloads(daemon), 2);

  // The fix reloads normally.
  writeJobs(file, servers, pools);
  process.kill(daemon.pid, 'SIGHUP');
  await nextReload(daemon, 2);
});

// Regression: with every pool at worker_count 0 and no status port, nothing kept the event loop alive
// and the daemon exited (code 13) right after "started" — the seed's own example config did that.
test('driveshaft should stay up with every pool at worker_count 0 and start a pool when an edit turns it on', async (t) => {
  const { gearmand, endpoint, file, servers } = await peers(t);
  writeJobs(file, servers, { Dormant: { uri: endpoint.url, count: 0, jobs: ['Dormant'] } });
  const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '0.5']);
  writeJobs(file, servers, { Dormant: { uri: endpoint.url, count: 1, jobs: ['Dormant'] } });
  // Only a daemon that stayed alive and kept watching its config can register this worker.
  await waitWorkers(gearmand, 'Dormant', 1);
  assert.equal(daemon.exitInfo(), null);
});
