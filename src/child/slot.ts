/**
 * A slot: one logical Gearman worker (the original's "thread"), one GearmanConnection per server,
 * at most ONE job at a time across all of them (docs/architecture.md, Lifecycles).
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
import { DeliveryMode } from '../config/types.js';
import type { DeliveryPolicy, ServerAddress } from '../config/types.js';
import { encodeWorkData, encodeWorkStatus, encodeWorkWarning } from '../codec/index.js';
import { JobTimeoutError, ShuttingDownError } from '../errors.js';
import type { SlotStatus } from '../ipc/messages.js';
import type { Logger } from '../log/logger.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { ConnectionState, GearmanConnection } from './gearman-connection.js';
import type { ConnectionOwner } from './gearman-connection.js';
import { FailureCause, MAX_REQUEUES, MAX_TIMER_MS, TransientCause } from './job-runner.js';
import type { AnswerOutcome, AttemptInfo, FinalOutcome, Job, JobListener, JobOutcome, JobRequest, JobRunner } from './job-runner.js';
import type { ProgressUpdate } from './ndjson-answer.js';
import { newJobTrace, traceFromWorkload, traceparentFor } from './trace-context.js';
import type { JobTrace } from './trace-context.js';
import type { WakeGroup } from './wake-group.js';

/** What a slot needs from its pool: the current runner, the re-queue ledger, the counters. */
export interface SlotContext {
  /** The runner for new attempts (replaced when the pool's HTTP settings change). */
  readonly runner: JobRunner;
  /** The pool's current delivery policy (a reload may change it between two attempts). */
  readonly delivery: DeliveryPolicy;
  /** trace_parent_field: the JSON workload member that may carry the job's upstream traceparent; null = none. */
  readonly traceParentField: string | null;
  /** The pool's admission gate and circuit breaker. */
  readonly breaker: CircuitBreaker;
  /** The slot wanted to grab but the breaker had no permit: kick it when one frees up. */
  blocked(slot: Slot): void;
  /** Attempts this child already made for a job it handed back earlier (redelivery headers). */
  recall(job: Job): AttemptInfo | undefined;
  /** Remember a handed-back job's attempts, in case gearmand assigns it to this child again. */
  remember(job: Job, attempt: AttemptInfo): void;
  /**
   * Writes a job that is about to be failed to the pool's dead-letter file; resolves once it is on
   * disk, rejects if it could not be written. Null when the pool has no dead-letter file.
   */
  deadLetter(job: Job, attempts: number, reason: string): Promise<void> | null;
  /** One attempt ended in a transient outcome (before the slot decided what to do with the job). */
  attemptFailed(outcome: JobOutcome & { kind: 'transient' }, httpStatus: number): void;
  /** A retry was scheduled; the job was handed back to gearmand; it was written as a dead letter. */
  count(event: 'retried' | 'handed_back' | 'dead_lettered'): void;
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
  record(outcome: FinalOutcome, functionName: string, durationMs: number, httpStatus: number, httpCounted: boolean): void;
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

/** Where a held job is: an attempt in flight, a backoff before the next, or its dead letter being written. */
const JobPhase = {
  POSTING: 'posting',
  WAITING: 'waiting',
  DEAD_LETTERING: 'dead-lettering',
} as const;
type JobPhase = (typeof JobPhase)[keyof typeof JobPhase];

/**
 * Delay before retry number `retry` (1 for the first retry): the Cloud Tasks shape. min_backoff doubles
 * max_doublings times, then grows linearly by that last step, capped at max_backoff; ±25 % jitter so a
 * pool's retries do not arrive in lockstep. An endpoint's Retry-After / retry_after is a floor.
 */
export function retryDelayMs(policy: DeliveryPolicy, retry: number, askedMs: number | null, random: () => number = Math.random): number {
  const doublings = Math.min(retry - 1, policy.maxDoublings);
  const lastDoubled = policy.minBackoffMs * 2 ** doublings;
  const linearSteps = Math.max(0, retry - 1 - policy.maxDoublings);
  const base = Math.min(policy.maxBackoffMs, lastDoubled * (1 + linearSteps));
  const jittered = Math.min(policy.maxBackoffMs, base * (0.75 + 0.5 * random()));
  return Math.round(askedMs === null ? jittered : Math.max(jittered, askedMs));
}

class RunningJob implements JobListener {
  readonly slot: Slot;
  readonly connection: GearmanConnection;
  readonly epoch: number;
  readonly job: Job;
  /** performance.now() at assignment: the job's duration and max_retry_duration count from here. */
  readonly assignedAt: number;
  /** Date.now() at assignment, for the status. */
  readonly startedAt: number;
  /** Attempt number of the current POST, counting attempts before earlier hand-backs. */
  attempt: number;
  /** Date.now() of the job's first attempt (this assignment's, or one before a hand-back). */
  readonly firstAttemptAt: number;
  /** POSTs in this assignment: max_attempts bounds these. */
  attemptsHere = 0;
  /** performance.now() when the current attempt started: max_running_time counts from here. */
  attemptStartedAt = 0;
  /** max_running_time of the runner that started the current attempt. */
  maxRunningTimeMs = 0;
  phase: JobPhase = JobPhase.POSTING;
  request: JobRequest | null = null;
  /** The current attempt's HTTP outcome was already counted (it was transient, then the job gave up). */
  httpCounted = false;
  retryTimer: NodeJS.Timeout | null = null;
  /** The job's trace: one per job, kept across its attempts (and a hand-back this child sees again). */
  readonly trace: JobTrace;

  constructor(slot: Slot, connection: GearmanConnection, epoch: number, job: Job, earlier: AttemptInfo | undefined, trace: JobTrace) {
    this.slot = slot;
    this.connection = connection;
    this.epoch = epoch;
    this.job = job;
    this.assignedAt = performance.now();
    this.startedAt = Date.now();
    this.attempt = earlier === undefined ? 1 : earlier.attempt + 1;
    this.firstAttemptAt = earlier === undefined ? this.startedAt : earlier.firstAttemptAt;
    this.trace = trace;
  }

  /** performance.now() by which the endpoint must have answered the current attempt. */
  get deadline(): number {
    return this.attemptStartedAt + this.maxRunningTimeMs;
  }

  onJobOutcome(outcome: JobOutcome): void {
    this.slot.jobFinished(this, outcome);
  }

  onJobProgress(update: ProgressUpdate): void {
    this.slot.jobProgress(this, update);
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
  /** Holds one of the breaker's permits: from a grab until NO_JOB or the job's end. */
  #permit = false;
  #stopping = false;
  #stopTimer: NodeJS.Timeout | null = null;
  /**
   * max_running_time, lazily: armed for the deadline of the job that found it disarmed and, when it
   * fires, re-armed for the deadline of whatever job runs then (or left off when none does). Jobs
   * that finish in time cost no timer operation at all, yet a late one fails within a millisecond of
   * its own deadline (the original's limit was loop_timeout-coarse).
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
              attempt: running.attempt,
              waitingToRetry: running.phase === JobPhase.WAITING,
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
    if (this.#job?.phase === JobPhase.WAITING) {
      // Nothing is in flight: gearmand gets the job back unfailed and gives it to another worker.
      this.#handBack(this.#job, 'the slot is stopping');
    }
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
    if (this.#grabbing === connection) {
      this.#grabbing = null;
      this.#releasePermit();
    }
    const running = this.#job;
    if (running !== null && running.connection === connection && running.phase === JobPhase.WAITING) {
      // The socket that holds the job is gone, so gearmand has re-queued it: nothing left to retry.
      this.#clearRetry(running);
      this.#job = null;
      if (this.#log.debug()) this.#log.debug({ handle: running.job.handleText }, 'gearmand connection lost while waiting to retry; gearmand re-queued the job');
      this.#afterJob();
      return;
    }
    this.#schedule();
  }

  onJobAssigned(connection: GearmanConnection, job: Job, epoch: number): void {
    this.#grabbing = null;
    this.#cursor = this.#connections.indexOf(connection);
    const earlier = this.#context.recall(job);
    const running = new RunningJob(this, connection, epoch, job, earlier, earlier?.trace ?? this.#jobTrace(job));
    this.#job = running;
    this.#startAttempt(running);
  }

  onNoJob(connection: GearmanConnection): void {
    if (this.#grabbing === connection) {
      this.#grabbing = null;
      this.#releasePermit();
    }
    this.#schedule();
  }

  /** The breaker opened: a job waiting for its next attempt goes back to gearmand now. */
  onBreakerOpen(): void {
    if (this.#job?.phase === JobPhase.WAITING) this.#handBack(this.#job, 'the circuit breaker opened');
  }

  /** A permit may be free again: grab if there is a connection to grab on. */
  kick(): void {
    this.#schedule();
  }

  onWake(): void {
    this.#schedule();
  }

  onProbe(connection: GearmanConnection): void {
    // A re-grab also catches a lost wake-up (gearmand sends one NOOP and suppresses repeats, #343);
    // it is only allowed when the slot could take a job. Otherwise ECHO_REQ proves the socket.
    if (connection.state === ConnectionState.SLEEPING && this.canGrab() && this.#takePermit()) {
      this.#grabbing = connection;
      connection.grab();
    } else {
      connection.echo();
    }
  }

  // ── jobs ───────────────────────────────────────────────────────────────────────────────────────

  /** The upstream trace of the workload when the pool names a field for it, else a new trace. */
  #jobTrace(job: Job): JobTrace {
    const field = this.#context.traceParentField;
    return (field === null ? null : traceFromWorkload(job.workload, field)) ?? newJobTrace();
  }

  /**
   * @internal A progress line of the current attempt's streamed answer: WORK_STATUS, WORK_DATA or
   * WORK_WARNING on the socket that holds the job, at once. Nothing is sent if that socket is gone
   * (gearmand re-queued the job). Updates of an attempt that is later retried stay sent.
   */
  jobProgress(running: RunningJob, update: ProgressUpdate): void {
    if (this.#job !== running || running.phase !== JobPhase.POSTING) return;
    const handle = running.job.handle;
    const packet =
      update.kind === 'status'
        ? encodeWorkStatus(handle, update.numerator, update.denominator)
        : update.kind === 'data'
          ? encodeWorkData(handle, update.data)
          : encodeWorkWarning(handle, update.data);
    running.connection.sendForJob(running.epoch, packet);
  }

  /** @internal Called by RunningJob, exactly once per attempt. */
  jobFinished(running: RunningJob, outcome: JobOutcome): void {
    if (this.#job !== running || running.phase !== JobPhase.POSTING) return;
    if (outcome.kind === 'transient') {
      this.#onTransient(running, outcome);
      return;
    }
    // The endpoint answered (a shutdown abort says nothing about it): a run of transient outcomes ends.
    if (outcome.kind !== 'fail' || outcome.cause !== FailureCause.SHUTDOWN) this.#context.breaker.reachable();
    this.#conclude(running, outcome);
  }

  /** The job's final outcome: WORK_COMPLETE, a re-queue, or (after its dead letter) WORK_FAIL. */
  #conclude(running: RunningJob, answer: FinalOutcome): void {
    let outcome = answer;
    if (outcome.kind === 'requeue' && !this.#context.allowRequeue(running.job.server, running.job.handleText)) {
      outcome = { kind: 'fail', cause: FailureCause.REQUEUE_LIMIT, reason: `endpoint answered gearman_ret 14 again after the job was re-queued ${MAX_REQUEUES} times` };
    }
    if (outcome.kind === 'fail') {
      const failed = outcome;
      const written = this.#context.deadLetter(running.job, running.attempt, outcome.reason);
      if (written !== null) {
        running.phase = JobPhase.DEAD_LETTERING;
        written.then(
          () => {
            this.#context.count('dead_lettered');
            this.#log.warn({ function: running.job.functionName, handle: running.job.handleText, unique: running.job.uniqueText, trace_id: running.trace.traceId, attempts: running.attempt, reason: outcome.reason }, 'job written to the dead-letter file');
            this.#answer(running, failed);
          },
          (error: unknown) => {
            // Failing the job now would lose it: gearmand keeps it instead.
            this.#log.error({ err: error, function: running.job.functionName, handle: running.job.handleText, trace_id: running.trace.traceId }, 'cannot write the dead letter; handing the job back to gearmand instead of failing it');
            this.#handBack(running, 'the dead letter could not be written');
          },
        );
        return;
      }
    }
    this.#answer(running, outcome);
  }

  /** Sends the outcome to gearmand on the assigning socket and moves on (next grab, or close if stopping). */
  #answer(running: RunningJob, final: FinalOutcome): void {
    if (this.#job !== running) return;
    this.#job = null;
    const { job, connection, epoch } = running;
    const durationMs = performance.now() - running.assignedAt;
    const httpStatus = running.request?.httpStatus ?? 0;
    if (final.kind === 'requeue') {
      // Allowed by #conclude: the job goes back to gearmand with the socket that holds it.
      connection.drop(epoch, 'endpoint answered gearman_ret 14: dropping the connection so gearmand re-queues the job');
      this.#context.record(final, job.functionName, durationMs, httpStatus, running.httpCounted);
      this.#logJob(running, final, durationMs, 'requeued');
      this.#afterJob();
      return;
    }
    this.#context.settleHandle(job.server, job.handleText);
    const sent = this.#sendAndGrabNext(connection, epoch, job.handle, final);
    this.#context.record(final, job.functionName, durationMs, httpStatus, running.httpCounted);
    this.#logJob(running, final, durationMs, sent ? undefined : 'connection to gearmand lost; gearmand re-queues the job');
    this.#afterJob();
  }

  /**
   * Sends a job's answer on the socket that assigned it and, unless stopping, grabs the next job: on
   * the same connection in the same write when it is next in the round-robin. Returns false (nothing
   * sent) when that socket is gone: gearmand has re-queued the job.
   */
  #sendAndGrabNext(connection: GearmanConnection, epoch: number, handle: Buffer, outcome: AnswerOutcome): boolean {
    const live = connection.holdsJob(epoch);
    // The permit goes back and is taken again for the next grab: a ramping breaker may want it elsewhere.
    this.#releasePermit();
    let next = this.#stopping ? null : this.#pickNext(live ? connection : null);
    if (next !== null && !this.#takePermit()) {
      this.#context.blocked(this);
      next = null;
    }
    const sent = live && connection.finishJob(epoch, handle, outcome, next === connection);
    if (next !== null) {
      this.#grabbing = next;
      if (next !== connection) next.grab();
    }
    return sent;
  }

  /** POSTs the job (again). The current runner: a reload between attempts takes effect at once. */
  #startAttempt(running: RunningJob): void {
    const runner = this.#context.runner;
    running.phase = JobPhase.POSTING;
    running.attemptsHere++;
    running.attemptStartedAt = performance.now();
    running.maxRunningTimeMs = runner.maxRunningTimeMs;
    running.request = null;
    running.httpCounted = false;
    // The record is stored before start(): the HTTP client may report a failure synchronously.
    const request = runner.start(running.job, running, { attempt: running.attempt, firstAttemptAt: running.firstAttemptAt }, traceparentFor(running.trace));
    if (running.phase === JobPhase.POSTING && this.#job === running) {
      running.request = request;
      if (this.#deadlineTimer === null) this.#armDeadline(running.deadline - performance.now());
    }
  }

  /**
   * An attempt ended without an answer the endpoint meant (or with a request to retry): retry in
   * place after a backoff, hand the job back to gearmand (breaker tripped, slot stopping), or give up
   * (fail_fast mode, or max_attempts / max_retry_duration spent in this assignment).
   */
  #onTransient(running: RunningJob, outcome: JobOutcome & { kind: 'transient' }): void {
    const policy = this.#context.delivery;
    const breaker = this.#context.breaker;
    this.#context.attemptFailed(outcome, running.request?.httpStatus ?? 0);
    running.httpCounted = true;
    const failCause = outcome.cause === TransientCause.TIMEOUT ? FailureCause.TIMEOUT : outcome.cause === TransientCause.ENDPOINT ? FailureCause.ENDPOINT : FailureCause.HTTP;
    const exception = outcome.exception === undefined ? {} : { exception: outcome.exception };
    if (policy.mode === DeliveryMode.FAIL_FAST) {
      this.#conclude(running, { kind: 'fail', cause: failCause, reason: outcome.reason, ...exception });
      return;
    }
    // An endpoint that asks for a retry is reachable; anything else counts toward opening the breaker
    // (which hands back every job waiting to retry, this one included below).
    if (outcome.cause === TransientCause.ENDPOINT) breaker.reachable();
    else breaker.transient(outcome.reason);
    if (this.#stopping) return this.#handBack(running, outcome.reason);
    if (breaker.tripped) return this.#handBack(running, outcome.reason);
    const delayMs = retryDelayMs(policy, running.attemptsHere, outcome.retryAfterMs);
    const elapsedMs = performance.now() - running.assignedAt;
    if (running.attemptsHere >= policy.maxAttempts || (policy.maxRetryDurationMs > 0 && elapsedMs + delayMs > policy.maxRetryDurationMs)) {
      const spent = running.attemptsHere >= policy.maxAttempts ? `${running.attemptsHere} attempts` : `max_retry_duration (${policy.maxRetryDurationMs} ms)`;
      this.#conclude(running, { kind: 'fail', cause: failCause, reason: `gave up after ${spent}: ${outcome.reason}`, ...exception });
      return;
    }
    running.phase = JobPhase.WAITING;
    running.request = null;
    this.#context.count('retried');
    if (this.#log.debug()) {
      this.#log.debug({ function: running.job.functionName, handle: running.job.handleText, trace_id: running.trace.traceId, attempt: running.attempt, retryInMs: delayMs, reason: outcome.reason }, 'attempt failed; retrying');
    }
    running.retryTimer = setTimeout(() => this.#retry(running), delayMs);
  }

  #retry(running: RunningJob): void {
    running.retryTimer = null;
    if (this.#job !== running || running.phase !== JobPhase.WAITING) return;
    if (!running.connection.holdsJob(running.epoch)) {
      // Lost with its socket: gearmand has re-queued it (onConnectionDown normally gets here first).
      this.#job = null;
      this.#afterJob();
      return;
    }
    if (this.#stopping || this.#context.breaker.tripped) {
      this.#handBack(running, this.#stopping ? 'the slot is stopping' : 'the circuit breaker is open');
      return;
    }
    running.attempt++;
    this.#startAttempt(running);
  }

  /**
   * Gives the job back to gearmand unfailed: drops the socket that holds it (gearmand re-queues what a
   * lost worker held, as for gearman_ret 14) and reconnects at once. gearmand's --job-retries, if set,
   * counts these.
   */
  #handBack(running: RunningJob, reason: string): void {
    if (this.#job !== running) return;
    this.#clearRetry(running);
    this.#job = null;
    this.#context.remember(running.job, { attempt: running.attempt, firstAttemptAt: running.firstAttemptAt, trace: running.trace });
    running.connection.drop(running.epoch, `handing the job back to gearmand: ${reason}`);
    this.#context.count('handed_back');
    this.#context.breaker.handedBack();
    if (this.#log.debug()) {
      this.#log.debug({ function: running.job.functionName, handle: running.job.handleText, trace_id: running.trace.traceId, attempt: running.attempt, reason }, 'job handed back to gearmand');
    }
    this.#afterJob();
  }

  #clearRetry(running: RunningJob): void {
    if (running.retryTimer !== null) {
      clearTimeout(running.retryTimer);
      running.retryTimer = null;
    }
  }

  #takePermit(): boolean {
    if (this.#permit) return true;
    if (!this.#context.breaker.acquire()) return false;
    this.#permit = true;
    return true;
  }

  #releasePermit(): void {
    if (!this.#permit) return;
    this.#permit = false;
    this.#context.breaker.release();
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
    if (!this.#grabbing) this.#releasePermit();
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
    if (outcome.kind !== 'fail' && !log.debug()) return;
    // Built only when a line will be written: at info level a completed job costs no object.
    const fields = {
      function: running.job.functionName,
      handle: running.job.handleText,
      unique: running.job.uniqueText,
      server: running.job.server,
      trace_id: running.trace.traceId,
      durationMs: round(durationMs),
    };
    if (outcome.kind === 'fail') log.warn({ ...fields, cause: outcome.cause, reason: outcome.reason, note }, 'job failed');
    else log.debug({ ...fields, outcome: outcome.kind, resultBytes: outcome.kind === 'complete' ? outcome.result.length : undefined, note }, 'job done');
  }

  // ── grabbing ───────────────────────────────────────────────────────────────────────────────────

  /** ConnectionOwner: no job, no grab outstanding, not stopping, and the breaker would admit one. */
  canGrab(): boolean {
    return !this.#stopping && this.#job === null && this.#grabbing === null && (this.#permit || this.#context.breaker.admits);
  }

  /** Grabs on the next READY connection if the slot may take a job. */
  #schedule(): void {
    if (this.#stopping || this.#job !== null || this.#grabbing !== null) return;
    const next = this.#pickNext(null);
    if (next === null) return;
    if (!this.#takePermit()) {
      this.#context.blocked(this);
      return;
    }
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
    this.#releasePermit();
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
    const outcome: FinalOutcome = { kind: 'fail', cause: FailureCause.WORKLOAD_LIMIT, reason: `workload of ${workloadBytes} bytes is over max_workload_bytes (${limit})` };
    this.#context.settleHandle(connection.server.label, handleText);
    this.#sendAndGrabNext(connection, epoch, handle, outcome);
    this.#context.record(outcome, functionName, 0, 0, false);
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
