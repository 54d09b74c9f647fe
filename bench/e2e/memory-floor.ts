/**
 * The memory floor of the design, measured in the same run as the daemon: a node:cluster primary and
 * one child that loaded undici (memory-floor-process.ts), counted like the daemon (PSS alone: each
 * page of the two processes once). The daemon's idle figure minus this is what our own code costs;
 * the idle target is read against it.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { delay } from './measure.js';
import { sampleProcesses } from './proc-stats.js';
import type { MemoryFloor } from './results.js';

const SCRIPT = fileURLToPath(new URL('./memory-floor-process.js', import.meta.url));
const READY_TIMEOUT_MS = 10_000;

export async function measureMemoryFloor(settleMs: number): Promise<MemoryFloor> {
  const primary = fork(SCRIPT, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  try {
    const workerPid = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('memory floor: the worker did not start in time')), READY_TIMEOUT_MS);
      primary.on('message', (m: { worker?: number; message?: unknown }) => {
        if (m.message === 'ready' && typeof m.worker === 'number') {
          clearTimeout(timer);
          resolve(m.worker);
        }
      });
      primary.on('exit', (code) => reject(new Error(`memory floor: the primary exited (${String(code)})`)));
    });
    // The same wait the daemon gets between registering and its idle sample.
    await delay(settleMs);
    const sample = sampleProcesses([primary.pid ?? -1, workerPid], { pss: true });
    return { aloneKiB: sample.uniqueKiB, pssKiB: sample.pssKiB, rssKiB: sample.rssKiB };
  } finally {
    primary.kill('SIGKILL');
  }
}
