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
  | { type: 'shutdown'; seq: number; mode: ShutdownMode; deadlineMs: number };

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
  /** Sent once every slot has closed after a shutdown request; the child exits right after. */
  | { type: 'stopped'; ack: number }
  /** A bunyan record from the child; the master writes it to its own streams. */
  | { type: 'log'; record: Record<string, unknown> };

export interface SlotStatus {
  /** Unique across the daemon for the slot's lifetime: `<child pid>-<n>`. */
  id: string;
  /** True once the slot has been told to stop (scale-down, reconfigure, shutdown). */
  stopping: boolean;
  /** Present while a job runs. */
  job: { handle: string; unique: string; functionName: string; server: string; startedAt: number } | null;
  /** Servers this slot is currently registered with. */
  connectedServers: number;
}

export interface ChildCounters {
  jobs_completed: number;
  jobs_failed: number;
  jobs_timed_out: number;
  /** gearman_ret 14: connection dropped so gearmand re-queues. */
  jobs_requeued: number;
  /** Transport failures and non-200 / invalid responses. */
  http_errors: number;
}

export interface ChildStatus {
  pool: string;
  pid: number;
  slots: SlotStatus[];
  counters: ChildCounters;
}
