/**
 * The job vocabulary of a pool child: what gearmand assigned, and the outcomes an attempt and a job
 * can have. A leaf module: everything in src/child speaks these types, and this file imports nothing
 * but types, so no module has to import the HTTP side (or the slot) to name a job or an outcome.
 */
import type { JobTrace } from './trace-context.js';

/** A job as assigned by gearmand. Buffers are views into the parser's chunks (never rewritten). */
export interface Job {
  handle: Buffer;
  handleText: string;
  /** The function name as UTF-8 text, for logs and metrics: U+FFFD where the bytes are not UTF-8 (see functionBytes). */
  functionName: string;
  /** The function name's exact bytes, which is what the request carries. */
  functionBytes: Buffer;
  unique: Buffer;
  /** The unique as UTF-8 text, U+FFFD where the bytes are not UTF-8: the request carries `unique` itself. */
  uniqueText: string;
  workload: Buffer;
  /** Label of the gearmand the job came from. */
  server: string;
}

/** Why a job failed for good (what the log line and the metrics say). */
export const FailureCause = {
  /** The endpoint answered validly with a gearman_ret other than 0 and 14. */
  ENDPOINT: 'endpoint',
  /** Transport failure, non-200 status or an invalid response body. */
  HTTP: 'http',
  /** No answer within max_running_time of the assignment. */
  TIMEOUT: 'timeout',
  /** The slot was stopped or destroyed before the job finished. */
  SHUTDOWN: 'shutdown',
  /** gearman_ret 14 for the same handle more than the re-queue limit allows. */
  REQUEUE_LIMIT: 'requeue-limit',
  /** The workload was over the pool's max_workload_bytes: failed unread, no request made. */
  WORKLOAD_LIMIT: 'workload-limit',
} as const;
export type FailureCause = (typeof FailureCause)[keyof typeof FailureCause];

/** Why an attempt's outcome is worth another attempt. */
export const TransientCause = {
  /** Refused, reset, DNS, TLS handshake: no answer at all. */
  CONNECT: 'connect',
  /** No answer within max_running_time of the attempt's start. */
  TIMEOUT: 'timeout',
  /** A status of the pool's retry_on_status list (408, 429, 503…). */
  STATUS: 'status',
  /** The endpoint answered `{"gearman_ret": …, "retry_after": S}`: it asked for a later retry. */
  ENDPOINT: 'endpoint',
} as const;
export type TransientCause = (typeof TransientCause)[keyof typeof TransientCause];

export type JobOutcome =
  | { kind: 'complete'; result: Buffer }
  /** `exception`: the endpoint's `exception` member, sent to gearmand as WORK_EXCEPTION instead of WORK_FAIL. */
  | { kind: 'fail'; cause: FailureCause; reason: string; exception?: Buffer }
  | { kind: 'requeue' }
  /**
   * Worth another attempt; the delivery decides (retry after a backoff, hand back to gearmand, or fail
   * in fail_fast mode). `retryAfterMs` is what the endpoint asked for (Retry-After, retry_after), else
   * null. `exception` as for a failure: used if the job is given up after this attempt.
   */
  | { kind: 'transient'; cause: TransientCause; reason: string; retryAfterMs: number | null; exception?: Buffer };

export type TransientOutcome = Extract<JobOutcome, { kind: 'transient' }>;
/** What gearmand is finally told (or not, for a re-queue): every outcome but a transient one. */
export type FinalOutcome = Exclude<JobOutcome, { kind: 'transient' }>;
/** An outcome gearmand is told (WORK_COMPLETE, WORK_EXCEPTION, WORK_FAIL); a requeue is told by dropping the socket. */
export type AnswerOutcome = Exclude<FinalOutcome, { kind: 'requeue' }>;

/** One update to forward to gearmand while the job runs (a line of a streamed answer). */
export type ProgressUpdate =
  | { kind: 'status'; numerator: number; denominator: number }
  | { kind: 'data'; data: Buffer }
  | { kind: 'warning'; data: Buffer };

/** Which attempt of a job a POST is. */
export interface AttemptInfo {
  /** 1 for the first POST of a job; counts across hand-backs to gearmand this child saw. */
  attempt: number;
  /** Date.now() of the job's first attempt. */
  firstAttemptAt: number;
  /** The job's trace, remembered with a job handed back so its next assignment here keeps the trace id. */
  trace?: JobTrace;
}

/** setTimeout's ceiling: a longer delay is silently turned into 1 ms by Node. */
export const MAX_TIMER_MS = 0x7fffffff;
