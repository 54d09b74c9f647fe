/**
 * The delivery of a pool's jobs (docs/architecture.md, One job): for every job a slot holds, the
 * attempts and the decision after each one — answer gearmand, retry after a backoff, hand the job back
 * to gearmand, or dead-letter it and then fail it. What spans jobs lives here too: the attempt ledger,
 * the circuit breaker's view of outcomes, the dead-letter file, the max_running_time deadline watch.
 *
 * It wraps the dispatch the way undici's retry and circuit-breaker interceptors wrap a dispatcher:
 * the runner (src/child/http) only makes one POST and reduces the answer to an outcome; the slot only
 * grabs and holds the job on the socket that assigned it (JobHolder); this module decides.
 */
import { DeliveryMode } from '../../config/types.js';
import type { DeliveryPolicy } from '../../config/types.js';
import { JobTimeoutError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { JobRunner } from '../http/job-runner.js';
import { FailureCause, TransientCause } from '../job.js';
import type { AnswerOutcome, FinalOutcome, Job, JobOutcome, TransientOutcome } from '../job.js';
import type { PoolStats } from '../pool-stats.js';
import { newJobTrace, traceFromWorkload, traceparentFor } from '../trace-context.js';
import type { JobTrace } from '../trace-context.js';
import { AttemptLedger, MAX_REQUEUES, jobKey } from './attempt-ledger.js';
import type { FailVerdict } from './attempt-ledger.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { DeadLetterSink } from './dead-letter-sink.js';
import { DeadlineWatch } from './deadline-watch.js';
import { logJobOutcome } from './job-log.js';
import { DeliveredJob, HeldJobs, JobPhase } from './delivered-job.js';
import type { DeliveryDecisions, JobHolder } from './delivered-job.js';
import type { FunctionBreakers } from './function-breakers.js';
import { retryDelayMs } from './retry-policy.js';

export { DeliveredJob, JobPhase };
export type { JobHolder };

/** The parts of a pool's settings the delivery reads; a reload may replace them between two attempts. */
export interface DeliverySettings {
  poolName: string;
  policy: DeliveryPolicy;
  /** trace_parent_field: the JSON workload member that may carry the job's upstream traceparent; null = none. */
  traceParentField: string | null;
}

/**
 * What the pool's flow control hears of each POST (the admission gate, docs/flow-control.md): called on
 * every attempt, so it must cost next to nothing.
 */
export interface AttemptFeedback {
  /** An attempt (a POST) starts; `startedAt` is its performance.now(). */
  attemptStarted(startedAt: number): void;
  /** An attempt started at `startedAt` ended; `ok` false for a transient outcome. */
  attemptEnded(startedAt: number, ok: boolean): void;
  /** A held job is POSTed again (it counts against the rate limit; it never waits for it). */
  retryStarted(): void;
}

export interface DeliveryOptions {
  settings: DeliverySettings;
  /** The pool's flow control: latency and errors of each attempt, and retries. */
  flow: AttemptFeedback;
  runner: JobRunner;
  /** The pool breaker: hears of failures that say the endpoint's host is unreachable. */
  breaker: CircuitBreaker;
  /** One breaker per function: hears of that function's other transient failures. */
  functions: FunctionBreakers;
  stats: PoolStats;
  log: Logger;
}

export class Delivery implements DeliveryDecisions {
  readonly #breaker: CircuitBreaker;
  readonly #flow: AttemptFeedback;
  readonly #functions: FunctionBreakers;
  readonly #stats: PoolStats;
  readonly #log: Logger;
  readonly #ledger = new AttemptLedger();
  /** Jobs held by slots, in any phase: the breaker hands back the waiting ones, the deadline watch scans the posting ones. */
  readonly #active = new HeldJobs();
  readonly #deadlines = new DeadlineWatch((now) => this.#expire(now));
  #settings: DeliverySettings;
  #runner: JobRunner;
  /** The pool's dead-letter file (delivery.dead_letter_file), opened on the first letter. */
  readonly #deadLetters: DeadLetterSink;

  constructor(options: DeliveryOptions) {
    this.#settings = options.settings;
    this.#runner = options.runner;
    this.#breaker = options.breaker;
    this.#flow = options.flow;
    this.#functions = options.functions;
    this.#stats = options.stats;
    this.#log = options.log;
    this.#deadLetters = new DeadLetterSink(options.log);
    this.#deadLetters.use(options.settings.policy.deadLetterFile);
  }

  /** The runner for new attempts; running ones finish on the runner they started on. */
  get runner(): JobRunner {
    return this.#runner;
  }

  set runner(runner: JobRunner) {
    this.#runner = runner;
  }

  /** A reload: the policy applies from each job's next decision; a new dead-letter path after the old one's pending letters. */
  update(settings: DeliverySettings): void {
    this.#settings = settings;
    this.#breaker.update(settings.policy);
    this.#functions.update(settings.policy);
    this.#deadLetters.use(settings.policy.deadLetterFile);
  }

  /**
   * A slot holds a new assignment: the job's delivery, not yet started (the slot keeps it before
   * start(), since an attempt may end synchronously).
   */
  accept(job: Job, holder: JobHolder, log: Logger): DeliveredJob {
    const earlier = this.#ledger.recall(job);
    const trace = earlier?.trace ?? this.#jobTrace(job);
    return new DeliveredJob(this, holder, job, earlier, trace, log);
  }

  /** @internal DeliveredJob.start(). */
  begin(delivered: DeliveredJob): void {
    this.#active.add(delivered);
    // Given up before a hand-back, only its dead letter missing: write it, never post the job again.
    if (delivered.verdict !== null) this.#conclude(delivered, delivered.verdict);
    else this.#startAttempt(delivered);
  }

  /** The pool breaker opened: jobs waiting for their next attempt go back to gearmand now. */
  onBreakerOpen(): void {
    this.#active.forEach((delivered) => {
      if (delivered.phase === JobPhase.WAITING) this.#handBack(delivered, 'the circuit breaker opened');
    });
  }

  /** A function's breaker opened: its jobs waiting for their next attempt go back to gearmand now. */
  onFunctionOpen(functionName: string): void {
    this.#active.forEach((delivered) => {
      if (delivered.phase === JobPhase.WAITING && delivered.job.functionName === functionName) this.#handBack(delivered, `the circuit breaker of ${functionName} opened`);
    });
  }

  /**
   * A job whose workload is over max_workload_bytes and was dropped unread: it fails at once, without
   * a request. Returns the outcome for the holder to send.
   */
  failUnread(server: string, handle: string, functionName: string, workloadBytes: number, maxWorkloadBytes: number): AnswerOutcome {
    const outcome: AnswerOutcome = { kind: 'fail', cause: FailureCause.WORKLOAD_LIMIT, reason: `workload of ${workloadBytes} bytes is over max_workload_bytes (${maxWorkloadBytes})` };
    this.#ledger.settle(server, handle);
    this.#stats.record(outcome, functionName, 0, 0, false);
    this.#log.warn({ function: functionName, handle, server, workloadBytes, maxWorkloadBytes, cause: outcome.cause, reason: outcome.reason }, 'job failed');
    return outcome;
  }

  /** Stops the deadline watch and closes the dead-letter file after its pending letters. */
  async close(): Promise<void> {
    this.#deadlines.close();
    await this.#deadLetters.close();
  }

  // ── one job ──────────────────────────────────────────────────────────────────────────────────────

  /** @internal Called by DeliveredJob, exactly once per attempt. */
  attemptEnded(delivered: DeliveredJob, outcome: JobOutcome): void {
    // A shutdown's abort says nothing about the endpoint; every other attempt that ended is a sample.
    const shutdown = outcome.kind === 'fail' && outcome.cause === FailureCause.SHUTDOWN;
    if (!shutdown) this.#flow.attemptEnded(delivered.attemptStartedAt, outcome.kind !== 'transient');
    if (!delivered.current || delivered.phase !== JobPhase.POSTING) return;
    if (outcome.kind === 'transient') {
      this.#onTransient(delivered, outcome);
      return;
    }
    // The endpoint answered: a run of transient outcomes ends.
    if (!shutdown) {
      this.#breaker.reachable();
      // A failure still needs its letter: the function counts as recovered once that is written too.
      if (outcome.kind !== 'fail' || !this.#deadLetters.enabled) this.#functions.reachable(delivered.job.functionName);
    }
    this.#conclude(delivered, outcome);
  }

  /** @internal The slot let go of the socket that assigned the job. */
  connectionLost(delivered: DeliveredJob): void {
    if (!delivered.current || delivered.phase !== JobPhase.WAITING) return;
    // The socket that holds the job is gone, so gearmand has re-queued it: nothing left to retry.
    this.#end(delivered);
    if (delivered.log.debug()) delivered.log.debug({ handle: delivered.job.handleText }, 'gearmand connection lost while waiting to retry; gearmand re-queued the job');
    delivered.holder.forget(delivered);
  }

  /** @internal The slot is stopping: a job waiting for its next attempt goes back to gearmand unfailed. */
  slotStopping(delivered: DeliveredJob): void {
    if (delivered.current && delivered.phase === JobPhase.WAITING) this.#handBack(delivered, 'the slot is stopping');
  }

  /** POSTs the job (again). The current runner: a reload between attempts takes effect at once. */
  #startAttempt(delivered: DeliveredJob): void {
    const runner = this.#runner;
    delivered.beginAttempt(runner.maxRunningTimeMs);
    this.#flow.attemptStarted(delivered.attemptStartedAt);
    // The job is marked posting before start(): the HTTP client may report a failure synchronously.
    // The job is its own AttemptInfo (attempt, firstAttemptAt): no object per attempt.
    const request = runner.start(delivered.job, delivered, delivered, traceparentFor(delivered.trace));
    if (delivered.phase === JobPhase.POSTING && delivered.current) {
      delivered.request = request;
      this.#deadlines.watch(delivered.deadline);
    }
  }

  /** The deadline watch fired: overdue attempts are aborted (a transient outcome); returns the next deadline. */
  #expire(now: number): number {
    let next = Infinity;
    this.#active.forEach((delivered) => {
      if (delivered.phase !== JobPhase.POSTING || delivered.request === null) return;
      const deadline = delivered.deadline;
      if (deadline <= now) delivered.request.abort(new JobTimeoutError(`no answer from the endpoint within max_running_time (${delivered.maxRunningTimeMs} ms)`));
      else if (deadline < next) next = deadline;
    });
    return next;
  }

  /**
   * An attempt ended without an answer the endpoint meant (or with a request to retry). The breaker
   * that guards what failed hears of it; then the job is given up (fail_fast, or its budget spent:
   * max_attempts and max_retry_duration count across hand-backs), handed back to gearmand (a breaker
   * tripped, the slot stopping, or a wait longer than a slot should be held), or retried in place.
   */
  #onTransient(delivered: DeliveredJob, outcome: TransientOutcome): void {
    const policy = this.#settings.policy;
    const fn = delivered.job.functionName;
    this.#stats.attemptFailed(outcome, delivered.request?.httpStatus ?? 0);
    delivered.httpCounted = true;
    const failCause = outcome.cause === TransientCause.TIMEOUT ? FailureCause.TIMEOUT : outcome.cause === TransientCause.ENDPOINT ? FailureCause.ENDPOINT : FailureCause.HTTP;
    const exception = outcome.exception === undefined ? {} : { exception: outcome.exception };
    if (policy.mode === DeliveryMode.FAIL_FAST) {
      this.#conclude(delivered, { kind: 'fail', cause: failCause, reason: outcome.reason, ...exception });
      return;
    }
    const asked = outcome.retryAfterMs === null ? null : Math.min(outcome.retryAfterMs, policy.maxRetryAfterMs);
    const key = jobKey(delivered.job);
    let probeFailed: boolean;
    if (outcome.cause === TransientCause.CONNECT) {
      // No answer at all: the endpoint's host, for every function of the pool.
      probeFailed = this.#breaker.transient(outcome.reason, key);
    } else {
      // The host answered (or is slow) for this function: its breaker, not the whole pool's.
      if (outcome.cause !== TransientCause.TIMEOUT) this.#breaker.reachable();
      probeFailed = this.#functions.transient(fn, outcome.reason, key, asked);
    }
    // A failed probe proves the outage still on, not that this job is bad: its attempt is not counted
    // (a long outage would otherwise spend the attempts of whichever job gearmand hands out first);
    // the time budget still is, so a job does not wait in gearmand past max_retry_duration.
    if (probeFailed) delivered.freeAttempts++;
    const spent = this.#spent(delivered, policy);
    if (spent !== null) {
      this.#conclude(delivered, { kind: 'fail', cause: failCause, reason: `gave up after ${spent}: ${outcome.reason}`, ...exception });
      return;
    }
    if (delivered.holder.stopping || this.#breaker.tripped || this.#functions.tripped(fn)) {
      this.#handBack(delivered, outcome.reason);
      return;
    }
    let delayMs = retryDelayMs(policy, delivered.attempt - delivered.freeAttempts, asked);
    // A wait past the budget's end is cut to it: the job gets its last attempt then, not a failure now.
    if (policy.maxRetryDurationMs > 0) delayMs = Math.min(delayMs, policy.maxRetryDurationMs - (Date.now() - delivered.firstAttemptAt));
    if (delayMs > policy.maxBackoffMs) {
      // Only an endpoint's Retry-After waits this long: no slot is held for it. The function pauses
      // (its jobs wait in gearmand, the pool's other functions go on) and this job goes back too.
      this.#functions.trip(fn, `the endpoint asked for a retry after ${Math.round(delayMs / 1000)} s: ${outcome.reason}`, delayMs);
      this.#handBack(delivered, outcome.reason);
      return;
    }
    delivered.wait(delayMs, () => this.#retry(delivered));
    this.#stats.count('retried');
    if (delivered.log.debug()) {
      delivered.log.debug({ function: fn, handle: delivered.job.handleText, trace_id: delivered.trace.traceId, attempt: delivered.attempt, retryInMs: delayMs, reason: outcome.reason }, 'attempt failed; retrying');
    }
  }

  /** What ended the job's retry budget ("5 attempts"), or null while it may be tried again. */
  #spent(delivered: DeliveredJob, policy: DeliveryPolicy): string | null {
    const counted = delivered.attempt - delivered.freeAttempts;
    if (counted >= policy.maxAttempts) return `${counted} attempts`;
    if (policy.maxRetryDurationMs > 0 && Date.now() - delivered.firstAttemptAt >= policy.maxRetryDurationMs) return `max_retry_duration (${policy.maxRetryDurationMs} ms)`;
    return null;
  }

  #retry(delivered: DeliveredJob): void {
    if (!delivered.current || delivered.phase !== JobPhase.WAITING) return;
    if (!delivered.holder.holds(delivered)) {
      // Lost with its socket: gearmand has re-queued it (connectionLost normally gets here first).
      this.#end(delivered);
      delivered.holder.forget(delivered);
      return;
    }
    if (delivered.holder.stopping || this.#breaker.tripped || this.#functions.tripped(delivered.job.functionName)) {
      this.#handBack(delivered, delivered.holder.stopping ? 'the slot is stopping' : 'the circuit breaker is open');
      return;
    }
    delivered.attempt++;
    this.#flow.retryStarted();
    this.#startAttempt(delivered);
  }

  /** The job's final outcome: WORK_COMPLETE, a re-queue, or (after its dead letter) WORK_FAIL. */
  #conclude(delivered: DeliveredJob, answer: FinalOutcome): void {
    let outcome = answer;
    const job = delivered.job;
    if (outcome.kind === 'requeue' && !this.#ledger.allowRequeue(job.server, job.handleText)) {
      outcome = { kind: 'fail', cause: FailureCause.REQUEUE_LIMIT, reason: `endpoint answered gearman_ret 14 again after the job was re-queued ${MAX_REQUEUES} times` };
    }
    if (outcome.kind === 'fail' && this.#deadLetters.enabled) this.#deadLetter(delivered, outcome);
    else this.#finish(delivered, outcome);
  }

  /** The letter first (fsynced), then WORK_FAIL; a letter that cannot be written sends the job back, its verdict kept. */
  #deadLetter(delivered: DeliveredJob, failed: FailVerdict): void {
    const job = delivered.job;
    delivered.phase = JobPhase.DEAD_LETTERING;
    this.#deadLetters.write({ ...job, pool: this.#settings.poolName, attempts: delivered.attempt, reason: failed.reason }).then(
      () => {
        this.#stats.count('dead_lettered');
        // The endpoint answered and the letter is on disk: the function works (a job that only needed its
        // letter may have been the probe of a function paused by a failing file).
        this.#functions.reachable(job.functionName);
        delivered.log.warn({ function: job.functionName, handle: job.handleText, unique: job.uniqueText, trace_id: delivered.trace.traceId, attempts: delivered.attempt, reason: failed.reason }, 'job written to the dead-letter file');
        this.#finish(delivered, failed);
      },
      (error: unknown) => {
        if (!delivered.current) return;
        // Failing the job now would lose it, posting it again would repeat its side effects: gearmand
        // keeps it, this child remembers the verdict, and its function pauses while the file fails.
        const pauseMs = this.#deadLetters.pauseMs(this.#settings.policy);
        this.#functions.trip(job.functionName, `the dead-letter file cannot be written: ${(error as Error).message}`, pauseMs);
        this.#handBack(delivered, 'the dead letter could not be written', failed);
      },
    );
  }

  /** Tells gearmand (through the holder), counts and logs the job's end. */
  #finish(delivered: DeliveredJob, final: FinalOutcome): void {
    if (!delivered.current) return;
    this.#end(delivered);
    const job = delivered.job;
    const durationMs = performance.now() - delivered.assignedAt;
    const httpStatus = delivered.request?.httpStatus ?? 0;
    if (final.kind === 'requeue') {
      // Allowed by #conclude: the job goes back to gearmand with the socket that holds it.
      this.#stats.record(final, job.functionName, durationMs, httpStatus, delivered.httpCounted);
      logJobOutcome(delivered, final, durationMs, 'requeued');
      delivered.holder.release(delivered, 'endpoint answered gearman_ret 14: dropping the connection so gearmand re-queues the job');
      return;
    }
    this.#ledger.settle(job.server, job.handleText);
    this.#stats.record(final, job.functionName, durationMs, httpStatus, delivered.httpCounted);
    const sent = delivered.holder.answer(delivered, final);
    logJobOutcome(delivered, final, durationMs, sent ? undefined : 'connection to gearmand lost; gearmand re-queues the job');
  }

  /**
   * Gives the job back to gearmand unfailed: the holder drops the socket that holds it (gearmand
   * re-queues what a lost worker held, as for gearman_ret 14), and the ledger keeps its attempts (and
   * its verdict, if it was given up) for its next assignment here. gearmand's --job-retries, if set,
   * counts these.
   */
  #handBack(delivered: DeliveredJob, reason: string, verdict?: FailVerdict): void {
    if (!delivered.current) return;
    this.#end(delivered);
    const fn = delivered.job.functionName;
    this.#ledger.remember(delivered.job, { attempt: delivered.attempt, freeAttempts: delivered.freeAttempts, firstAttemptAt: delivered.firstAttemptAt, trace: delivered.trace, ...(verdict === undefined ? {} : { verdict }) });
    this.#stats.count('handed_back');
    this.#breaker.handedBack();
    this.#functions.handedBack(fn);
    if (delivered.log.debug()) {
      delivered.log.debug({ function: fn, handle: delivered.job.handleText, trace_id: delivered.trace.traceId, attempt: delivered.attempt, reason }, 'job handed back to gearmand');
    }
    delivered.holder.release(delivered, `handing the job back to gearmand: ${reason}`);
  }

  /** The job leaves the delivery (answered, handed back or lost). */
  #end(delivered: DeliveredJob): void {
    delivered.end();
    this.#active.delete(delivered);
  }

  /** The upstream trace of the workload when the pool names a field for it, else a new trace. */
  #jobTrace(job: Job): JobTrace {
    const field = this.#settings.traceParentField;
    return (field === null ? null : traceFromWorkload(job.workload, field)) ?? newJobTrace();
  }
}
