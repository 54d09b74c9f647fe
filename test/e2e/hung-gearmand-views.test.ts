/**
 * A hung gearmand as an operator sees it (docs/reliability.md, A hung gearmand): the real daemon with two
 * real gearmands, one SIGSTOPped. Once a GRAB to it goes unanswered, /status, /metrics and `gauges` name
 * it as skipped by the pool, the other server is not, and all of it clears when the server runs again.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import { parseJsonJob, startEndpoint } from '../helpers/http-endpoint.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { startServing, statusExchange } from './daemon.js';

type Servers = Array<{ server: string; suspectSince: string | null; states: Record<string, number> }>;

test('a SIGSTOPped gearmand should show as suspect in /status, /metrics and gauges, and clear when it runs again', async (t) => {
  const [g1, g2] = await Promise.all([startGearmand(), startGearmand()]);
  // stop() sends SIGCONT after SIGTERM, so a failed test still ends a stopped server.
  t.after(() => g1.stop());
  t.after(() => g2.stop());
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const endpoint = await startEndpoint(async (req) => {
    const job = parseJsonJob(req.body);
    if (job.workload === 'hold') await held;
    return { body: { gearman_ret: 0, response_string: job.workload } };
  });
  t.after(() => {
    release();
    return endpoint.close();
  });
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [g1.label, g2.label], { Mixed: { uri: endpoint.url, count: 1, jobs: ['Sum'] } });
  const [exporterPort, statusPort] = [await freePort(), await freePort()];
  // loop_timeout 2: a GRAB is given up after min(loop_timeout, 2 s), the probes would take 4 s.
  await startServing(t, ['--jobsconfig', file, '--status_port', String(statusPort), '--exporter_addr', String(exporterPort), '--loop_timeout', '2']);
  const base = `http://127.0.0.1:${exporterPort}`;
  const servers = async (): Promise<Servers> => {
    const doc = (await (await fetch(`${base}/status`)).json()) as { pools: Array<{ name: string; servers: Servers }> };
    return doc.pools.find((p) => p.name === 'Mixed')?.servers ?? [];
  };
  await waitFor(async () => (await servers()).length === 2 || undefined, { timeoutMs: 10_000, message: 'both servers in /status' });
  assert.deepEqual((await servers()).map((s) => s.suspectSince), [null, null]);

  // The slot is busy with a job from g1 while g2 gets one: g2 wakes the slot's connection to it.
  const [c1, c2] = await Promise.all([GearmanClient.connect(g1.port), GearmanClient.connect(g2.port)]);
  t.after(() => c1.close());
  t.after(() => c2.close());
  const first = c1.submit('Sum', 'hold');
  await waitFor(() => endpoint.requests.length === 1 || undefined, { timeoutMs: 10_000, message: 'the job from g1 to start' });
  await c2.submit('Sum', 'from-g2', { background: true });
  await waitFor(async () => (await servers()).find((s) => s.server === g2.label)?.states.ready === 1 || undefined, { timeoutMs: 10_000, message: "g2's connection woken (READY in /status)" });
  // g2 stops; once the slot is free its next GRAB goes to g2 (round-robin) and is not answered.
  await g2.kill('SIGSTOP');
  release();
  assert.equal((await first).outcome, 'complete');
  const stopped = await waitFor(
    async () => {
      const now = await servers();
      return now.find((s) => s.server === g2.label)?.suspectSince != null ? now : undefined;
    },
    { timeoutMs: 10_000, message: '/status naming g2 suspect' },
  );
  assert.equal(stopped.find((s) => s.server === g1.label)?.suspectSince, null, 'g1 answers');
  assert.ok(Date.now() - Date.parse(stopped.find((s) => s.server === g2.label)?.suspectSince ?? '') < 10_000);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, new RegExp(`^driveshaft_gearmand_suspect\\{pool="Mixed",server="${g2.label}"\\} 1$`, 'm'));
  assert.match(metrics, new RegExp(`^driveshaft_gearmand_suspect\\{pool="Mixed",server="${g1.label}"\\} 0$`, 'm'));
  assert.ok((await statusExchange(statusPort, 'gauges\n')).split('\r\n').includes('Mixed.suspect_servers: 1'));
  // Meanwhile g1 serves.
  assert.equal((await c1.submit('Sum', 'two')).outcome, 'complete');

  await g2.kill('SIGCONT');
  await waitFor(async () => (await servers()).every((s) => s.suspectSince === null) || undefined, { timeoutMs: 10_000, message: '/status clearing g2 once it answers' });
  // g2's job ran, once.
  await waitFor(() => endpoint.requests.some((req) => parseJsonJob(req.body).workload === 'from-g2') || undefined, { timeoutMs: 10_000, message: "g2's job" });
  assert.ok((await statusExchange(statusPort, 'gauges\n')).split('\r\n').includes('Mixed.suspect_servers: 0'));
});
