/**
 * Workers for the gearmand ceiling: what gearmand can drain on this machine when the worker costs
 * nothing. Two kinds, both measured when available:
 * - `node`: echo-worker.ts, the codec-based raw-socket worker in one separate Node process;
 * - `libgearman`: `gearman -w -f FN` processes from the gearman CLI (no command: libgearman answers
 *   with the workload itself), the kind of worker the original's 40,000 jobs/s figure came from.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stopChild } from './proc-stats.js';

export interface EchoDone {
  jobs: number;
  firstMs: number;
  lastMs: number;
}

export interface EchoWorkers {
  readonly pid: number;
  /** Resolves when every connection is registered and asleep. */
  readonly ready: Promise<void>;
  /** Starts a new count of `jobs`; resolves once the workers acknowledged it. */
  arm(jobs: number): Promise<void>;
  /** Resolves when the last job of the armed count is answered. */
  done(): Promise<EchoDone>;
  stop(): Promise<void>;
}

const STOP_TIMEOUT_MS = 3_000;

function stopProcess(child: ChildProcess): Promise<void> {
  return stopChild(child, 'SIGTERM', STOP_TIMEOUT_MS);
}

/** Which floor echo-worker.ts is with an `httpUrl`: raw sockets (Node), the daemon's undici adapter, or that plus the contract's request. */
export type FloorKind = 'node' | 'undici' | 'contract';

/** `httpUrl`: a floor (each job POSTed to the endpoint first, the `floor` way), see echo-worker.ts. */
export function startEchoWorkers(port: number, functionNames: readonly string[], connections: number, httpUrl?: string, floor: FloorKind = 'node'): EchoWorkers {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'echo-worker.js');
  const child = spawn(
    process.execPath,
    [script, '--port', String(port), '--functions', functionNames.join(','), '--connections', String(connections), ...(httpUrl === undefined ? [] : ['--http', httpUrl]), ...(floor === 'node' ? [] : [`--${floor}`])],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-2000);
  });
  let onDone: ((done: EchoDone) => void) | undefined;
  let onArmed: (() => void) | undefined;
  let onExit: ((error: Error) => void) | undefined;
  let donePromise: Promise<EchoDone> = Promise.reject(new Error('echo workers: done() before arm()'));
  donePromise.catch(() => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: { event?: string } & Partial<EchoDone>;
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        return;
      }
      if (event.event === 'ready') resolve();
      if (event.event === 'expecting') onArmed?.();
      if (event.event === 'done') onDone?.({ jobs: event.jobs ?? 0, firstMs: event.firstMs ?? 0, lastMs: event.lastMs ?? 0 });
    });
    child.once('exit', (code, signal) => {
      const error = new Error(`echo workers exited (${signal ?? code}): ${stderr.trim() || '<no output>'}`);
      reject(error);
      onExit?.(error);
    });
  });
  return {
    pid: child.pid ?? 0,
    ready,
    arm(jobs) {
      donePromise = new Promise<EchoDone>((resolve, reject) => {
        onDone = resolve;
        onExit = reject;
      });
      donePromise.catch(() => undefined); // observed later through done()
      return new Promise<void>((resolve) => {
        onArmed = resolve;
        child.stdin!.write(`expect ${jobs}\n`);
      });
    },
    done: () => donePromise,
    stop: () => stopProcess(child),
  };
}

export function gearmanCliBinary(): string | undefined {
  const fromEnv = process.env['GEARMAN_BIN'];
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  for (const candidate of ['/usr/bin/gearman', '/usr/local/bin/gearman']) if (existsSync(candidate)) return candidate;
  return undefined;
}

export interface LibgearmanWorkers {
  readonly pids: number[];
  stop(): Promise<void>;
}

export function startLibgearmanWorkers(binary: string, port: number, functionName: string, count: number): LibgearmanWorkers {
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    children.push(
      spawn(binary, ['-w', '-h', '127.0.0.1', '-p', String(port), '-f', functionName], { stdio: ['ignore', 'ignore', 'ignore'] }),
    );
  }
  return {
    pids: children.map((child) => child.pid ?? 0).filter((pid) => pid > 0),
    stop: async () => {
      await Promise.all(children.map(stopProcess));
    },
  };
}
