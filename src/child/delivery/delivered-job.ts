/**
 * One job's delivery state while a slot holds it: its attempts, its phase, the attempt in flight or
 * the timer before the next. The decisions are the Delivery's (delivery.ts); this object carries the
 * state between them and is the runner's listener for the current attempt.
 */
import type { SlotStatus } from '../../ipc/messages.js';
import type { Logger } from '../../log/logger.js';
import type { JobListener, JobRequest } from '../http/job-runner.js';
import type { AnswerOutcome, AttemptInfo, Job, JobOutcome, ProgressUpdate } from '../job.js';
import type { FailVerdict, Remembered } from './attempt-ledger.js';
import type { JobTrace } from '../trace-context.js';

/** Where a held job is: an attempt in flight, a backoff before the next, or its dead letter being written. */
export const JobPhase = {
  POSTING: 'posting',
  WAITING: 'waiting',
  DEAD_LETTERING: 'dead-lettering',
  /** Answered, handed back or lost: nothing more happens to it here. */
  ENDED: 'ended',
} as const;
export type JobPhase = (typeof JobPhase)[keyof typeof JobPhase];

/** Where a job is held: the slot that grabbed it, answering on the socket that assigned it. */
export interface JobHolder {
  /** The slot is stopping: a job must not wait for another attempt there. */
  readonly stopping: boolean;
  /** Whether the socket that assigned the job still holds it (if not, gearmand has re-queued it). */
  holds(job: DeliveredJob): boolean;
  /** A progress line of the running attempt, for the client (WORK_STATUS, WORK_DATA, WORK_WARNING). */
  progress(job: DeliveredJob, update: ProgressUpdate): void;
  /** Tells gearmand the outcome on the assigning socket and goes on; false (nothing sent) when that socket is gone. */
  answer(job: DeliveredJob, outcome: AnswerOutcome): boolean;
  /** Drops the assigning socket without an answer, so gearmand re-queues the job, and goes on. */
  release(job: DeliveredJob, reason: string): void;
  /** The job is over without a word to gearmand: its socket is gone and gearmand re-queued it. */
  forget(job: DeliveredJob): void;
}

/** The decisions a DeliveredJob defers to (the Delivery). */
export interface DeliveryDecisions {
  begin(job: DeliveredJob): void;
  attemptEnded(job: DeliveredJob, outcome: JobOutcome): void;
  connectionLost(job: DeliveredJob): void;
  slotStopping(job: DeliveredJob): void;
}

export class DeliveredJob implements JobListener, AttemptInfo {
  readonly holder: JobHolder;
  readonly job: Job;
  readonly log: Logger;
  /** The job's trace: one per job, kept across its attempts (and a hand-back this child sees again). */
  readonly trace: JobTrace;
  /** performance.now() at assignment: the job's duration and max_retry_duration count from here. */
  readonly assignedAt: number;
  /** Date.now() at assignment, for the status. */
  readonly startedAt: number;
  /** Date.now() of the job's first attempt (this assignment's, or one before a hand-back). */
  readonly firstAttemptAt: number;
  /** Attempt number of the current POST, counting attempts before earlier hand-backs: max_attempts bounds it. */
  attempt: number;
  /** Attempts that were failed breaker probes: not counted toward max_attempts. */
  freeAttempts: number;
  /** A verdict reached before a hand-back (only the dead letter is missing): no attempt is made. */
  readonly verdict: FailVerdict | null;
  /** performance.now() when the current attempt started: max_running_time counts from here. */
  attemptStartedAt = 0;
  /** max_running_time of the runner that started the current attempt. */
  maxRunningTimeMs = 0;
  phase: JobPhase = JobPhase.POSTING;
  request: JobRequest | null = null;
  /** The current attempt's HTTP outcome was already counted (it was transient, then the job gave up). */
  httpCounted = false;
  readonly #decisions: DeliveryDecisions;
  #retryTimer: NodeJS.Timeout | null = null;
  /** @internal Neighbours in the delivery's HeldJobs list while the job is held. */
  heldPrev: DeliveredJob | null = null;
  heldNext: DeliveredJob | null = null;

  constructor(decisions: DeliveryDecisions, holder: JobHolder, job: Job, earlier: Remembered | undefined, trace: JobTrace, log: Logger) {
    this.#decisions = decisions;
    this.holder = holder;
    this.job = job;
    this.log = log;
    this.trace = trace;
    this.assignedAt = performance.now();
    this.startedAt = Date.now();
    this.verdict = earlier?.verdict ?? null;
    this.freeAttempts = earlier?.freeAttempts ?? 0;
    this.attempt = earlier === undefined ? 1 : this.verdict !== null ? earlier.attempt : earlier.attempt + 1;
    this.firstAttemptAt = earlier === undefined ? this.startedAt : earlier.firstAttemptAt;
    // A verdict's HTTP outcome was counted in the assignment that reached it.
    this.httpCounted = this.verdict !== null;
  }

  /** Still held: not answered, handed back or lost. */
  get current(): boolean {
    return this.phase !== JobPhase.ENDED;
  }

  /** The job as `threads`, /status and the page show it. */
  status(): NonNullable<SlotStatus['job']> {
    return {
      handle: this.job.handleText,
      unique: this.job.uniqueText,
      functionName: this.job.functionName,
      server: this.job.server,
      startedAt: this.startedAt,
      attempt: this.attempt,
      waitingToRetry: this.phase === JobPhase.WAITING,
    };
  }

  /** performance.now() by which the endpoint must have answered the current attempt. */
  get deadline(): number {
    return this.attemptStartedAt + this.maxRunningTimeMs;
  }

  /** The first attempt; the holder keeps this object before calling it. */
  start(): void {
    this.#decisions.begin(this);
  }

  /** The holder's socket for this job went down. */
  connectionLost(): void {
    this.#decisions.connectionLost(this);
  }

  /** The holder is stopping. */
  slotStopping(): void {
    this.#decisions.slotStopping(this);
  }

  /** Ends the attempt in flight now (its outcome follows `reason`'s code: a timeout, a shutdown). */
  abort(reason: Error): void {
    this.request?.abort(reason);
  }

  /** @internal The delivery starts an attempt. */
  beginAttempt(maxRunningTimeMs: number): void {
    this.phase = JobPhase.POSTING;
    // The first attempt starts as the job is assigned: one clock read for both.
    this.attemptStartedAt = this.attemptStartedAt === 0 ? this.assignedAt : performance.now();
    this.maxRunningTimeMs = maxRunningTimeMs;
    this.request = null;
    this.httpCounted = false;
  }

  /** @internal The delivery schedules the next attempt. */
  wait(delayMs: number, then: () => void): void {
    this.phase = JobPhase.WAITING;
    this.request = null;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      then();
    }, delayMs);
  }

  /** @internal The job leaves the delivery. */
  end(): void {
    this.phase = JobPhase.ENDED;
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
  }

  // ── JobListener (the runner, for the current attempt) ─────────────────────────────────────────────

  onJobOutcome(outcome: JobOutcome): void {
    this.#decisions.attemptEnded(this, outcome);
  }

  onJobProgress(update: ProgressUpdate): void {
    // Updates of an attempt that is later retried stay sent.
    if (this.phase === JobPhase.POSTING) this.holder.progress(this, update);
  }

  // ── ProgressReader (the holder's connection, while gearmand is behind on this job's progress) ──────

  pauseProgress(): void {
    this.request?.pauseBody();
  }

  resumeProgress(): void {
    this.request?.resumeBody();
  }
}

/**
 * The jobs a pool's slots hold, for the few decisions that look at all of them (a breaker opening, the
 * deadline watch): a list threaded through the jobs themselves, so a job joins and leaves it in
 * constant time without allocating.
 *
 * Not a Set: V8 re-hashes a Set's table every few dozen add/delete pairs and links the replaced table
 * to its successor (for iterators that may still walk it). Once one of those tables has been promoted
 * to the old generation, the chain keeps every later table, and every job in them, alive through the
 * young-generation collections until the next full one: at 10 slots 29 % of all the child allocated
 * was promoted (3 KB per job), against 1.3 % with no Set, and scavenges took 345 ms instead of 68 ms
 * per 40,000 jobs (--trace-gc, same build; docs/performance.md).
 */
export class HeldJobs {
  #first: DeliveredJob | null = null;
  #last: DeliveredJob | null = null;

  add(job: DeliveredJob): void {
    job.heldPrev = this.#last;
    job.heldNext = null;
    if (this.#last === null) this.#first = job;
    else this.#last.heldNext = job;
    this.#last = job;
  }

  /** Takes `job` out (a no-op when it is not in the list); its links are cleared so a dead job holds no live one. */
  delete(job: DeliveredJob): void {
    const prev = job.heldPrev;
    const next = job.heldNext;
    if (prev === null && next === null && this.#first !== job) return;
    if (prev === null) this.#first = next;
    else prev.heldNext = next;
    if (next === null) this.#last = prev;
    else next.heldPrev = prev;
    job.heldPrev = null;
    job.heldNext = null;
  }

  /** Every held job, oldest first; `visit` may take the job it is given out of the list. */
  forEach(visit: (job: DeliveredJob) => void): void {
    for (let job = this.#first; job !== null; ) {
      const next = job.heldNext;
      visit(job);
      job = next;
    }
  }
}
