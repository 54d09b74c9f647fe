/**
 * A slot: one logical Gearman worker (the original's "thread"), one GearmanConnection per server,
 * at most ONE job at a time across all of them (SPEC §3).
 *
 * Grab strategy: at most one GRAB_JOB_UNIQ is outstanding per slot, and none while a job runs, so an
 * assignment can never arrive that the slot cannot take (gearmand offers no way to refuse one).
 * Connections that may have work (just registered, woken by NOOP, or just finished a job) are READY;
 * the slot grabs on them one at a time, round-robin starting after the connection that served last.
 * With one server that is always the same connection, and its WORK_COMPLETE and next GRAB leave in one
 * write. With several, a busy server cannot starve another that has sent NOOP: the woken one is next.
 * NO_JOB puts a connection to sleep (PRE_SLEEP) or parks it (its WakeGroup decides: one connection per
 * server sleeps for the whole pool, see wake-group.ts) and the slot moves on to the next READY one; a
 * sleeping or parked connection costs nothing until gearmand NOOPs it or its group unparks it.
 *
 * The job is answered on the connection (and the very socket) that assigned it; if that socket died
 * meanwhile gearmand has re-queued the job and the outcome is dropped.
 */
import type { ServerAddress } from '../config/types.js';
import { encodeWorkComplete, encodeWorkCompleteHead, encodeWorkFail } from '../codec/index.js';
import { JobTimeoutError, ShuttingDownError } from '../errors.js';
import type { SlotStatus } from '../ipc/messages.js';
import type { Logger } from '../log.js';
import { ConnectionState, GearmanConnection } from './gearman-connection.js';
import type { ConnectionOwner } from './gearman-connection.js';
import { FailureCause, MAX_TIMER_MS } from './job-runner.js';
import type { Job, JobListener, JobOutcome, JobRequest, JobRunner } from './job-runner.js';
import type { WakeGroup } from './wake-group.js';

/** What a slot needs from its pool: the current runner, the re-queue ledger, the counters. */
export interface SlotContext {
  /** The runner for new jobs (replaced when the pool's HTTP settings change). */
  readonly runner: JobRunner;
  /**
   * gearman_ret 14 for `handle` from `server`: true if it may be re-queued once more, false when the
   * limit is reached and the job must fail instead.
   */
  allowRequeue(server: string, handle: string): boolean;
  /** Forget a handle's re-queue count once it has a final outcome. */
  settleHandle(server: string, handle: string): void;
  /**
   * Every finished job, exactly once, with what gearmand was told, its function, its duration from
   * assignment in milliseconds and the endpoint's HTTP status (0 when no response headers arrived).
   */
  record(outcome: JobOutcome, functionName: string, durationMs: number, httpStatus: number): void;
}

export interface SlotOptions {
  id: string;
  servers: readonly ServerAddress[];
  /** One per server, same order, shared by the slots of one generation (same functions). */
  wakeGroups?: readonly WakeGroup[];
  functions: readonly string[];
  loopTimeoutMs: number;
  context: SlotContext;
  log: Logger;
  /** max_workload_bytes: larger workloads fail unread (0 or absent: the codec's packet cap). */
  maxWorkloadBytes?: number;
}

/** Below this a WORK_COMPLETE is one buffer; above, the result follows the head uncopied. */
const COPY_RESULT_LIMIT = 16 * 1024;

class RunningJob implements JobListener {
  readonly slot: Slot;
  readonly connection: GearmanConnection;
  readonly epoch: number;
  readonly job: Job;
  /** performance.now() at assignment: duration and max_running_time count from here. */
  readonly assignedAt: number;
  /** max_running_time of the runner that started the job. */
  readonly maxRunningTimeMs: number;
  /** Date.now() at assignment, for the status. */
  readonly startedAt: number;
  request: JobRequest | null = null;

  constructor(slot: Slot, connection: GearmanConnection, epoch: number, job: Job, maxRunningTimeMs: number) {
    this.slot = slot;
    this.connection = connection;
    this.epoch = epoch;
    this.job = job;
    this.maxRunningTimeMs = maxRunningTimeMs;
    this.assignedAt = performance.now();
    this.startedAt = Date.now();
  }

  /** performance.now() by which the endpoint must have answered. */
  get deadline(): number {
    return this.assignedAt + this.maxRunningTimeMs;
  }

  onJobOutcome(outcome: JobOutcome): void {
    this.slot.jobFinished(this, outcome);
  }
}

export class Slot implements ConnectionOwner {
  readonly id: string;
  readonly #context: SlotContext;
  readonly #log: Logger;
  readonly #connections: GearmanConnection[];
  /** Index of the connection that grabbed last: the round-robin starts after it. */
  #cursor = 0;
  #grabbing: GearmanConnection | null = null;
  #job: RunningJob | null = null;
  #stopping = false;
  #stopTimer: NodeJS.Timeout | null = null;
  /**
   * max_running_time, lazily: armed for the deadline of the job that found it disarmed and, when it
   * fires, re-armed for the deadline of whatever job runs then (or left off when none does). Jobs
   * that finish in time cost no timer operation at all, yet a late one fails within a millisecond of
   * its own deadline (original fault 10: the original's limit was loop_timeout-coarse).
   */
  #deadlineTimer: NodeJS.Timeout | null = null;
  /** performance.now() by which a running job must be done once stopping; a later stop() can only shorten it. */
  #stopDeadline = Infinity;
  #closed: Promise<void> | null = null;
  #resolveStopped: (() => void) | null = null;
  readonly #stopped: Promise<void>;

  constructor(options: SlotOptions) {
    this.id = options.id;
    this.#context = options.context;
    this.#log = options.log;
    this.#connections = options.servers.map((server, index) => {
      const wakeGroup = options.wakeGroups?.[index];
      return new GearmanConnection({
        server,
        clientId: options.id,
        functions: options.functions,
        loopTimeoutMs: options.loopTimeoutMs,
        owner: this,
        log: options.log,
        maxWorkloadBytes: options.maxWorkloadBytes,
        ...(wakeGroup === undefined ? {} : { wakeGroup }),
      });
    });
    this.#stopped = new Promise<void>((resolve) => {
      this.#resolveStopped = resolve;
    });
  }

  start(): void {
    for (const connection of this.#connections) connection.start();
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** No job running (scale-down stops these first). */
  get idle(): boolean {
    return this.#job === null;
  }

  get connectedServers(): number {
    let n = 0;
    for (const connection of this.#connections) if (connection.connected) n++;
    return n;
  }

  /** @internal For tests: the connections' states. */
  get connectionStates(): ConnectionState[] {
    return this.#connections.map((c) => c.state);
  }

  status(): SlotStatus {
    const running = this.#job;
    return {
      id: this.id,
      stopping: this.#stopping,
      job:
        running === null
          ? null
          : {
              handle: running.job.handleText,
              unique: running.job.uniqueText,
              functionName: running.job.functionName,
              server: running.job.server,
              startedAt: running.startedAt,
            },
      connectedServers: this.connectedServers,
      connections: this.#connections.map((c) => ({ server: c.server.label, state: c.state, connected: c.connected })),
    };
  }

  tick(now: number): void {
    for (const connection of this.#connections) connection.tick(now);
  }

  /**
   * Graceful stop: no more grabs; a running job may finish for up to `graceMs`, then it gets WORK_FAIL;
   * then every connection closes. Resolves when all are closed. Calling again can only shorten the grace.
   */
  stop(graceMs: number): Promise<void> {
    const first = !this.#stopping;
    this.#stopping = true;
    if (this.#job === null) {
      this.#closeAll();
    } else if (graceMs <= 0) {
      this.#abortJob('the slot was destroyed');
    } else {
      const deadline = performance.now() + graceMs;
      if (deadline < this.#stopDeadline) {
        this.#stopDeadline = deadline;
        if (this.#stopTimer !== null) clearTimeout(this.#stopTimer);
        this.#stopTimer = setTimeout(() => {
          this.#stopTimer = null;
          this.#abortJob(`the slot was stopped and the job did not finish within ${graceMs} ms`);
        }, Math.min(MAX_TIMER_MS, graceMs));
      }
    }
    if (first && this.#log.debug()) this.#log.debug({ graceMs, busy: this.#job !== null }, 'slot stopping');
    return this.#stopped;
  }

  /** Resolves once the slot was stopped and every connection is closed. */
  get stopped(): Promise<void> {
    return this.#stopped;
  }

  /** Hard stop: WORK_FAIL the running job now, close. */
  destroy(): Promise<void> {
    return this.stop(0);
  }

  // ── ConnectionOwner ────────────────────────────────────────────────────────────────────────────

  onConnectionUp(): void {
    this.#schedule();
  }

  onConnectionDown(connection: GearmanConnection): void {
    if (this.#grabbing === connection) this.#grabbing = null;
    this.#schedule();
  }

  onJobAssigned(connection: GearmanConnection, job: Job, epoch: number): void {
    this.#grabbing = null;
    this.#cursor = this.#connections.indexOf(connection);
    const runner = this.#context.runner;
    const running = new RunningJob(this, connection, epoch, job, runner.maxRunningTimeMs);
    this.#job = running;
    // The record is stored before start(): undici may report a failure synchronously.
    running.request = runner.start(job, running);
    if (this.#deadlineTimer === null && this.#job === running) this.#armDeadline(running.deadline - performance.now());
  }

  onNoJob(connection: GearmanConnection): void {
    if (this.#grabbing === connection) this.#grabbing = null;
    this.#schedule();
  }

  onWake(): void {
    this.#schedule();
  }

  onProbe(connection: GearmanConnection): void {
    // A re-grab also catches a lost wake-up (gearmand sends one NOOP and suppresses repeats, #343);
    // it is only allowed when the slot could take a job. Otherwise ECHO_REQ proves the socket.
    if (connection.state === ConnectionState.SLEEPING && this.canGrab()) {
      this.#grabbing = connection;
      connection.grab();
    } else {
      connection.echo();
    }
  }

  // ── jobs ───────────────────────────────────────────────────────────────────────────────────────

  /** @internal Called by RunningJob, exactly once per job. */
  jobFinished(running: RunningJob, outcome: JobOutcome): void {
    if (this.#job !== running) return;
    this.#job = null;
    const { job, connection, epoch } = running;
    const durationMs = performance.now() - running.assignedAt;
    const httpStatus = running.request?.httpStatus ?? 0;
    let final = outcome;
    if (outcome.kind === 'requeue') {
      if (this.#context.allowRequeue(job.server, job.handleText)) {
        connection.drop(epoch, 'endpoint answered gearman_ret 14: dropping the connection so gearmand re-queues the job');
        this.#context.record(outcome, job.functionName, durationMs, httpStatus);
        this.#logJob(running, outcome, durationMs, 'requeued');
        this.#afterJob();
        return;
      }
      final = { kind: 'fail', cause: FailureCause.REQUEUE_LIMIT, reason: 'endpoint answered gearman_ret 14 again after the job was re-queued 5 times' };
    }
    this.#context.settleHandle(job.server, job.handleText);
    let packet: Buffer;
    let body: Buffer | null = null;
    if (final.kind === 'complete') {
      const result = final.result;
      if (result.length <= COPY_RESULT_LIMIT) {
        packet = encodeWorkComplete(job.handle, result);
      } else {
        packet = encodeWorkCompleteHead(job.handle, result.length);
        body = result;
      }
    } else {
      packet = encodeWorkFail(job.handle);
    }
    const live = connection.holdsJob(epoch);
    const next = this.#stopping ? null : this.#pickNext(live ? connection : null);
    const sent = live && connection.finishJob(epoch, packet, body, next === connection);
    if (next !== null) {
      this.#grabbing = next;
      if (next !== connection) next.grab();
    }
    this.#context.record(final, job.functionName, durationMs, httpStatus);
    this.#logJob(running, final, durationMs, sent ? undefined : 'connection to gearmand lost; gearmand re-queues the job');
    this.#afterJob();
  }

  #armDeadline(ms: number): void {
    this.#deadlineTimer = setTimeout(() => this.#onDeadline(), Math.min(MAX_TIMER_MS, Math.max(0, ms)));
  }

  #onDeadline(): void {
    this.#deadlineTimer = null;
    const running = this.#job;
    if (running === null) return;
    const left = running.deadline - performance.now();
    if (left > 0) {
      this.#armDeadline(left);
      return;
    }
    running.request?.abort(new JobTimeoutError(`no answer from the endpoint within max_running_time (${running.maxRunningTimeMs} ms)`));
  }

  #afterJob(): void {
    if (this.#stopTimer !== null) {
      clearTimeout(this.#stopTimer);
      this.#stopTimer = null;
    }
    if (this.#stopping) this.#closeAll();
    else this.#schedule();
  }

  #abortJob(reason: string): void {
    this.#job?.request?.abort(new ShuttingDownError(reason));
  }

  #logJob(running: RunningJob, outcome: JobOutcome, durationMs: number, note: string | undefined): void {
    const log = this.#log;
    if (outcome.kind === 'fail') {
      log.warn(
        {
          function: running.job.functionName,
          handle: running.job.handleText,
          unique: running.job.uniqueText,
          server: running.job.server,
          durationMs: round(durationMs),
          cause: outcome.cause,
          reason: outcome.reason,
          note,
        },
        'job failed',
      );
    } else if (log.debug()) {
      log.debug(
        {
          function: running.job.functionName,
          handle: running.job.handleText,
          unique: running.job.uniqueText,
          server: running.job.server,
          durationMs: round(durationMs),
          outcome: outcome.kind,
          resultBytes: outcome.kind === 'complete' ? outcome.result.length : undefined,
          note,
        },
        'job done',
      );
    }
  }

  // ── grabbing ───────────────────────────────────────────────────────────────────────────────────

  /** ConnectionOwner: no job, no grab outstanding, not stopping. */
  canGrab(): boolean {
    return !this.#stopping && this.#job === null && this.#grabbing === null;
  }

  /** Grabs on the next READY connection if the slot may take a job. */
  #schedule(): void {
    if (!this.canGrab()) return;
    const next = this.#pickNext(null);
    if (next === null) return;
    this.#grabbing = next;
    next.grab();
  }

  /**
   * Round-robin from the connection after the cursor; the cursor's own connection comes last.
   * `alsoReady` counts as READY (the connection whose job is finishing right now).
   */
  #pickNext(alsoReady: GearmanConnection | null): GearmanConnection | null {
    const connections = this.#connections;
    const n = connections.length;
    for (let i = 1; i <= n; i++) {
      const index = (this.#cursor + i) % n;
      const connection = connections[index] as GearmanConnection;
      if (connection === alsoReady || connection.state === ConnectionState.READY) {
        this.#cursor = index;
        return connection;
      }
    }
    return null;
  }

  #closeAll(): void {
    if (this.#closed !== null) return;
    if (this.#stopTimer !== null) {
      clearTimeout(this.#stopTimer);
      this.#stopTimer = null;
    }
    if (this.#deadlineTimer !== null) {
      clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = null;
    }
    this.#closed = Promise.all(this.#connections.map((c) => c.close())).then(() => {
      this.#resolveStopped?.();
      this.#resolveStopped = null;
      if (this.#log.debug()) this.#log.debug('slot stopped');
    });
  }

  /**
   * ConnectionOwner: an assigned job's workload is over max_workload_bytes and was dropped unread. The
   * job fails at once, without an HTTP request, and the slot grabs on as after any finished job.
   */
  onOversizedJob(connection: GearmanConnection, handle: Buffer, functionName: string, workloadBytes: number, epoch: number): void {
    this.#grabbing = null;
    this.#cursor = this.#connections.indexOf(connection);
    const handleText = handle.toString('latin1');
    const limit = connection.maxWorkloadBytes;
    const outcome: JobOutcome = { kind: 'fail', cause: FailureCause.WORKLOAD_LIMIT, reason: `workload of ${workloadBytes} bytes is over max_workload_bytes (${limit})` };
    this.#context.settleHandle(connection.server.label, handleText);
    const next = this.#stopping ? null : this.#pickNext(connection);
    // Synchronous with the assignment: the socket that assigned the job is still the live one.
    connection.finishJob(epoch, encodeWorkFail(handle), null, next === connection);
    if (next !== null) {
      this.#grabbing = next;
      if (next !== connection) next.grab();
    }
    this.#context.record(outcome, functionName, 0, 0);
    this.#log.warn(
      { function: functionName, handle: handleText, server: connection.server.label, workloadBytes, maxWorkloadBytes: limit, cause: outcome.cause, reason: outcome.reason },
      'job failed',
    );
    this.#afterJob();
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export { RunningJob };
