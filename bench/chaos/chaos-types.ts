/** The process faults of bench:chaos and the shapes of its options and results (run.ts runs them, report.ts prints them). */
import type { CommonOptions } from '../faults/bench-cli.js';
import type { Counters, ProcessFigures, RunTally } from '../faults/common.js';
import type { LivenessFault } from './liveness-figures.js';
import type { LivenessOptions } from './liveness-run.js';

export const FAULTS = ['gearmand', 'child', 'master', 'sigstop', 'hup', 'endpoint'] as const;
export type FaultName = (typeof FAULTS)[number];

export const HUP_CHANGES = ['mixed', 'none', 'header', 'workers'] as const;
export type HupChange = (typeof HUP_CHANGES)[number];

export interface Options extends CommonOptions {
  faults: FaultName[];
  liveness: LivenessFault[];
  livenessOptions: LivenessOptions;
  compareBin: string | undefined;
  leadSeconds: number;
  pauseSeconds: number;
  recoveryTimeoutS: number;
  gearmandDownSeconds: number;
  sigstopSeconds: number;
  hupSeconds: number;
  hupChange: HupChange;
  queueDir: string | undefined;
}

export interface FaultResult {
  name: FaultName;
  title: string;
  startAtMs: number;
  /** When the injection was over (the kill itself for kills: a restart is part of the recovery). */
  endAtMs: number;
  /** Up to the next fault's start (or the end of the run): what happened in it is this fault's. */
  windowEndMs: number;
  notes: string[];
  /** gearmand's queue at the start and its peak in the window. */
  backlogAtStart: number | null;
  peakBacklog: number | undefined;
  rateBefore: number;
  rateBackMs: number | undefined;
  backlogDrainedMs: number | undefined;
  /** Lost ids whose last WORK_FAIL was logged in this window. */
  lost: number;
  lostSample: string[];
  /** Ids answered 200 for the second time in this window. */
  duplicates: number;
  duplicateSample: Array<{ id: string; atMs: number[] }>;
  counters: Counters;
  logLines: number;
  /** Daemon processes after the fault's recovery and the pause, right before the next fault. */
  processesAfter: ProcessFigures[];
  /** false when the feed had ended and the queue was empty: nothing to disturb. */
  hadTraffic: boolean;
}

export interface RunResult extends RunTally {
  binary: string;
  bin: string;
  prefix: string;
  delivery: Record<string, unknown> | null;
  queueDb: string;
  lostUnattributed: number;
  duplicatesBeforeFaults: number;
  feederInDoubt: number;
  faults: FaultResult[];
}
