/**
 * The child entry's IPC protocol (src/ipc/messages.ts), on a real forked process: init → ready,
 * status-reply, reconfigure, shutdown → stopped + exit 0, init-failed, and exit on disconnect.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { zeroCounters } from '../../src/ipc/counters.js';
import type { ChildToMaster, MasterToChild } from '../../src/ipc/messages.js';
import type { ChildSettings } from '../../src/ipc/settings.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startEndpoint, type EndpointHandler } from '../helpers/http-endpoint.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { waitFor } from '../helpers/wait-for.js';
import { makeSettings, serverOf, waitForWorkers } from './fixtures.js';

/** MasterToChild without its seq, distributed over the union so each variant keeps its fields. */
type Request = MasterToChild extends infer M ? (M extends MasterToChild ? Omit<M, 'seq'> : never) : never;

const CHILD_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/child/main.js');

class ForkedChild {
  readonly process: ChildProcess;
  readonly messages: ChildToMaster[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #seq = 0;

  constructor() {
    this.process = fork(CHILD_MAIN, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.process.on('message', (message) => this.messages.push(message as ChildToMaster));
    this.exited = new Promise((resolve) => this.process.once('exit', (code, signal) => resolve({ code, signal })));
  }

  send(message: Request): number {
    const seq = ++this.#seq;
    this.process.send({ ...message, seq });
    return seq;
  }

  reply<T extends ChildToMaster['type']>(type: T, ack: number, timeoutMs = 10_000): Promise<Extract<ChildToMaster, { type: T }>> {
    return waitFor(
      () => this.messages.find((m): m is Extract<ChildToMaster, { type: T }> => m.type === type && 'ack' in m && m.ack === ack),
      { timeoutMs, intervalMs: 5, message: `a ${type} reply to seq ${ack}` },
    );
  }

  logs(): Array<Record<string, unknown>> {
    return this.messages.filter((m): m is Extract<ChildToMaster, { type: 'log' }> => m.type === 'log').map((m) => m.record);
  }
}

function forkChild(t: TestContext): ForkedChild {
  const child = new ForkedChild();
  t.after(() => {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
  });
  return child;
}

async function setup(t: TestContext, handler?: EndpointHandler, pool: Partial<ChildSettings['pool']> = {}): Promise<{ gearmand: Gearmand; settings: ChildSettings; client: GearmanClient }> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint(handler);
  t.after(() => endpoint.close());
  const settings = makeSettings([serverOf(gearmand)], endpoint.url, { workerCount: 2, ...pool }, { logLevel: 'info' });
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  return { gearmand, settings, client };
}

/** A one-slot child that is running one job (its endpoint answers after `delayMs`), and its status then. */
async function childRunningOneJob(t: TestContext, delayMs: number) {
  const { gearmand, settings, client } = await setup(t, () => ({ delayMs, body: { gearman_ret: 0, response_string: 'done' } }), { workerCount: 1 });
  const child = forkChild(t);
  await child.reply('ready', child.send({ type: 'init', settings }));
  const fn = settings.pool.jobsList[0] as string;
  await waitForWorkers(gearmand, fn, 1);
  const job = client.submit(fn, 'x');
  const { status } = await waitFor(
    async () => {
      const reply = await child.reply('status-reply', child.send({ type: 'status' }));
      return reply.status.slots[0]?.job ? reply : undefined;
    },
    { timeoutMs: 5000, message: 'the job to show in the status' },
  );
  return { child, job, status, fn };
}

test('child main should answer init with ready, serve jobs, report status and forward logs', async (t) => {
  const { gearmand, settings, client } = await setup(t);
  const child = forkChild(t);
  const seq = child.send({ type: 'init', settings });
  await child.reply('ready', seq);
  const fn = settings.pool.jobsList[0] as string;
  await waitForWorkers(gearmand, fn, 2);
  assert.equal((await client.submit(fn, 'x')).outcome, 'complete');

  const statusSeq = child.send({ type: 'status' });
  const { status } = await child.reply('status-reply', statusSeq);
  assert.equal(status.pool, settings.pool.name);
  assert.equal(status.pid, child.process.pid);
  assert.deepEqual(status.slots.map((s) => s.id), [`${child.process.pid}-1`, `${child.process.pid}-2`]);
  assert.ok(status.slots.every((s) => s.stopping === false && s.job === null && s.connectedServers === 1));
  assert.deepEqual(status.counters, { ...zeroCounters(), jobs_completed: 1 });
  const workers = (await gearmand.workers()).filter((w) => w.functions.includes(fn));
  assert.deepEqual(workers.map((w) => w.clientId).sort(), status.slots.map((s) => s.id).sort());

  const started = child.logs().find((record) => record.msg === 'pool started');
  assert.ok(started !== undefined, 'log records are forwarded over IPC');
  assert.equal(started.pool, settings.pool.name);

  const reSeq = child.send({ type: 'reconfigure', settings: { ...settings, pool: { ...settings.pool, workerCount: 3 } } });
  await child.reply('reconfigured', reSeq);
  await waitForWorkers(gearmand, fn, 3);
  const badSeq = child.send({ type: 'reconfigure', settings: { ...settings, pool: { ...settings.pool, workerCount: 'many' as unknown as number } } });
  const failed = await child.reply('reconfigure-failed', badSeq);
  assert.equal(failed.error.code, 'DS_CONFIG');
  assert.match(failed.error.message, /workerCount/);

  const downSeq = child.send({ type: 'shutdown', mode: 'graceful', deadlineMs: 1000 });
  await child.reply('stopped', downSeq);
  assert.deepEqual(await child.exited, { code: 0, signal: null });
  await waitForWorkers(gearmand, fn, 0);
});

test('child main should be ready while gearmand is down', async (t) => {
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const settings = makeSettings([{ host: '127.0.0.1', port: 1, label: '127.0.0.1:1' }], endpoint.url);
  const child = forkChild(t);
  const start = Date.now();
  await child.reply('ready', child.send({ type: 'init', settings }));
  assert.ok(Date.now() - start < 3000);
  const { status } = await child.reply('status-reply', child.send({ type: 'status' }));
  assert.equal(status.slots[0]?.connectedServers, 0);
  await child.reply('stopped', child.send({ type: 'shutdown', mode: 'hard', deadlineMs: 0 }));
  assert.equal((await child.exited).code, 0);
});

test('child main should answer invalid settings with init-failed and exit 2', async (t) => {
  const child = forkChild(t);
  const seq = child.send({ type: 'init', settings: { pool: { name: 'X' } } as unknown as ChildSettings });
  const failed = await child.reply('init-failed', seq);
  assert.equal(failed.error.code, 'DS_CONFIG');
  assert.match(failed.error.message, /jobProcessingUri/);
  assert.equal((await child.exited).code, 2);
});

test('child main should let a running job finish on graceful shutdown', async (t) => {
  const { child, job, status, fn } = await childRunningOneJob(t, 300);
  assert.equal(status.slots[0]?.job?.functionName, fn);
  const seq = child.send({ type: 'shutdown', mode: 'graceful', deadlineMs: 5000 });
  assert.equal((await job).outcome, 'complete');
  await child.reply('stopped', seq);
  assert.equal((await child.exited).code, 0);
});

test('child main should WORK_FAIL a running job on hard shutdown', async (t) => {
  const { child, job } = await childRunningOneJob(t, 5000);
  const start = Date.now();
  const seq = child.send({ type: 'shutdown', mode: 'hard', deadlineMs: 0 });
  assert.equal((await job).outcome, 'fail');
  await child.reply('stopped', seq);
  assert.equal((await child.exited).code, 0);
  assert.ok(Date.now() - start < 2000);
});

test('child main should drain and exit when the master disconnects', async (t) => {
  const { gearmand, settings } = await setup(t);
  const child = forkChild(t);
  await child.reply('ready', child.send({ type: 'init', settings }));
  const fn = settings.pool.jobsList[0] as string;
  await waitForWorkers(gearmand, fn, 2);
  child.process.disconnect();
  const exit = await Promise.race([child.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 8000))]);
  assert.deepEqual(exit, { code: 0, signal: null });
  await waitForWorkers(gearmand, fn, 0);
});

test('child main should ignore SIGINT, drain on SIGTERM, and stop hard on a SIGTERM while draining', async (t) => {
  const { child, job } = await childRunningOneJob(t, 5000);
  child.process.kill('SIGINT');
  const { status } = await child.reply('status-reply', child.send({ type: 'status' }));
  assert.equal(status.slots[0]?.stopping, false, 'SIGINT is for the master');
  child.process.kill('SIGTERM');
  await waitFor(async () => (await child.reply('status-reply', child.send({ type: 'status' }))).status.slots[0]?.stopping || undefined, { timeoutMs: 5000, message: 'the slot to be stopping' });
  const start = Date.now();
  child.process.kill('SIGTERM');
  assert.equal((await job).outcome, 'fail');
  assert.equal((await child.exited).code, 0);
  assert.ok(Date.now() - start < 2000);
});
