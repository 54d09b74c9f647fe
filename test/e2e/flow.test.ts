import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import { startEndpoint } from '../helpers/http-endpoint.js';
import { writeJobs } from '../helpers/jobs-file.js';
import type { PoolSpec } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { BIN, startServing, statusExchange } from './daemon.js';

/** `gauges` as name → text value (flow lines are words as well as numbers). */
async function gauges(port: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of (await statusExchange(port, 'gauges\n')).split('\r\n')) {
    const at = line.indexOf(': ');
    if (at > 0) out.set(line.slice(0, at), line.slice(at + 2));
  }
  return out;
}

test('a reload should change a pool\'s rate limit and concurrency mode in its running child', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const file = path.join(tempDir(t), 'jobs.json');
  const servers = [gearmand.label];
  const shaped = (extra: Record<string, unknown>): Record<string, PoolSpec> => ({ Shaped: { uri: endpoint.url, count: 4, jobs: ['Shaped'], extra } });
  writeJobs(file, servers, shaped({ rate_limit: { per_second: 200, burst: 5 } }));
  const statusPort = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--loop_timeout', '0.5']);
  const before = await waitFor(async () => {
    const g = await gauges(statusPort);
    // The slots' first grabs find no job and give their tokens back: the idle pool has its burst.
    return g.get('Shaped.rate_limit') === '200' && g.get('Shaped.rate_tokens') === '5' ? g : undefined;
  }, { timeoutMs: 10_000, message: 'the pool to report its rate limit and a full bucket' });
  assert.equal(before.get('Shaped.concurrency'), 'fixed');
  assert.equal(before.get('Shaped.concurrency_limit'), '4');

  writeJobs(file, servers, shaped({ rate_limit: { per_second: 4, burst: 2 }, concurrency: { mode: 'adaptive', min: 3 } }));
  const after = await waitFor(async () => {
    const g = await gauges(statusPort);
    return g.get('Shaped.rate_limit') === '4' ? g : undefined;
  }, { timeoutMs: 10_000, message: 'the reload to reach the child' });
  assert.equal(after.get('Shaped.child_pid'), before.get('Shaped.child_pid'), 'the same child process');
  assert.equal(after.get('Shaped.concurrency'), 'adaptive');
  assert.equal(after.get('Shaped.concurrency_limit'), '3', 'an adaptive pool starts at its floor');
  assert.ok(daemon.count((r) => r.event === 'reloaded') >= 1);

  // The new rate in the child: two tokens at once, then one every 250 ms.
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  await Promise.all(Array.from({ length: 30 }, (_, i) => client.submit('Shaped', `job-${i}`, { background: true })));
  const queuedAt = Date.now();
  await delay(2000);
  const early = endpoint.requests.filter((req) => req.receivedAt < queuedAt + 2000).length;
  assert.ok(early >= 7 && early <= 11, `${early} jobs in the first 2 s at 4/s with a burst of 2`);
});

test('a bad flow key should stop the daemon at startup with one line naming its JSON path', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeFileSync(file, JSON.stringify({ gearman_servers_list: ['127.0.0.1:1'], pools_list: { P: { job_processing_uri: 'http://127.0.0.1:1/', worker_count: 1, jobs_list: ['A'], rate_limit: { per_second: -1 } } } }));
  const result = await promisify(execFile)(process.execPath, [BIN, '--jobsconfig', file], { timeout: 60_000 }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code?: number; stderr?: string }) => ({ code: error.code ?? -1, stderr: error.stderr ?? '' }),
  );
  assert.equal(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0] ?? '', /pools_list\.P\.rate_limit\.per_second: expected a number of jobs per second > 0/);
});
