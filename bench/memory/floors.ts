/**
 * The floors of the many-pools benchmark, measured in the same run: what one Node process costs
 * (`bare`), and one that loaded and built the child's HTTP adapter (a pool of undici Clients) as a pool child does, idle, after the same
 * few POSTs a pool runs, after the quiet period, and after one full GC (floor-process.ts). A daemon of
 * P pools cannot hold less than P of the pool floor (plus a master): the target is read against it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { childEnv, poolNodeFlags } from '../../src/master/child-process.js';
import { startEndpoint } from '../e2e/endpoint.js';
import { livePids } from '../e2e/live-pids.js';
import { delay } from '../e2e/measure.js';
import { processMemory, type Memory } from './smaps.js';

const SCRIPT = fileURLToPath(new URL('./floor-process.js', import.meta.url));
const MESSAGE_TIMEOUT_MS = 30_000;

export interface Floors {
  /** The Node flags and environment the floor processes ran with (those of a small pool's child). */
  execArgv: string[];
  env: Record<string, string>;
  bare: Memory;
  poolIdle: Memory;
  poolAfterWork: Memory;
  poolAfterQuiet: Memory;
  /** Another process that did the same work, then one full GC (--expose-gc). */
  poolAfterGc: Memory;
}

function waitFor(child: ChildProcess, type: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`floor process ${child.pid ?? '?'}: no '${type}' within ${MESSAGE_TIMEOUT_MS} ms`)), MESSAGE_TIMEOUT_MS);
    const onMessage = (message: { type?: string; error?: string }): void => {
      if (message.type === 'failed') {
        clearTimeout(timer);
        reject(new Error(`floor process: ${message.error ?? 'failed'}`));
      } else if (message.type === type) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve();
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`floor process exited (${String(code)}) before '${type}'`)));
  });
}

function memoryOf(child: ChildProcess): Memory {
  const memory = processMemory(child.pid ?? -1);
  if (memory === undefined) throw new Error(`floor process ${child.pid ?? '?'} is gone`);
  return { ussKiB: memory.ussKiB, pssKiB: memory.pssKiB, rssKiB: memory.rssKiB };
}

export async function measureFloors(options: { dir: string; slots: number; jobs: number; idleS: number; quietS: number }): Promise<Floors> {
  const endpoint = await startEndpoint({ dir: options.dir });
  livePids.add(endpoint.pid);
  const execArgv = [...poolNodeFlags(options.slots)];
  // A pool child's malloc tuning, as the master gives it (without the pool's name).
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(childEnv('floor', {}))) if (name !== 'DRIVESHAFT_POOL' && value !== undefined) env[name] = value;
  const children: ChildProcess[] = [];
  const spawnFloor = (mode: 'bare' | 'pool', extraArgv: string[] = []): ChildProcess => {
    const child = fork(SCRIPT, [mode, endpoint.url, String(options.slots)], {
      execArgv: [...execArgv, ...extraArgv],
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    children.push(child);
    if (child.pid !== undefined) livePids.add(child.pid);
    return child;
  };
  try {
    const bare = spawnFloor('bare');
    const pool = spawnFloor('pool');
    const collected = spawnFloor('pool', ['--expose-gc']);
    await Promise.all([bare, pool, collected].map((child) => waitFor(child, 'ready')));
    await delay(options.idleS * 1000);
    const idle = { bare: memoryOf(bare), pool: memoryOf(pool) };
    for (const child of [pool, collected]) child.send({ type: 'work', jobs: options.jobs });
    await Promise.all([waitFor(pool, 'worked'), waitFor(collected, 'worked')]);
    const poolAfterWork = memoryOf(pool);
    collected.send({ type: 'gc' });
    await waitFor(collected, 'collected');
    const poolAfterGc = memoryOf(collected);
    await delay(options.quietS * 1000);
    return { execArgv, env, bare: idle.bare, poolIdle: idle.pool, poolAfterWork, poolAfterQuiet: memoryOf(pool), poolAfterGc };
  } finally {
    for (const child of children) {
      child.kill('SIGKILL');
      if (child.pid !== undefined) livePids.delete(child.pid);
    }
    await endpoint.stop();
    livePids.delete(endpoint.pid);
  }
}
