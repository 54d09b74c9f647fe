/**
 * One pool's slots inside its child process: start, reconfigure (SPEC §4), status, drain, destroy.
 *
 * - worker_count up → slots added; down → surplus slots stopped (idle ones first, newest first) with
 *   max_running_time to finish a running job.
 * - jobs_list, servers or loop_timeout changed → a new set of slots is started first; the old ones keep
 *   serving until the new ones are registered with every server (or loop_timeout passes), then they
 *   are stopped gracefully. The pool is never left at zero workers (original fault 6).
 * - URI, request_format, headers or max_running_time changed → only the HTTP side changes: new jobs use
 *   a new JobRunner, running jobs finish on the old one, and no Gearman connection drops. (Replacing
 *   slots would buy nothing and re-register every worker.)
 *
 * Counters and metrics are updated in one place (#record), from the outcome every job reports exactly once.
 */
import { ConfigError } from '../errors.js';
import { zeroCounters } from '../ipc/messages.js';
import type { ChildCounters, ChildSettings, ChildStatus, SlotStatus } from '../ipc/messages.js';
import type { Logger } from '../log.js';
import { FailureCause, JobRunner } from './job-runner.js';
import type { JobOutcome } from './job-runner.js';
import { HTTP_ERROR, HTTP_NONE, HTTP_TIMEOUT, JobMetrics, JobResult } from './metrics.js';
import { Slot } from './slot.js';
import type { SlotContext } from './slot.js';
import { WakeGroup } from './wake-group.js';

/** gearman_ret 14 re-queues per handle before the job is failed instead (SPEC §3). */
export const MAX_REQUEUES = 5;
/** Bound on the re-queue ledger: handles seen once and never again must not grow it forever. */
const REQUEUE_LEDGER_SIZE = 10_000;
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

/** Checks the shape of settings received over IPC; throws ConfigError naming every bad field. */
export function validateSettings(settings: unknown): ChildSettings {
  const problems: string[] = [];
  const bad = (where: string, expected: string): void => {
    problems.push(`settings.${where}: expected ${expected}`);
  };
  if (typeof settings !== 'object' || settings === null) throw new ConfigError(['settings: expected an object']);
  const s = settings as Record<string, unknown>;
  const pool = s.pool as Record<string, unknown> | undefined;
  if (typeof pool !== 'object' || pool === null) {
    bad('pool', 'an object');
  } else {
    if (typeof pool.name !== 'string' || pool.name === '') bad('pool.name', 'a non-empty string');
    try {
      const url = new URL(String(pool.jobProcessingUri));
      if (url.protocol !== 'http:' && url.protocol !== 'https:') bad('pool.jobProcessingUri', 'an http:// or https:// URL');
    } catch {
      bad('pool.jobProcessingUri', 'an http:// or https:// URL');
    }
    if (!Number.isInteger(pool.workerCount) || (pool.workerCount as number) < 0) bad('pool.workerCount', 'an integer >= 0');
    if (!Array.isArray(pool.jobsList) || !pool.jobsList.every((f) => typeof f === 'string' && f !== '')) {
      bad('pool.jobsList', 'an array of non-empty strings');
    }
    if (pool.requestFormat !== 'json' && pool.requestFormat !== 'multipart') bad('pool.requestFormat', '"json" or "multipart"');
    if (typeof pool.maxRunningTimeMs !== 'number' || !(pool.maxRunningTimeMs > 0)) bad('pool.maxRunningTimeMs', 'a number > 0');
    if (
      typeof pool.headers !== 'object' ||
      pool.headers === null ||
      !Object.values(pool.headers as object).every((v) => typeof v === 'string')
    ) {
      bad('pool.headers', 'an object of strings');
    }
  }
  if (
    !Array.isArray(s.servers) ||
    !s.servers.every(
      (server: unknown) =>
        typeof server === 'object' &&
        server !== null &&
        typeof (server as Record<string, unknown>).host === 'string' &&
        Number.isInteger((server as Record<string, unknown>).port) &&
        ((server as Record<string, unknown>).port as number) > 0 &&
        ((server as Record<string, unknown>).port as number) < 65536 &&
        typeof (server as Record<string, unknown>).label === 'string',
    )
  ) {
    bad('servers', 'an array of {host, port, label}');
  }
  if (typeof s.loopTimeoutMs !== 'number' || !(s.loopTimeoutMs > 0)) bad('loopTimeoutMs', 'a number > 0');
  if (typeof s.logLevel !== 'string') bad('logLevel', 'a bunyan level name');
  if (problems.length > 0) throw new ConfigError(problems);
  return settings as ChildSettings;
}

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
  readonly #counters: ChildCounters = zeroCounters();
  readonly #metrics = new JobMetrics();
  readonly #context: SlotContext;
  #drained: Promise<void> | null = null;

  constructor(options: WorkerPoolOptions) {
    this.#log = options.log;
    this.#pid = options.pid ?? process.pid;
    this.#maxResponseBytes = options.maxResponseBytes;
    const pool = this;
    this.#context = {
      get runner(): JobRunner {
        return pool.#runner as JobRunner;
      },
      allowRequeue: (server, handle) => this.#allowRequeue(server, handle),
      settleHandle: (server, handle) => {
        if (this.#requeues.size > 0) this.#requeues.delete(`${server}\0${handle}`);
      },
      record: (outcome, functionName, durationMs, httpStatus) => this.#record(outcome, functionName, durationMs, httpStatus),
    };
  }

  get state(): PoolState {
    return this.#state;
  }

  get settings(): ChildSettings | null {
    return this.#settings;
  }

  start(settings: ChildSettings): void {
    if (this.#state !== PoolState.IDLE) throw new Error(`WorkerPool.start called in state ${this.#state}`);
    validateSettings(settings);
    this.#settings = settings;
    this.#runner = this.#newRunner(settings);
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
    if (this.#state !== PoolState.RUNNING) throw new Error(`WorkerPool.reconfigure called in state ${this.#state}`);
    validateSettings(settings);
    const old = this.#settings as ChildSettings;
    this.#settings = settings;
    const runner = this.#runner as JobRunner;
    if (!sameHttpSide(old, settings) || settings.pool.workerCount > runner.connections) {
      this.#replaceRunner(settings);
    }
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
    return { pool: this.#settings?.pool.name ?? '', pid: this.#pid, slots, counters: { ...this.#counters }, metrics: this.#metrics.snapshot() };
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
    this.#drained = this.#whenStopped().then(async () => {
      await Promise.all([this.#runner?.close(), ...[...this.#oldRunners].map((r) => r.close())]);
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
      ...(this.#maxResponseBytes === undefined ? {} : { maxResponseBytes: this.#maxResponseBytes }),
    });
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
    if (this.#requeues.size >= REQUEUE_LEDGER_SIZE) {
      const oldest = this.#requeues.keys().next();
      if (oldest.done !== true) this.#requeues.delete(oldest.value);
    }
    this.#requeues.set(key, count);
    return true;
  }

  #record(outcome: JobOutcome, functionName: string, durationMs: number, httpStatus: number): void {
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
          counters.http_errors++;
          if (http === 0) http = HTTP_ERROR;
        } else if (outcome.cause === FailureCause.SHUTDOWN && http === 0) {
          http = HTTP_NONE;
        }
        break;
    }
    this.#metrics.record(functionName, result, durationMs / 1000, http);
  }
}

function slotNumber(id: string): number {
  return Number(id.slice(id.lastIndexOf('-') + 1));
}
