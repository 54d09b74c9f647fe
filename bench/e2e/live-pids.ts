/**
 * The process trees a benchmark harness started and has not stopped yet, so that its exit, Ctrl-C
 * or watchdog can kill whatever is left: a run must never leave a gearmand, a daemon or an endpoint
 * behind on a shared machine. One set per harness process, shared by the e2e and fault benchmarks.
 */
import { processTree } from './proc-stats.js';

/** Roots of every process tree the harness started and has not stopped yet. */
export const livePids = new Set<number>();

export function killEverything(): void {
  for (const pid of livePids) {
    for (const p of processTree(pid).reverse()) {
      try {
        process.kill(p, 'SIGCONT');
        process.kill(p, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  livePids.clear();
}
