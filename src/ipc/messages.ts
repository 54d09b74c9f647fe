/**
 * Typed messages between the master and a pool child, one discriminated union per direction.
 * Requests carry `seq`; their replies carry `ack` with the same number. Everything here is plain data:
 * it crosses the IPC channel as JSON.
 */
import type { PoolConfig, ServerAddress } from '../config/types.js';
import type { SerializedError } from '../errors.js';

/** What a child needs to run its pool. */
export interface ChildSettings {
  pool: PoolConfig;
  servers: ServerAddress[];
  /** loop_timeout in milliseconds: liveness probes and backoff caps derive from it. */
  loopTimeoutMs: number;
  /** bunyan level name the child filters at before forwarding records to the master. */
  logLevel: string;
  /**
   * How often the child sends `heartbeat` (absent from older masters: the child derives it from
   * loopTimeoutMs with heartbeatIntervalMs).
   */
  heartbeatIntervalMs?: number;
}

/** The shortest and longest heartbeat period: often enough to notice a wedged child, rare enough to cost nothing. */
export const MIN_HEARTBEAT_INTERVAL_MS = 250;
export const MAX_HEARTBEAT_INTERVAL_MS = 2500;

/**
 * A child's heartbeat period: a quarter of loop_timeout, and at most a quarter of the time after which
 * the master calls a silent child unresponsive (so one late beat is not yet a verdict), within 250 ms–2.5 s.
 */
export function heartbeatIntervalMs(loopTimeoutMs: number, unresponsiveAfterMs: number = Infinity): number {
  const wanted = Math.min(loopTimeoutMs / 4, unresponsiveAfterMs / 4);
  return Math.round(Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.max(MIN_HEARTBEAT_INTERVAL_MS, wanted)));
}

export const ShutdownMode = {
  /** Stop grabbing, let running jobs finish until the deadline, WORK_FAIL the rest, close. */
  GRACEFUL: 'graceful',
  /** WORK_FAIL running jobs now, close. */
  HARD: 'hard',
} as const;
export type ShutdownMode = (typeof ShutdownMode)[keyof typeof ShutdownMode];

export type MasterToChild =
  | { type: 'init'; seq: number; settings: ChildSettings }
  | { type: 'reconfigure'; seq: number; settings: ChildSettings }
  | { type: 'status'; seq: number }
  | { type: 'shutdown'; seq: number; mode: ShutdownMode; deadlineMs: number }
  /** USR2 (logrotate): close the pool's dead-letter files after their pending writes; the next write reopens the path. */
  | { type: 'reopen-files'; seq: number };

export type ChildToMaster =
  /**
   * Sent once the child listens for messages. The child's ES module loads asynchronously, and a message
   * that arrives before its listener exists is dropped, so the master sends `init` only after this.
   */
  | { type: 'hello' }
  | { type: 'ready'; ack: number }
  | { type: 'init-failed'; ack: number; error: SerializedError }
  | { type: 'reconfigured'; ack: number }
  | { type: 'reconfigure-failed'; ack: number; error: SerializedError }
  | { type: 'status-reply'; ack: number; status: ChildStatus }
  /** The dead-letter files closed for reopening (none when the pool has none). */
  | { type: 'files-reopened'; ack: number; files: string[] }
  /**
   * Sent once every slot has closed after a shutdown request; the child exits right after. It carries
   * the final counters and metrics, so jobs finished since the master's last status poll still count.
   */
  | { type: 'stopped'; ack: number; counters?: ChildCounters; metrics?: ChildMetrics }
  /** A bunyan record from the child; the master writes it to its own streams. */
  | { type: 'log'; record: Record<string, unknown> }
  /**
   * Sent every heartbeatIntervalMs from `ready` until the child exits, by a timer on the child's event
   * loop: a child that is stopped (SIGSTOP) or whose event loop is blocked falls silent, and the master
   * notices that without asking for a status.
   */
  | { type: 'heartbeat' };

export interface SlotStatus {
  /** Unique across the daemon for the slot's lifetime: `<child pid>-<n>`. */
  id: string;
  /** True once the slot has been told to stop (scale-down, reconfigure, shutdown). */
  stopping: boolean;
  /** Present while a job runs. */
  job: {
    handle: string;
    unique: string;
    functionName: string;
    server: string;
    startedAt: number;
    /** The current attempt's number (1 unless retried or redelivered); absent from older children. */
    attempt?: number;
    /** Between two attempts, waiting for the backoff to pass. */
    waitingToRetry?: boolean;
  } | null;
  /** Servers this slot is currently registered with. */
  connectedServers: number;
  /**
   * Each connection, in gearman_servers_list order: the server's label, its state (the child's
   * ConnectionState) and whether that state means registered. Absent from older children.
   */
  connections?: Array<{ server: string; state: string; connected: boolean }>;
}

export interface ChildCounters {
  jobs_completed: number;
  jobs_failed: number;
  jobs_timed_out: number;
  /** gearman_ret 14: connection dropped so gearmand re-queues. */
  jobs_requeued: number;
  /** Transport failures and non-200 / invalid responses. */
  http_errors: number;
  /** Transient outcomes answered by POSTing the same job again after a backoff. */
  jobs_retried: number;
  /** Jobs given back to gearmand unfailed (breaker open, stop while waiting to retry). */
  jobs_handed_back: number;
  /** Jobs written to the pool's dead-letter file before their WORK_FAIL. */
  jobs_dead_lettered: number;
}

/** Every ChildCounters key, in the order the status port prints them: the one list of the counters. */
export const COUNTER_NAMES = [
  'jobs_completed',
  'jobs_failed',
  'jobs_timed_out',
  'jobs_requeued',
  'http_errors',
  'jobs_retried',
  'jobs_handed_back',
  'jobs_dead_lettered',
] as const satisfies ReadonlyArray<keyof ChildCounters>;

export function zeroCounters(): ChildCounters {
  return { jobs_completed: 0, jobs_failed: 0, jobs_timed_out: 0, jobs_requeued: 0, http_errors: 0, jobs_retried: 0, jobs_handed_back: 0, jobs_dead_lettered: 0 };
}

export function addCounters(a: ChildCounters, b: ChildCounters): ChildCounters {
  const sum = zeroCounters();
  for (const name of COUNTER_NAMES) sum[name] = a[name] + b[name];
  return sum;
}

export const BreakerState = {
  /** Jobs flow; after a re-close, `admitted` slots may hold a job while the pool ramps back up. */
  CLOSED: 'closed',
  /** The pool grabs nothing; jobs wait in gearmand until the cool-off ends. */
  OPEN: 'open',
  /** One probe (a real job, or a GET of health_url) decides whether to close or re-open. */
  HALF_OPEN: 'half-open',
} as const;
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState];

/** A pool's delivery state, for /status, the status page, `gauges`, /metrics and /readyz. */
export interface DeliveryStatus {
  breaker: BreakerState;
  /** Date.now() of the last breaker state change. */
  since: number;
  /** The transient failure that opened the breaker (or the last one seen), else null. */
  lastReason: string | null;
  /** Slots allowed to hold a job right now (worker_count when fully closed). */
  admitted: number;
  /** Jobs held by a slot waiting for their next attempt. */
  retrying: number;
  /** Times the breaker opened since the child started. */
  opened: number;
}

/**
 * Upper bounds, in seconds, of the job duration histogram's buckets (+Inf is implicit). Part of the IPC
 * contract: a child's bucket counts mean nothing without these bounds, and the master sums counts
 * index by index.
 */
export const DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** One function's job metrics in one child, cumulative since the child started. */
export interface FunctionMetrics {
  completed: number;
  /** Failed for any reason but max_running_time (those are timedOut). */
  failed: number;
  timedOut: number;
  /** gearman_ret 14 answered by dropping the connection. */
  requeued: number;
  /**
   * Jobs per duration bucket, NOT cumulative: index i counts durations in (DURATION_BUCKETS[i-1],
   * DURATION_BUCKETS[i]]; the last index (DURATION_BUCKETS.length) counts those above the last bound.
   */
  buckets: number[];
  /** Sum of every job's duration, in seconds. */
  durationSum: number;
}

export interface ChildMetrics {
  /** By function name. */
  functions: Record<string, FunctionMetrics>;
  /** HTTP outcomes by code: the status ("200", "500"…), "error" (no response) or "timeout". */
  http: Record<string, number>;
}

export interface ChildStatus {
  pool: string;
  pid: number;
  slots: SlotStatus[];
  counters: ChildCounters;
  /** Per-function and per-HTTP-code metrics (absent from older children). */
  metrics?: ChildMetrics;
  /** Retries, breaker and dead letters (absent from older children). */
  delivery?: DeliveryStatus;
}
