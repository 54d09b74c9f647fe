/** What one liveness run of bench:chaos is given (its own module: every fault module and the runner import it). */
import type { PoisonKind } from '../faults/endpoint-control.js';

export interface LivenessOptions {
  slots: number;
  rate: number;
  leadSeconds: number;
  afterSeconds: number;
  loopTimeoutS: number;
  hungSeconds: number;
  hungG2Rate: number;
  poisonKinds: PoisonKind[];
  poisonSeconds: number;
  poisonTrafficSeconds: number;
  poisonMaxRunningTime: number;
  functionOutageSeconds: number;
  /** The pool's "delivery" keys from --fail-fast and --delivery ({} = the daemon's default policy). */
  delivery: Record<string, unknown>;
  logLevel: 'info' | 'warn';
  drainTimeoutS: number;
}

/** One liveness run: the options, the build under test and where its files go. */
export interface LivenessRun {
  options: LivenessOptions;
  binary: string;
  bin: string;
  dir: string;
  progress: (text: string) => void;
  /** The pool's extra jobs-config keys: `extra`, and its `delivery` with the options' keys (--delivery) over it. */
  poolExtra: (extra: Record<string, unknown> & { delivery?: Record<string, unknown> }) => Record<string, unknown>;
}
