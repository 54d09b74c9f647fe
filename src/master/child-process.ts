/**
 * How the master starts a pool child: node:cluster, one process per pool. The pool's name is the only
 * thing passed in the environment (for `ps e` and crash reports); the config goes over IPC (STYLE "Not
 * to imitate": config as JSON in environment variables).
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { IpcEndpoint } from './ipc-channel.js';

/** One forked pool child as the supervisor sees it. */
export interface ForkedChild {
  /** -1 when the process could not be spawned (its exit is reported right after). */
  readonly pid: number;
  readonly endpoint: IpcEndpoint;
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
  onError(listener: (error: Error) => void): void;
  /** Sends a signal; a process that is already gone is not an error. */
  kill(signal: NodeJS.Signals): void;
}

export type ForkChild = (pool: string) => ForkedChild;

/** dist/src/master/child-process.js → dist/src/child/main.js */
export const DEFAULT_CHILD_EXEC = fileURLToPath(new URL('../child/main.js', import.meta.url));

export function clusterForker(exec: string = DEFAULT_CHILD_EXEC): ForkChild {
  return (pool) => {
    // setupPrimary only affects later forks; calling it each time keeps two masters' settings (tests
    // that run a fixture child beside the real one) from leaking into each other.
    cluster.setupPrimary({ exec, args: [], silent: false });
    const worker = cluster.fork({ DRIVESHAFT_POOL: pool });
    return {
      pid: worker.process.pid ?? -1,
      endpoint: worker,
      onExit(listener) {
        worker.on('exit', (code: number | null, signal: string | null) => listener(code, signal as NodeJS.Signals | null));
      },
      onError(listener) {
        worker.on('error', listener);
      },
      kill(signal) {
        try {
          worker.process.kill(signal);
        } catch {
          // ESRCH: it exited between our decision and the signal; its exit event does the rest.
        }
      },
    };
  };
}
