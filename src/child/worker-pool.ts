/**
 * One pool's slots inside its child process: start, reconfigure (docs/operations.md, Signals and reload), status, drain, destroy.
 *
 * - worker_count up → slots added; down → surplus slots stopped (idle ones first, newest first) with
 *   max_running_time to finish a running job.
 * - jobs_list, servers or loop_timeout changed → a new set of slots is started first; the old ones keep
 *   serving until the new ones are registered with every server (or loop_timeout passes), then they
 *   are stopped gracefully. The pool is never left at zero workers (the original's could be, for a while).
 * - URI, request_format, headers or max_running_time changed → only the HTTP side changes: new jobs use
 *   a new JobRunner, running jobs finish on the old one, and no Gearman connection drops. (Replacing
 *   slots would buy nothing and re-register every worker.)
 *
 * Counters and metrics are updated in one place (#record), from the outcome every job reports exactly once.
 */
import { InternalError } from '../errors.js';
import type { ChildStatus, SlotStatus } from '../ipc/messages.js';
import { zeroCounters } from '../ipc/counters.js';
import type { ChildCounters } from '../ipc/counters.js';
import { validateSettings } from '../ipc/settings.js';
import type { ChildSettings } from '../ipc/settings.js';
import type { Logger } from '../log/logger.js';
import { queryStatus } from '../admin-query.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { DeadLetterFile } from './dead-letters.js';
import { checkHealth } from './health-check.js';
import { FailureCause, JobRunner, MAX_REQUEUES, TransientCause } from './job-runner.js';
import type { AttemptInfo, FinalOutcome, Job, JobOutcome } from './job-runner.js';
import { HTTP_ERROR, HTTP_NONE, HTTP_TIMEOUT, JobMetrics, JobResult } from './metrics.js';
import { Slot } from './slot.js';
import type { SlotContext } from './slot.js';
import { WakeGroup } from './wake-group.js';

/** Bound on the re-queue and redelivery ledgers: handles seen once and never again must not grow them forever. */
const LEDGER_SIZE = 10_000;
/** The breaker's "how many jobs wait in gearmand" query: a hint for the log line, never worth a long wait. */
const QUEUE_QUERY_TIMEOUT_MS = 2000;
/** How often a pending slot replacement checks whether the new slots are registered. */
const RETIRE_POLL_MS = 20;

export interface WorkerPoolOptions {
  log: Logger;
  /** Slot ids are `<pid>-<n>`. */
  pid?: number;
  /** Response body cap for the job runner (tests lower it). */
  maxResponseBytes?: number;
}

export const PoolState = {
  IDLE: 'idle',
  RUNNING: 'running',
  DRAINING: 'draining',
  STOPPED: 'stopped',
} as const;
export type PoolState = (typeof PoolState)[keyof typeof PoolState];

function sameGearmanSide(a: ChildSettings, b: ChildSettings): boolean {
  return (
    a.loopTimeoutMs === b.loopTimeoutMs &&
    a.pool.maxWorkloadBytes === b.pool.maxWorkloadBytes &&
    a.servers.length === b.servers.length &&
    a.servers.every((server, i) => server.host === b.servers[i]?.host && server.port === b.servers[i]?.port) &&
    a.pool.jobsList.length === b.pool.jobsList.length &&
    a.pool.jobsList.every((fn, i) => fn === b.pool.jobsList[i])
  );
}

function sameHttpSide(a: ChildSettings, b: ChildSettings): boolean {
  const ha = Object.entries(a.pool.headers);
  const hb = b.pool.headers;
  return (
    a.pool.jobProcessingUri === b.pool.jobProcessingUri &&
    a.pool.requestFormat === b.pool.requestFormat &&
    a.pool.maxRunningTimeMs === b.pool.maxRunningTimeMs &&
    a.pool.keepAlive === b.pool.keepAlive &&
    a.pool.delivery.retryOnStatus.join() === b.pool.delivery.retryOnStatus.join() &&
    a.pool.signingKeys.join() === b.pool.signingKeys.join() &&
    a.pool.bearerToken === b.pool.bearerToken &&
    JSON.stringify(a.pool.tls) === JSON.stringify(b.pool.tls) &&
    ha.length === Object.keys(hb).length &&
    ha.every(([name, value]) => hb[name] === value)
  );
}

export class WorkerPool {
  readonly #log: Logger;
  readonly #pid: number;
  readonly #maxResponseBytes: number | undefined;
  #state: PoolState = PoolState.IDLE;
  #settings: ChildSettings | null = null;
  #runner: JobRunner | null = null;
  /** The current generation's slots. */
  #slots: Slot[] = [];
  /** The current generation's wake groups, one per server (older generations keep theirs). */
  #wakeGroups: WakeGroup[] = [];
  /** Older generations' slots, still serving until the current ones are registered. */
  #outgoing: Slot[] = [];
  #retireTimer: NodeJS.Timeout | null = null;
  #retireDeadline = 0;
  /** Slots told to stop, until their connections are closed. */
  readonly #stopping = new Set<Slot>();
  /** Runners replaced by a reconfigure, until their last request settles. */
  readonly #oldRunners = new Set<JobRunner>();
  #nextSlot = 1;
  #ticker: NodeJS.Timeout | null = null;
  readonly #requeues = new Map<string, number>();
  /** Attempts of jobs this child handed back to gearmand, by server, handle and unique. */
  readonly #redeliveries = new Map<string, AttemptInfo>();
  #breaker: CircuitBreaker | null = null;
  /** The pool's dead-letter file (delivery.dead_letter_file), opened on the first letter. */
  #deadLetters: DeadLetterFile | null = null;
  /** Slots refused a permit by the breaker, kicked in order when permits free up. */
  readonly #blocked = new Set<Slot>();
  readonly #counters: ChildCounters = zeroCounters();
  readonly #metrics = new JobMetrics();
  readonly #context: SlotContext;
  #drained: Promise<void> | null = null;

  constructor(options: WorkerPoolOptions) {
    this.#log = options.log;
    this.#pid = options.pid ?? process.pid;
    this.#maxResponseBytes = options.maxResponseBytes;
    const pool = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the getter below cannot be an arrow
    this.#context = {
      get runner(): JobRunner {
        return pool.#runner as JobRunner;
      },
      allowRequeue: (server, handle) => this.#allowRequeue(server, handle),
      settleHandle: (server, handle) => {
        if (this.#requeues.size > 0) this.#requeues.delete(`${server}\0${handle}`);
      },
      get delivery() {
        return (pool.#settings as ChildSettings).pool.delivery;
      },
      get traceParentField() {
        return (pool.#settings as ChildSettings).pool.traceParentField;
      },
      get breaker(): CircuitBreaker {
        return pool.#breaker as CircuitBreaker;
      },
      blocked: (slot) => {
        this.#blocked.add(slot);
      },
      recall: (job) => {
        if (this.#redeliveries.size === 0) return undefined;
        const key = ledgerKey(job);
        const earlier = this.#redeliveries.get(key);
        if (earlier !== undefined) this.#redeliveries.delete(key);
        return earlier;
      },
      remember: (job, attempt) => boundedSet(this.#redeliveries, ledgerKey(job), attempt),
      deadLetter: (job, attempts, reason) =>
        this.#deadLetters === null ? null : this.#deadLetters.write({ ...job, pool: (this.#settings as ChildSettings).pool.name, attempts, reason }),
      attemptFailed: (outcome, httpStatus) => this.#attemptFailed(outcome, httpStatus),
      count: (event) => {
        this.#counters[`jobs_${event}`]++;
      },
      record: (outcome, functionName, durationMs, httpStatus, httpCounted) => this.#record(outcome, functionName, durationMs, httpStatus, httpCounted),
    };
  }

  get state(): PoolState {
    return this.#state;
  }

  get settings(): ChildSettings | null {
    return this.#settings;
  }

  start(settings: ChildSettings): void {
    if (this.#state !== PoolState.IDLE) throw new InternalError(`WorkerPool.start called in state ${this.#state}`);
    validateSettings(settings);
    this.#settings = settings;
    this.#runner = this.#newRunner(settings);
    this.#breaker = this.#newBreaker(settings);
    this.#useDeadLetterFile(settings.pool.delivery.deadLetterFile);
    this.#state = PoolState.RUNNING;
    this.#startTicker(settings.loopTimeoutMs);
    this.#wakeGroups = settings.servers.map(() => new WakeGroup());
    this.#slots = this.#newSlots(settings, settings.pool.workerCount);
    this.#log.info(
      { workers: settings.pool.workerCount, servers: settings.servers.map((s) => s.label), functions: settings.pool.jobsList, uri: settings.pool.jobProcessingUri },
      'pool started',
    );
  }

  reconfigure(settings: ChildSettings): void {
    if (this.#state !== PoolState.RUNNING) throw new InternalError(`WorkerPool.reconfigure called in state ${this.#state}`);
    validateSettings(settings);
    const old = this.#settings as ChildSettings;
    this.#settings = settings;
    const runner = this.#runner as JobRunner;
    if (!sameHttpSide(old, settings) || settings.pool.workerCount > runner.connections) {
      this.#replaceRunner(settings);
    }
    const breaker = this.#breaker as CircuitBreaker;
    breaker.update(settings.pool.delivery);
    this.#useDeadLetterFile(settings.pool.delivery.deadLetterFile);
    if (old.pool.workerCount !== settings.pool.workerCount) breaker.resize(settings.pool.workerCount);
    if (old.loopTimeoutMs !== settings.loopTimeoutMs) this.#startTicker(settings.loopTimeoutMs);
    const grace = settings.pool.maxRunningTimeMs;
    if (!sameGearmanSide(old, settings)) {
      this.#outgoing.push(...this.#slots);
      this.#wakeGroups = settings.servers.map(() => new WakeGroup());
      this.#slots = this.#newSlots(settings, settings.pool.workerCount);
      this.#retireDeadline = Date.now() + settings.loopTimeoutMs;
      this.#watchRetire();
      this.#log.info({ workers: settings.pool.workerCount, replacing: this.#outgoing.length }, 'pool reconfigured: replacing slots');
      return;
    }
    const have = this.#slots.length;
    const want = settings.pool.workerCount;
    if (want > have) {
      this.#slots.push(...this.#newSlots(settings, want - have));
    } else if (want < have) {
      // Idle slots first, then the newest: running jobs are disturbed as little as possible.
      const order = this.#slots.map((slot, index) => ({ slot, index })).sort((a, b) => Number(b.slot.idle) - Number(a.slot.idle) || b.index - a.index);
      const surplus = new Set(order.slice(0, have - want).map((o) => o.slot));
      this.#slots = this.#slots.filter((slot) => !surplus.has(slot));
      for (const slot of surplus) this.#retire(slot, grace);
    }
    this.#log.info({ workers: want, previous: have }, 'pool reconfigured');
  }

  status(): ChildStatus {
    const slots: SlotStatus[] = [];
    for (const slot of this.#outgoing) slots.push(slot.status());
    for (const slot of this.#slots) slots.push(slot.status());
    for (const slot of this.#stopping) slots.push(slot.status());
    slots.sort((a, b) => slotNumber(a.id) - slotNumber(b.id));
    const retrying = slots.filter((slot) => slot.job?.waitingToRetry === true).length;
    return {
      pool: this.#settings?.pool.name ?? '',
      pid: this.#pid,
      slots,
      counters: { ...this.#counters },
      metrics: this.#metrics.snapshot(),
      ...(this.#breaker === null ? {} : { delivery: this.#breaker.status(retrying) }),
    };
  }

  /** @internal For tests: the current generation's wake groups. */
  get wakeGroups(): readonly WakeGroup[] {
    return this.#wakeGroups;
  }

  /** Counters and metrics only (the `stopped` reply): no slot list. */
  totals(): Pick<ChildStatus, 'counters' | 'metrics'> {
    return { counters: { ...this.#counters }, metrics: this.#metrics.snapshot() };
  }

  /**
   * Graceful: every slot stops grabbing now; running jobs get `graceMs` to finish, then WORK_FAIL;
   * resolves when every connection is closed. Memoised; destroy() can still cut it short.
   */
  drain(graceMs: number): Promise<void> {
    if (this.#drained !== null) {
      // A second, shorter deadline (e.g. a hard stop's) still applies to the running jobs.
      for (const slot of this.#stopping) void slot.stop(graceMs);
      return this.#drained;
    }
    this.#state = PoolState.DRAINING;
    this.#stopRetireWatch();
    for (const slot of [...this.#outgoing, ...this.#slots]) this.#retire(slot, graceMs);
    this.#outgoing = [];
    this.#slots = [];
    this.#breaker?.close();
    this.#blocked.clear();
    this.#drained = this.#whenStopped().then(async () => {
      await Promise.all([this.#runner?.close(), ...[...this.#oldRunners].map((r) => r.close()), this.#deadLetters?.close()]);
      this.#stopTicker();
      this.#state = PoolState.STOPPED;
      this.#log.info({ counters: this.#counters }, 'pool stopped');
    });
    return this.#drained;
  }

  /** Hard: running jobs get WORK_FAIL now; resolves when every connection is closed. */
  destroy(): Promise<void> {
    const drained = this.drain(0);
    void this.#runner?.destroy();
    for (const runner of this.#oldRunners) void runner.destroy();
    return drained;
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  #newSlots(settings: ChildSettings, count: number): Slot[] {
    const slots: Slot[] = [];
    for (let i = 0; i < count; i++) {
      const id = `${this.#pid}-${this.#nextSlot++}`;
      const slot = new Slot({
        id,
        servers: settings.servers,
        wakeGroups: this.#wakeGroups,
        functions: settings.pool.jobsList,
        loopTimeoutMs: settings.loopTimeoutMs,
        maxWorkloadBytes: settings.pool.maxWorkloadBytes,
        context: this.#context,
        log: this.#log.child({ slot: id }),
      });
      slot.start();
      slots.push(slot);
    }
    return slots;
  }

  #retire(slot: Slot, graceMs: number): void {
    // A stopping slot takes no job: it no longer waits for a breaker permit.
    this.#blocked.delete(slot);
    this.#stopping.add(slot);
    void slot.stop(graceMs).then(() => {
      this.#stopping.delete(slot);
    });
  }

  #whenStopped(): Promise<void> {
    return Promise.all([...this.#stopping].map((slot) => slot.stopped)).then(() => undefined);
  }

  /** Retires the outgoing slots once the current generation is registered everywhere, or at the deadline. */
  #watchRetire(): void {
    if (this.#retireTimer !== null) return;
    const check = (): void => {
      const servers = this.#settings?.servers.length ?? 0;
      const ready = this.#slots.every((slot) => slot.connectedServers >= servers);
      if (ready || Date.now() >= this.#retireDeadline || this.#state !== PoolState.RUNNING) {
        this.#stopRetireWatch();
        const grace = this.#settings?.pool.maxRunningTimeMs ?? 0;
        const outgoing = this.#outgoing;
        this.#outgoing = [];
        for (const slot of outgoing) this.#retire(slot, grace);
      }
    };
    this.#retireTimer = setInterval(check, RETIRE_POLL_MS);
    check();
  }

  #stopRetireWatch(): void {
    if (this.#retireTimer !== null) {
      clearInterval(this.#retireTimer);
      this.#retireTimer = null;
    }
  }

  #newRunner(settings: ChildSettings): JobRunner {
    return new JobRunner({
      uri: settings.pool.jobProcessingUri,
      format: settings.pool.requestFormat,
      headers: settings.pool.headers,
      maxRunningTimeMs: settings.pool.maxRunningTimeMs,
      connections: settings.pool.workerCount,
      keepAlive: settings.pool.keepAlive,
      retryOnStatus: settings.pool.delivery.retryOnStatus,
      signingKeys: settings.pool.signingKeys,
      bearerToken: settings.pool.bearerToken,
      tls: settings.pool.tls,
      onStalledBodies: (gapMs) =>
        this.#log.warn(
          { uri: settings.pool.jobProcessingUri, gapMs: Math.round(gapMs) },
          'endpoint responses arrive ~40 ms after their headers on reused connections: the endpoint likely writes headers and body separately without TCP_NODELAY (Nagle + delayed ACK). Fix the endpoint, or set "keep_alive": false for this pool',
        ),
      ...(this.#maxResponseBytes === undefined ? {} : { maxResponseBytes: this.#maxResponseBytes }),
    });
  }

  /** Opens (lazily) the configured dead-letter file; a reload to another path closes the old one after its pending letters. */
  #useDeadLetterFile(path: string | null): void {
    if (this.#deadLetters?.path === path) return;
    void this.#deadLetters?.close();
    this.#deadLetters = path === null ? null : new DeadLetterFile(path);
  }

  #newBreaker(settings: ChildSettings): CircuitBreaker {
    return new CircuitBreaker(
      settings.pool.delivery,
      settings.pool.workerCount,
      {
        onAdmit: () => this.#admitBlocked(),
        onOpen: () => {
          for (const slot of this.#slots) slot.onBreakerOpen();
          for (const slot of this.#outgoing) slot.onBreakerOpen();
        },
        checkHealth: (url) => checkHealth(url, Math.min(this.#settings?.pool.maxRunningTimeMs ?? 10_000, 10_000), this.#settings?.pool.tls ?? null),
        queuedJobs: () => this.#queuedJobs(),
      },
      this.#log,
    );
  }

  /** Kicks refused slots, oldest first, while the breaker has permits. */
  #admitBlocked(): void {
    const breaker = this.#breaker;
    if (breaker === null) return;
    for (const slot of this.#blocked) {
      if (!breaker.admits) return;
      this.#blocked.delete(slot);
      slot.kick();
    }
  }

  /** Jobs queued (not running) in gearmand for this pool's functions, summed over servers; null if none answered. */
  async #queuedJobs(): Promise<number | null> {
    const settings = this.#settings;
    if (settings === null) return null;
    const functions = new Set(settings.pool.jobsList);
    const replies = await Promise.allSettled(settings.servers.map((server) => queryStatus(server, QUEUE_QUERY_TIMEOUT_MS)));
    let queued: number | null = null;
    for (const reply of replies) {
      if (reply.status !== 'fulfilled') continue;
      for (const fn of reply.value) if (functions.has(fn.function)) queued = (queued ?? 0) + Math.max(0, fn.total - fn.running);
    }
    return queued;
  }

  /** New jobs go to the new runner at once; the old one closes after its requests settle. */
  #replaceRunner(settings: ChildSettings): void {
    const old = this.#runner as JobRunner;
    this.#runner = this.#newRunner(settings);
    this.#oldRunners.add(old);
    void old.close().then(() => {
      this.#oldRunners.delete(old);
    });
  }

  #startTicker(loopTimeoutMs: number): void {
    this.#stopTicker();
    // One timer for every connection's liveness; 8 ticks per loop_timeout bound the detection error.
    const tickMs = Math.min(1000, Math.max(10, Math.floor(loopTimeoutMs / 8)));
    this.#ticker = setInterval(() => {
      const now = Date.now();
      for (const slot of this.#outgoing) slot.tick(now);
      for (const slot of this.#slots) slot.tick(now);
      for (const slot of this.#stopping) slot.tick(now);
    }, tickMs);
    this.#ticker.unref();
  }

  #stopTicker(): void {
    if (this.#ticker !== null) {
      clearInterval(this.#ticker);
      this.#ticker = null;
    }
  }

  #allowRequeue(server: string, handle: string): boolean {
    const key = `${server}\0${handle}`;
    const count = (this.#requeues.get(key) ?? 0) + 1;
    this.#requeues.delete(key);
    if (count > MAX_REQUEUES) return false;
    boundedSet(this.#requeues, key, count);
    return true;
  }


  /** A transient attempt: its HTTP outcome counts now, whatever becomes of the job. */
  #attemptFailed(outcome: JobOutcome & { kind: 'transient' }, httpStatus: number): void {
    this.#counters.http_errors++;
    this.#metrics.recordHttp(outcome.cause === TransientCause.TIMEOUT ? HTTP_TIMEOUT : httpStatus === 0 ? HTTP_ERROR : httpStatus);
  }

  #record(outcome: FinalOutcome, functionName: string, durationMs: number, httpStatus: number, httpCounted: boolean): void {
    const counters = this.#counters;
    let result: JobResult;
    // The HTTP code label: a status once headers arrived, unless max_running_time cut the exchange short;
    // a request we aborted ourselves (shutdown) never produced an HTTP outcome and is left out.
    let http = httpStatus;
    switch (outcome.kind) {
      case 'complete':
        counters.jobs_completed++;
        result = JobResult.COMPLETED;
        break;
      case 'requeue':
        counters.jobs_requeued++;
        result = JobResult.REQUEUED;
        break;
      case 'fail':
        counters.jobs_failed++;
        result = JobResult.FAILED;
        if (outcome.cause === FailureCause.TIMEOUT) {
          counters.jobs_timed_out++;
          result = JobResult.TIMED_OUT;
          http = HTTP_TIMEOUT;
        } else if (outcome.cause === FailureCause.HTTP) {
          if (!httpCounted) counters.http_errors++;
          if (http === 0) http = HTTP_ERROR;
        } else if (outcome.cause === FailureCause.SHUTDOWN && http === 0) {
          http = HTTP_NONE;
        }
        break;
    }
    this.#metrics.record(functionName, result, durationMs / 1000, httpCounted ? HTTP_NONE : http);
  }
}

function slotNumber(id: string): number {
  return Number(id.slice(id.lastIndexOf('-') + 1));
}

function ledgerKey(job: Job): string {
  return `${job.server}\0${job.handleText}\0${job.uniqueText}`;
}

/** Map.set with the oldest entry evicted at LEDGER_SIZE. */
function boundedSet<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= LEDGER_SIZE) {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  }
  map.set(key, value);
}
