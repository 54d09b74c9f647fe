/**
 * What a GearmanConnection tells the slot that owns it, and asks of it. The connection never decides
 * on its own to grab: a slot may hold only one job across all its connections (gearmand offers no way
 * to refuse an assignment), so the connection reports what happened and the slot decides.
 * `Connection` is the GearmanConnection: generic so that the two files do not import each other.
 */
import type { Job } from '../job.js';

export interface ConnectionOwner<Connection> {
  /** Connected and registered; the connection is READY. */
  onConnectionUp(connection: Connection): void;
  /** Lost (or dropped on purpose); it reconnects by itself. Not called for close(). */
  onConnectionDown(connection: Connection, error: Error): void;
  /** JOB_ASSIGN_UNIQ answered our grab; the connection is RUNNING. */
  onJobAssigned(connection: Connection, job: Job, epoch: number): void;
  /**
   * Our GRAB went unanswered for the grab-reply timeout (or its server turned suspect): the owner no
   * longer counts it as its grab. It stays outstanding on this connection; see adoptLateJob.
   */
  onGrabAbandoned(connection: Connection): void;
  /**
   * An abandoned GRAB was answered with a job: true → the owner takes it as if it had just grabbed
   * (onJobAssigned follows); false → the socket is dropped so gearmand re-queues the job.
   */
  adoptLateJob(connection: Connection, functionName: string, handle: string): boolean;
  /**
   * JOB_ASSIGN_UNIQ answered our grab with a workload over `maxWorkloadBytes`, which was dropped unread;
   * the connection is RUNNING and expects finishJob() for that handle like any job.
   */
  onOversizedJob(connection: Connection, handle: Buffer, functionName: string, workloadBytes: number, epoch: number): void;
  /** NO_JOB answered our grab; the connection is SLEEPING (PRE_SLEEP sent) or PARKED. */
  onNoJob(connection: Connection): void;
  /** NOOP woke a sleeping connection, or its WakeGroup unparked it; it is READY. */
  onWake(connection: Connection): void;
  /** Whether the owner would grab on a READY connection right now (no job, no other grab, not stopping). */
  canGrab(): boolean;
  /** Quiet for loopTimeoutMs: send a probe now — `grab()` if it may, else `echo()`. */
  onProbe(connection: Connection): void;
}
