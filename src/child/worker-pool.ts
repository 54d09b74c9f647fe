/**
 * One pool's slots inside its child process: start, reconfigure (docs/operations.md, Signals and reload), status, drain, destroy.
 *
 * - worker_count up → slots added; down → surplus slots stopped (idle ones first, newest first) with
 *   max_running_time to finish a running job.
 * - jobs_list, servers or loop_timeout changed → a new generation of slots replaces the old one
 *   (slot-generations.ts), which serves until the new one is registered.
 * - URI, request_format, headers or max_running_time changed → only the HTTP side changes: new jobs use
 *   a new JobRunner, running jobs finish on the old one, and no Gearman connection drops. (Replacing
 *   slots would buy nothing and re-register every worker.)
 *
 * What a change of each setting needs comes from one table (src/config/pool-changes.ts), the one the
 * master's reload diff reads. The pool owns its breaker, its admission gate and its Delivery for its
 * whole life, and wires each new slot to them; counters and metrics are PoolStats, fed by the delivery.
 */
import { InternalError } from '../errors.js';
import type { ChildStatus, SlotStatus } from '../ipc/messages.js';
import { PoolChange } from '../config/pool-changes.js';
import { noPause, validateSettings } from '../ipc/settings.js';
import type { ChildSettings, PauseState } from '../ipc/settings.js';
import type { Logger } from '../log/logger.js';
import { queryStatus } from '../admin-query.js';
import { AdmissionGate } from './admission-gate.js';
import { CircuitBreaker } from './delivery/circuit-breaker.js';
import { Delivery } from './delivery/delivery.js';
import { FunctionBreakers } from './delivery/function-breakers.js';
import { checkHealth } from './delivery/health-check.js';
import { JobRunner } from './http/job-runner.js';
import { PoolPause, runningByFunction, whenQuiet } from './pool-pause.js';
import { changesBetween, deliverySettings, flowSettings, slotNumber } from './pool-settings.js';
import { PoolStats } from './pool-stats.js';
import { Slot } from './slot.js';
import { SlotGenerations } from './slot-generations.js';
import { grabReplyTimeoutMs } from './gearman/gearman-connection.js';
import { ServerState } from './gearman/server-state.js';
import type { WakeGroup } from './gearman/wake-group.js';

/** The breaker's "how many jobs wait in gearmand" query: a hint for the log line, never worth a long wait. */
const QUEUE_QUERY_TIMEOUT_MS = 2000;

export interface WorkerPoolOptions {
  log: Logger;
  /** Slot ids are `<pid>-<n>`. */
  pid?: number;
}

export const PoolState = {
  IDLE: 'idle',
  RUNNING: 'running',
  DRAINING: 'draining',
  STOPPED: 'stopped',
} as const;
export type PoolState = (typeof PoolState)[keyof typeof PoolState];

export class WorkerPool {
  readonly #log: Logger;
  readonly #pid: number;
  readonly #stats = new PoolStats();
  #state: PoolState = PoolState.IDLE;
  #settings: ChildSettings | null = null;
  /** Built by start(): the pool's breaker, permits and delivery live as long as the pool. */
  #breaker: CircuitBreaker | null = null;
  #functionBreakers: FunctionBreakers | null = null;
  #gate: AdmissionGate | null = null;
  #delivery: Delivery | null = null;
  /** What an operator paused: the gate and the slots' abilities follow it. */
  readonly #pause = new PoolPause();
  readonly #slots = new SlotGenerations({
    newSlot: (wakeGroups) => this.#newSlot(this.#settings as ChildSettings, wakeGroups),
    retiring: (slot) => this.#functionBreakers?.slotGone(slot.id),
    current: () => ({ servers: this.#settings?.servers.length ?? 0, graceMs: this.#settings?.pool.maxRunningTimeMs ?? 0 }),
  });
  /** What the pool knows about each gearmand, by label: shared by every slot, across generations. */
  readonly #serverStates = new Map<string, ServerState>();
  /** Runners replaced by a reconfigure, until their last request settles. */
  readonly #oldRunners = new Set<JobRunner>();
  #nextSlot = 1;
  #ticker: NodeJS.Timeout | null = null;
  #drained: Promise<void> | null = null;

  constructor(options: WorkerPoolOptions) {
    this.#log = options.log;
    this.#pid = options.pid ?? process.pid;
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
    const breaker = this.#newBreaker(settings);
    this.#breaker = breaker;
    const gate = new AdmissionGate(breaker, flowSettings(settings));
    this.#gate = gate;
    this.#pause.set(settings.pause ?? noPause());
    gate.setPaused(this.#pause.pool);
    const functions = this.#newFunctionBreakers(settings);
    this.#functionBreakers = functions;
    this.#delivery = new Delivery({ settings: deliverySettings(settings), runner: this.#newRunner(settings), breaker, flow: gate, functions, stats: this.#stats, log: this.#log });
    this.#state = PoolState.RUNNING;
    this.#startTicker(settings.loopTimeoutMs);
    this.#slots.replace(settings.servers.length, settings.pool.workerCount, settings.loopTimeoutMs);
    const flow = this.#pause.status(settings.pool.jobsList);
    this.#log.info(
      { workers: settings.pool.workerCount, servers: settings.servers.map((s) => s.label), functions: settings.pool.jobsList, uri: settings.pool.jobProcessingUri, flow },
      flow.paused ? 'pool started, paused' : flow.pausedFunctions.length > 0 ? `pool started, ${flow.pausedFunctions.length} functions paused` : 'pool started',
    );
  }

  /**
   * A reload changed this pool: each change applied as the table of src/config/pool-changes.ts says
   * (new slots, a new runner, in place), worker_count by adding or stopping slots.
   */
  reconfigure(settings: ChildSettings): void {
    if (this.#state !== PoolState.RUNNING) throw new InternalError(`WorkerPool.reconfigure called in state ${this.#state}`);
    validateSettings(settings);
    const old = this.#settings as ChildSettings;
    const changes = changesBetween(old, settings);
    this.#settings = settings;
    const delivery = this.#delivery as Delivery;
    if (changes.has(PoolChange.RUNNER) || settings.pool.workerCount > delivery.runner.connections) this.#replaceRunner(settings);
    delivery.update(deliverySettings(settings));
    const breaker = this.#breaker as CircuitBreaker;
    if (old.pool.workerCount !== settings.pool.workerCount) {
      breaker.resize(settings.pool.workerCount);
      this.#functionBreakers?.resize(settings.pool.workerCount);
    }
    this.#gate?.configure(flowSettings(settings));
    if (old.loopTimeoutMs !== settings.loopTimeoutMs) this.#startTicker(settings.loopTimeoutMs);
    // The master sends the pause in force with every reconfigure (a reload may have dropped a paused
    // function). New slots register what it allows from their first connect; the slots kept are told below.
    const paused = settings.pause === undefined ? null : this.#pause.set(settings.pause);
    if (paused?.pool === true) this.#gate?.setPaused(this.#pause.pool);
    const grace = settings.pool.maxRunningTimeMs;
    if (changes.has(PoolChange.SLOTS)) {
      // The outgoing generation keeps the functions it has until it stops (within loop_timeout).
      this.#slots.replace(settings.servers.length, settings.pool.workerCount, settings.loopTimeoutMs);
      this.#log.info({ workers: settings.pool.workerCount, replacing: this.#slots.replacing }, 'pool reconfigured: replacing slots');
      return;
    }
    if (paused?.functions === true) this.#applyAbilities();
    const have = this.#slots.current.length;
    this.#slots.resize(settings.pool.workerCount, grace);
    this.#log.info({ workers: settings.pool.workerCount, previous: have }, 'pool reconfigured');
  }

  status(): ChildStatus {
    const slots: SlotStatus[] = this.#slots.statuses();
    slots.sort((a, b) => slotNumber(a.id) - slotNumber(b.id));
    const retrying = slots.filter((slot) => slot.job?.waitingToRetry === true).length;
    return {
      pool: this.#settings?.pool.name ?? '',
      pid: this.#pid,
      slots,
      servers: (this.#settings?.servers ?? []).map((server) => ({ server: server.label, suspectSince: this.#serverStates.get(server.label)?.suspectSince ?? null })),
      counters: this.#stats.counters(),
      metrics: this.#stats.metrics(),
      ...(this.#breaker === null ? {} : { delivery: { ...this.#breaker.status(retrying), functions: this.#functionBreakers?.status() ?? {} } }),
      ...(this.#gate === null || this.#settings === null ? {} : { flow: { ...this.#gate.status(), ...this.#pause.status(this.#settings.pool.jobsList) } }),
    };
  }

  /**
   * An operator paused or resumed the pool or some of its functions (pool-pause.ts): applied at once;
   * resolves once the pause is settled (or the grab-reply timeout passed), with the jobs the slots
   * hold, by function: those finish.
   */
  async setPause(pause: PauseState): Promise<{ running: Record<string, number>; settled: boolean }> {
    if (this.#state !== PoolState.RUNNING) throw new InternalError(`WorkerPool.setPause called in state ${this.#state}`);
    this.#takePause(pause);
    const settings = this.#settings as ChildSettings;
    // A hung server's GRAB is given up after the grab-reply timeout; a little more lets the slot notice.
    const quiet = (): boolean => this.#pause.settled(this.#slots.serving, this.#slots.current);
    const settled = await whenQuiet(quiet, grabReplyTimeoutMs(settings.loopTimeoutMs) + 2 * Math.min(1000, settings.loopTimeoutMs));
    return { running: runningByFunction(this.#slots.statuses()), settled };
  }

  /** @internal For tests: the current generation's slots. */
  get slots(): readonly Slot[] {
    return this.#slots.current;
  }

  /** @internal For tests: the current generation's wake groups. */
  get wakeGroups(): readonly WakeGroup[] {
    return this.#slots.wakeGroups;
  }

  /** Counters and metrics only (the `stopped` reply): no slot list. */
  totals(): Pick<ChildStatus, 'counters' | 'metrics'> {
    return { counters: this.#stats.counters(), metrics: this.#stats.metrics() };
  }

  /**
   * Graceful: every slot stops grabbing now; running jobs get `graceMs` to finish, then WORK_FAIL;
   * resolves when every connection is closed. Memoised; destroy() can still cut it short.
   */
  drain(graceMs: number): Promise<void> {
    if (this.#drained !== null) {
      // A second, shorter deadline (e.g. a hard stop's) still applies to the running jobs.
      this.#slots.hurry(graceMs);
      return this.#drained;
    }
    this.#state = PoolState.DRAINING;
    const stopped = this.#slots.stopAll(graceMs);
    this.#breaker?.close();
    this.#functionBreakers?.close();
    this.#gate?.clear();
    this.#drained = stopped.then(async () => {
      await Promise.all([this.#delivery?.runner.close(), ...[...this.#oldRunners].map((r) => r.close()), this.#delivery?.close()]);
      this.#stopTicker();
      this.#state = PoolState.STOPPED;
      this.#log.info({ counters: this.#stats.counters() }, 'pool stopped');
    });
    return this.#drained;
  }

  /** Hard: running jobs get WORK_FAIL now; resolves when every connection is closed. */
  destroy(): Promise<void> {
    const drained = this.drain(0);
    void this.#delivery?.runner.destroy();
    for (const runner of this.#oldRunners) void runner.destroy();
    return drained;
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  #takePause(pause: PauseState): void {
    const changed = this.#pause.set(pause);
    if (changed.pool) this.#gate?.setPaused(this.#pause.pool);
    if (changed.functions) this.#applyAbilities();
  }

  /** What slot `slotId` registers now: the pool's functions but those paused or whose breaker is open; `grouped` when every slot registers the same. */
  #abilitiesOf(slotId: string, functions: readonly string[]): { abilities: string[]; grouped: boolean } {
    const breakers = this.#functionBreakers;
    const abilities = this.#pause.allowed(breakers === null ? functions : breakers.abilitiesFor(slotId, functions));
    const common = breakers === null ? abilities.length : this.#pause.allowed(breakers.commonAbilities(functions)).length;
    return { abilities, grouped: abilities.length === common };
  }

  /** A started slot of the generation whose wake groups are `wakeGroups`, wired to the pool. */
  #newSlot(settings: ChildSettings, wakeGroups: readonly WakeGroup[]): Slot {
    const id = `${this.#pid}-${this.#nextSlot++}`;
    const slot = new Slot({
      id,
      servers: settings.servers,
      wakeGroups,
      serverStates: settings.servers.map((server) => this.#serverState(server.label)),
      onJobReturned: () => this.#stats.count('returned'),
      functions: settings.pool.jobsList,
      loopTimeoutMs: settings.loopTimeoutMs,
      maxWorkloadBytes: settings.pool.maxWorkloadBytes,
      gate: this.#gate as AdmissionGate,
      delivery: this.#delivery as Delivery,
      log: this.#log.child({ slot: id }),
    });
    // Registered from the first connect without the functions paused or whose breaker is open.
    const { abilities, grouped } = this.#abilitiesOf(id, settings.pool.jobsList);
    if (abilities.length !== settings.pool.jobsList.length) slot.setAbilities(abilities, grouped);
    slot.start();
    return slot;
  }

  #serverState(label: string): ServerState {
    let state = this.#serverStates.get(label);
    if (state === undefined) {
      state = new ServerState(label, this.#log);
      this.#serverStates.set(label, state);
    }
    return state;
  }

  #newRunner(settings: ChildSettings): JobRunner {
    return new JobRunner({
      uri: settings.pool.jobProcessingUri,
      format: settings.pool.requestFormat,
      headers: settings.pool.headers,
      maxRunningTimeMs: settings.pool.maxRunningTimeMs,
      connections: settings.pool.workerCount,
      keepAlive: settings.pool.keepAlive,
      maxResponseBytes: settings.pool.maxResponseBytes,
      retryOnStatus: settings.pool.delivery.retryOnStatus,
      signingKeys: settings.pool.signingKeys,
      bearerToken: settings.pool.bearerToken,
      tls: settings.pool.tls,
      onStalledBodies: (gapMs) =>
        this.#log.warn(
          { uri: settings.pool.jobProcessingUri, gapMs: Math.round(gapMs) },
          'endpoint responses arrive ~40 ms after their headers on reused connections: the endpoint likely writes headers and body separately without TCP_NODELAY (Nagle + delayed ACK). Fix the endpoint, or set "keep_alive": false for this pool',
        ),
    });
  }

  #newBreaker(settings: ChildSettings): CircuitBreaker {
    return new CircuitBreaker(
      settings.pool.delivery,
      settings.pool.workerCount,
      {
        onAdmit: () => this.#gate?.admitWaiting(),
        onOpen: () => this.#delivery?.onBreakerOpen(),
        checkHealth: (url) => checkHealth(url, Math.min(this.#settings?.pool.maxRunningTimeMs ?? 10_000, 10_000), this.#settings?.pool.tls ?? null),
        queuedJobs: () => this.#queuedJobs(),
      },
      this.#log,
    );
  }

  #newFunctionBreakers(settings: ChildSettings): FunctionBreakers {
    return new FunctionBreakers(
      settings.pool.delivery,
      settings.pool.workerCount,
      {
        onAbilitiesChanged: () => this.#applyAbilities(),
        onOpen: (fn) => this.#delivery?.onFunctionOpen(fn),
        onClose: () => this.#breaker?.ramp(),
        pickProbeSlot: () => (this.#slots.current.find((slot) => slot.idle && !slot.stopping) ?? this.#slots.current[0])?.id ?? null,
        checkHealth: (url) => checkHealth(url, Math.min(this.#settings?.pool.maxRunningTimeMs ?? 10_000, 10_000), this.#settings?.pool.tls ?? null),
        queuedJobs: (fn) => this.#queuedJobs([fn]),
      },
      this.#log,
    );
  }

  /**
   * Registers with gearmand what each slot may take now: the pool's functions but those an operator
   * paused or whose breaker is open (half-open: only on its probe slot). Connections defer a CANT_DO
   * while they hold a job of that function (gearmand would re-queue the job).
   */
  #applyAbilities(): void {
    const settings = this.#settings;
    if (settings === null) return;
    // Only the current generation: an outgoing one registers other functions and is about to stop.
    for (const slot of this.#slots.current) {
      const { abilities, grouped } = this.#abilitiesOf(slot.id, settings.pool.jobsList);
      slot.setAbilities(abilities, grouped);
    }
  }

  /** Jobs queued (not running) in gearmand for `only` (default: the pool's functions), summed over servers; null if none answered. */
  async #queuedJobs(only?: readonly string[]): Promise<number | null> {
    const settings = this.#settings;
    if (settings === null) return null;
    const functions = new Set(only ?? settings.pool.jobsList);
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
    const delivery = this.#delivery as Delivery;
    const old = delivery.runner;
    delivery.runner = this.#newRunner(settings);
    this.#oldRunners.add(old);
    void old.close().then(() => {
      this.#oldRunners.delete(old);
    });
  }

  #startTicker(loopTimeoutMs: number): void {
    this.#stopTicker();
    // One timer for every connection's liveness and unanswered GRABs; 8 ticks per loop_timeout and 4 per
    // grab-reply timeout bound the detection error.
    const tickMs = Math.min(1000, Math.max(10, Math.floor(Math.min(loopTimeoutMs / 8, grabReplyTimeoutMs(loopTimeoutMs) / 4))));
    this.#ticker = setInterval(() => {
      this.#slots.tick(Date.now());
    }, tickMs);
    this.#ticker.unref();
  }

  #stopTicker(): void {
    if (this.#ticker !== null) {
      clearInterval(this.#ticker);
      this.#ticker = null;
    }
  }
}

