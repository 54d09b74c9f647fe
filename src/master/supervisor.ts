/**
 * One pool's child process, kept alive (docs/architecture.md; pm2's God.js rules): fork, ready handshake
 * with a timeout, restart after an unexpected exit with backoff ×1.5 up to a cap, a crash-loop limit
 * that marks the pool failed instead of forking forever, and stop escalation IPC shutdown → SIGTERM →
 * SIGKILL. The supervisor never looks inside a job: it sends settings and asks for status.
 *
 * A running child sends a heartbeat every heartbeatIntervalMs. One silent for unresponsiveAfterMs
 * (SIGSTOP, a blocked event loop) is logged and reported as unresponsive; silent for killAfterMs it is
 * killed with SIGKILL (a stopped process does not act on SIGTERM) and restarted like any child that
 * died: backoff, crash-loop limit. gearmand re-queues the jobs of its dropped connections.
 *
 *   starting ──ready──► running ──exit──► backoff ──timer──► starting …
 *      │  init-failed / timeout / exit ─────┘   └─ too many unstable exits ──► failed
 *      └──────────── stop() ──► stopping ──exit──► stopped      (recycle: stopping ──exit──► starting)
 */
import type { Logger } from '../log/logger.js';
import { emitForwardedRecord } from '../log/bunyan-logger.js';
import type { ChildStatus, ChildToMaster, ShutdownMode } from '../ipc/messages.js';
import { sanitizeDelivery, sanitizeFlow, sanitizeServers, ShutdownMode as Mode } from '../ipc/messages.js';
import { sanitizeCounters } from '../ipc/counters.js';
import { sanitizeMetrics } from '../ipc/metrics.js';
import type { ChildSettings, PauseState } from '../ipc/settings.js';
import { heartbeatIntervalMs, noPause } from '../ipc/settings.js';
import type { ForkChild, ForkedChild } from './child-process.js';
import { IpcChannel } from './ipc-channel.js';
import { IpcError } from '../errors.js';
import { deliveryFigures, PoolTotalsLedger } from '../observe/pool-totals.js';
import type { ChildTally } from '../observe/pool-totals.js';

export const SupervisorState = {
  STARTING: 'starting',
  RUNNING: 'running',
  BACKOFF: 'backoff',
  STOPPING: 'stopping',
  STOPPED: 'stopped',
  FAILED: 'failed',
} as const;
export type SupervisorState = (typeof SupervisorState)[keyof typeof SupervisorState];

export interface SupervisorTiming {
  /** From fork to `ready`. */
  readyTimeoutMs: number;
  reconfigureTimeoutMs: number;
  statusTimeoutMs: number;
  /** First restart delay; each further unstable exit multiplies it by restartFactor up to restartDelayMaxMs. */
  restartDelayMs: number;
  restartDelayMaxMs: number;
  restartFactor: number;
  /** A child that ran at least this long before exiting was stable: backoff and crash count reset. */
  minUptimeMs: number;
  /** Consecutive unstable exits after which the pool is marked failed. */
  maxUnstableRestarts: number;
  /** Between the shutdown deadline and SIGTERM, and between SIGTERM and SIGKILL. */
  killGraceMs: number;
  /** How often a child sends `heartbeat` (also how often the supervisor checks for silence). */
  heartbeatIntervalMs: number;
  /** A child silent this long is logged and reported as unresponsive (--child_unresponsive_after). */
  unresponsiveAfterMs: number;
  /** A child silent this long is killed and restarted; 0 = never (--child_kill_after). */
  killAfterMs: number;
}

/** The defaults of --child_unresponsive_after and --child_kill_after, in milliseconds. */
export const DEFAULT_UNRESPONSIVE_AFTER_MS = 10_000;
export const DEFAULT_KILL_AFTER_MS = 60_000;

/** Timings derived from loop_timeout, which drives liveness checks and shutdown waits (docs/configuration.md, Options). */
export function supervisorTiming(
  loopTimeoutMs: number,
  { unresponsiveAfterMs = DEFAULT_UNRESPONSIVE_AFTER_MS, killAfterMs = DEFAULT_KILL_AFTER_MS }: { unresponsiveAfterMs?: number; killAfterMs?: number } = {},
): SupervisorTiming {
  return {
    // A child answers init before it connects anywhere; 10 s covers a loaded machine's module loading.
    readyTimeoutMs: Math.max(10_000, 2 * loopTimeoutMs),
    reconfigureTimeoutMs: Math.max(10_000, 2 * loopTimeoutMs),
    // The status port must answer promptly whatever loop_timeout is; a child that cannot reply to a
    // status query within a second is stuck, and is reported as such.
    statusTimeoutMs: 1000,
    restartDelayMs: 250,
    restartDelayMaxMs: 15_000,
    restartFactor: 1.5,
    minUptimeMs: 10_000,
    maxUnstableRestarts: 10,
    killGraceMs: Math.max(250, Math.min(loopTimeoutMs / 2, 5000)),
    heartbeatIntervalMs: heartbeatIntervalMs(loopTimeoutMs, unresponsiveAfterMs),
    unresponsiveAfterMs,
    killAfterMs,
  };
}

export type StatusResult = { ok: true; status: ChildStatus } | { ok: false; reason: string };

/**
 * What became of a pause handed to the supervisor: the child applied it (`running`: the jobs it holds,
 * by function; `settled`: see pool-pause.ts), no child runs now (the next one starts with it), or the
 * child did not confirm it.
 */
export type PauseResult =
  | { kind: 'applied'; running: Record<string, number>; settled: boolean }
  | { kind: 'later'; state: SupervisorState }
  | { kind: 'failed'; reason: string };

export interface SupervisorOptions {
  settings: ChildSettings;
  fork: ForkChild;
  /** The master's logger: supervisor events and forwarded child records both go here. */
  logger: Logger;
  timing: SupervisorTiming;
  /**
   * Where the children's figures and the restarts are recorded. The master gives every supervisor one
   * ledger, so a pool's totals outlive its supervisor (scaled to zero and back, removed); by default
   * the supervisor keeps one of its own.
   */
  totals?: PoolTotalsLedger;
  /** What an operator paused in the pool (the master's PauseBook); every child is started with it. */
  pause?: PauseState;
}

/** One child process's lifetime. */
interface Incarnation {
  child: ForkedChild;
  channel: IpcChannel;
  spawnedAt: number;
  exited: boolean;
  /** Resolved by the child's `hello`: only then is it listening, and may be sent `init`. */
  hello: Promise<void>;
  /** Its counters, metrics and breaker openings in the pool's totals. */
  tally: ChildTally;
  /** Date.now() of the last heartbeat (of `ready` before the first one). */
  lastHeartbeatAt: number;
  /** The last heartbeat before a silence of unresponsiveAfterMs; null while the child beats. */
  unresponsiveSince: number | null;
  /** Checks for silence from `ready` until the exit. */
  watch: NodeJS.Timeout | null;
  killedForSilence: boolean;
}

export class PoolSupervisor {
  readonly name: string;
  readonly #fork: ForkChild;
  readonly #root: Logger;
  readonly #log: Logger;
  readonly #timing: SupervisorTiming;
  readonly #totals: PoolTotalsLedger;
  #settings: ChildSettings;
  /** Sent with every `init` and `reconfigure`, so a restarted child comes back paused. */
  #pause: PauseState;
  #state: SupervisorState = SupervisorState.STOPPED;
  #current: Incarnation | null = null;
  #restartTimer: NodeJS.Timeout | null = null;
  #restartDelay: number;
  #unstableExits = 0;
  #restarts = 0;
  #stopMode: ShutdownMode | null = null;
  #stopDeadlineAt = Infinity;
  #recycleAfterStop = false;
  #escalation: NodeJS.Timeout[] = [];
  #stopWaiters: Array<() => void> = [];
  #settleWaiters: Array<() => void> = [];
  #failReason: string | null = null;

  constructor(options: SupervisorOptions) {
    this.name = options.settings.pool.name;
    this.#settings = options.settings;
    this.#pause = options.pause ?? noPause();
    this.#fork = options.fork;
    this.#root = options.logger;
    this.#log = options.logger.child({ component: 'supervisor', pool: this.name });
    this.#timing = options.timing;
    this.#totals = options.totals ?? new PoolTotalsLedger();
    this.#restartDelay = options.timing.restartDelayMs;
  }

  get state(): SupervisorState {
    return this.#state;
  }

  get settings(): ChildSettings {
    return this.#settings;
  }

  get pid(): number | null {
    return this.#current !== null && !this.#current.exited ? this.#current.child.pid : null;
  }

  /** Times a child was forked again after an unexpected exit. */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * Date.now() of the live child's last heartbeat when it has been silent for unresponsiveAfterMs since
   * (stopped, or its event loop blocked); null while it beats, and when there is no live child.
   */
  get unresponsiveSince(): number | null {
    const current = this.#current;
    return current === null || current.exited ? null : current.unresponsiveSince;
  }

  /** Why the pool was marked failed, while it is. */
  get failReason(): string | null {
    return this.#failReason;
  }

  /** Forks the child; resolves once it is ready, or has failed to start (the restart is then scheduled). */
  start(): Promise<void> {
    if (this.#state !== SupervisorState.STOPPED) return this.#settled();
    this.#spawn();
    return this.#settled();
  }

  /** Gives a failed pool a fresh start (on SIGHUP, or when its config changes). */
  retry(): Promise<void> {
    if (this.#state !== SupervisorState.FAILED) return this.#settled();
    this.#log.info({ event: 'retry' }, `pool ${this.name}: retrying after crash loop`);
    this.#unstableExits = 0;
    this.#restartDelay = this.#timing.restartDelayMs;
    this.#failReason = null;
    this.#spawn();
    return this.#settled();
  }

  /**
   * Applies new settings in place (the child adds, drains or replaces slots without dropping the
   * pool to zero). A child that refuses or does not answer is replaced by a fresh one with the new
   * settings. A child that is not running picks the settings up when it next starts.
   */
  async reconfigure(settings: ChildSettings): Promise<void> {
    this.#settings = settings;
    if (this.#state === SupervisorState.FAILED) {
      await this.retry();
      return;
    }
    if (this.#state === SupervisorState.STARTING) {
      // The child is being initialised with the old settings: let it finish, then send the new ones.
      await this.#settled();
    }
    const current = this.#current;
    if (this.#state !== SupervisorState.RUNNING || current === null) return;
    let problem: string;
    try {
      const reply = await current.channel.request({ type: 'reconfigure', settings: this.#childSettings(settings) }, this.#timing.reconfigureTimeoutMs);
      if (reply.type === 'reconfigured') return;
      problem = reply.type === 'reconfigure-failed' ? `${reply.error.code}: ${reply.error.message}` : `unexpected reply ${reply.type}`;
    } catch (error) {
      problem = (error as Error).message;
    }
    if (this.#current !== current || this.#state !== SupervisorState.RUNNING) return;
    this.#log.error({ event: 'reconfigure-failed', problem }, `pool ${this.name}: reconfigure failed (${problem}); replacing the child`);
    this.#recycle();
  }

  /** Keeps `pause` for the next `init` or `reconfigure` without telling a running child (a reload pruned it). */
  notePause(pause: PauseState): void {
    this.#pause = pause;
  }

  /** Keeps `pause` for every later child, and has a running child apply it now. Never throws. */
  async applyPause(pause: PauseState): Promise<PauseResult> {
    this.#pause = pause;
    // A child being initialised may have been sent the old pause: wait for its answer, then tell it.
    if (this.#state === SupervisorState.STARTING) await this.#settled();
    const current = this.#current;
    if (this.#state !== SupervisorState.RUNNING || current === null || current.exited) return { kind: 'later', state: this.#state };
    try {
      const reply = await current.channel.request({ type: 'set-pause', pause }, this.#timing.reconfigureTimeoutMs);
      if (reply.type === 'pause-set') return { kind: 'applied', running: sanitizeRunning(reply.running), settled: reply.settled === true };
      return { kind: 'failed', reason: reply.type === 'pause-failed' ? `${reply.error.code}: ${reply.error.message}` : `unexpected reply ${reply.type}` };
    } catch (error) {
      return { kind: 'failed', reason: (error as Error).message };
    }
  }

  /** The settings a child is sent: the pool's, with the pause in force now. */
  #childSettings(settings: ChildSettings = this.#settings): ChildSettings {
    return { ...settings, pause: this.#pause };
  }

  /** Asks the child for its slots and counters. Never throws; a silent child is reported, not waited on. */
  async status(): Promise<StatusResult> {
    const current = this.#current;
    if (current === null || current.exited) return { ok: false, reason: `no child (${this.#state})` };
    if (this.#state === SupervisorState.STARTING) return { ok: false, reason: 'child is starting' };
    try {
      const reply = await current.channel.request({ type: 'status' }, this.#timing.statusTimeoutMs);
      if (reply.type !== 'status-reply') return { ok: false, reason: `unexpected reply ${reply.type}` };
      const delivery = sanitizeDelivery(reply.status.delivery);
      const flow = sanitizeFlow(reply.status.flow);
      current.tally.report({
        counters: sanitizeCounters(reply.status.counters),
        metrics: sanitizeMetrics(reply.status.metrics),
        ...deliveryFigures(delivery),
      });
      return { ok: true, status: { ...reply.status, delivery: delivery ?? undefined, flow: flow ?? undefined, servers: sanitizeServers(reply.status.servers) } };
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
  }

  /**
   * Asks the child to reopen its dead-letter files (USR2) and resolves with their paths. Never throws;
   * a child that is not running has nothing open worth reopening.
   */
  async reopenFiles(): Promise<{ ok: true; files: string[] } | { ok: false; reason: string }> {
    const current = this.#current;
    if (current === null || current.exited || this.#state !== SupervisorState.RUNNING) return { ok: true, files: [] };
    try {
      // The child first finishes the letters being fsynced: allow a slow disk the reconfigure time.
      const reply = await current.channel.request({ type: 'reopen-files' }, this.#timing.reconfigureTimeoutMs);
      if (reply.type !== 'files-reopened') return { ok: false, reason: `unexpected reply ${reply.type}` };
      return { ok: true, files: Array.isArray(reply.files) ? reply.files.map(String) : [] };
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
  }

  /**
   * Stops the child: IPC shutdown with `deadlineMs` for running jobs, then SIGTERM after killGraceMs more,
   * then SIGKILL after another killGraceMs. A hard stop during a graceful one upgrades it. Resolves once the
   * child has exited (or at once when there is none).
   */
  stop(mode: ShutdownMode, deadlineMs: number): Promise<void> {
    this.#recycleAfterStop = false;
    if (this.#restartTimer !== null) {
      clearTimeout(this.#restartTimer);
      this.#restartTimer = null;
    }
    const current = this.#current;
    if (current === null || current.exited) {
      if (this.#state !== SupervisorState.STOPPED) this.#setState(SupervisorState.STOPPED);
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.#stopWaiters.push(resolve));
    const at = Date.now() + deadlineMs;
    if (this.#state === SupervisorState.STOPPING) {
      // Already stopping: only a hard stop or an earlier deadline (a daemon shutdown overtaking a pool's
      // max_running_time drain) is worth telling the child again.
      const upgrade = mode === Mode.HARD && this.#stopMode !== Mode.HARD;
      if (!upgrade && at >= this.#stopDeadlineAt) return done;
      deadlineMs = Math.max(0, Math.min(deadlineMs, this.#stopDeadlineAt - Date.now()));
      if (this.#stopMode === Mode.HARD) mode = Mode.HARD;
    }
    this.#setState(SupervisorState.STOPPING);
    this.#stopMode = mode;
    this.#stopDeadlineAt = Date.now() + deadlineMs;
    this.#log.info({ event: 'stop', mode, deadlineMs, childPid: current.child.pid }, `pool ${this.name}: stopping child (${mode})`);
    current.channel.request({ type: 'shutdown', mode, deadlineMs }, deadlineMs + 2 * this.#timing.killGraceMs).then(
      (reply) => this.#takeFinalTotals(current, reply),
      () => {
        // No answer is fine: the escalation below stops the child either way.
      },
    );
    this.#armEscalation(current, deadlineMs);
    return done;
  }

  /** Resolves the next time the supervisor is not STARTING. */
  #settled(): Promise<void> {
    if (this.#state !== SupervisorState.STARTING) return Promise.resolve();
    return new Promise((resolve) => this.#settleWaiters.push(resolve));
  }

  #setState(state: SupervisorState): void {
    this.#state = state;
    if (state !== SupervisorState.STARTING) {
      const waiters = this.#settleWaiters;
      this.#settleWaiters = [];
      for (const resolve of waiters) resolve();
    }
    if (state === SupervisorState.STOPPED) {
      const waiters = this.#stopWaiters;
      this.#stopWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  #spawn(): void {
    this.#setState(SupervisorState.STARTING);
    this.#stopMode = null;
    this.#stopDeadlineAt = Infinity;
    let child: ForkedChild;
    try {
      child = this.#fork(this.name);
    } catch (error) {
      // fork() throws only for things like EAGAIN; treat it like a child that died at once.
      this.#log.error({ event: 'fork-failed', err: error }, `pool ${this.name}: cannot fork: ${(error as Error).message}`);
      this.#current = null;
      this.#afterUnexpectedExit(0, 'fork failed');
      return;
    }
    const channel = new IpcChannel(child.endpoint, `child ${this.name} (pid ${child.pid})`);
    let helloReceived = (): void => {};
    const hello = new Promise<void>((resolve) => {
      helloReceived = resolve;
    });
    const now = Date.now();
    const tally = this.#totals.openChild(this.name);
    const incarnation: Incarnation = { child, channel, spawnedAt: now, exited: false, hello, tally, lastHeartbeatAt: now, unresponsiveSince: null, watch: null, killedForSilence: false };
    this.#current = incarnation;
    channel.onNotice((notice) => {
      if (notice.type === 'log') emitForwardedRecord(this.#root, notice.record);
      else if (notice.type === 'heartbeat') this.#onHeartbeat(incarnation);
      else if (notice.type === 'hello') helloReceived();
    });
    channel.onInvalid((message) => {
      this.#log.warn({ event: 'ipc-invalid', message: String(JSON.stringify(message)).slice(0, 200) }, `pool ${this.name}: ignored a malformed IPC message`);
    });
    child.onError((error) => {
      this.#log.warn({ event: 'child-error', err: error }, `pool ${this.name}: child process error: ${error.message}`);
      if (child.pid === -1) this.#onExit(incarnation, null, null);
    });
    child.onExit((code, signal) => this.#onExit(incarnation, code, signal));
    this.#log.info({ event: 'fork', childPid: child.pid }, `pool ${this.name}: forked child ${child.pid}`);
    void this.#handshake(incarnation);
  }

  async #handshake(incarnation: Incarnation): Promise<void> {
    let problem: string;
    try {
      const deadline = Date.now() + this.#timing.readyTimeoutMs;
      await withTimeout(incarnation.hello, this.#timing.readyTimeoutMs, `no hello within ${this.#timing.readyTimeoutMs} ms`);
      const reply = await incarnation.channel.request({ type: 'init', settings: this.#childSettings() }, Math.max(1, deadline - Date.now()));
      if (reply.type === 'ready') {
        if (this.#current === incarnation && this.#state === SupervisorState.STARTING) {
          this.#setState(SupervisorState.RUNNING);
          this.#watchHeartbeat(incarnation);
          this.#log.info({ event: 'ready', childPid: incarnation.child.pid }, `pool ${this.name}: child ${incarnation.child.pid} ready`);
        }
        return;
      }
      problem = reply.type === 'init-failed' ? `${reply.error.code}: ${reply.error.message}` : `unexpected reply ${reply.type}`;
    } catch (error) {
      problem = (error as Error).message;
    }
    if (this.#current !== incarnation || incarnation.exited || this.#state !== SupervisorState.STARTING) return;
    this.#log.error({ event: 'init-failed', problem, childPid: incarnation.child.pid }, `pool ${this.name}: child failed to start: ${problem}`);
    // Its exit (forced now) goes through the ordinary crash path: backoff, crash-loop limit.
    incarnation.child.kill('SIGKILL');
  }

  /**
   * Checks the child's heartbeat every heartbeatIntervalMs until it exits (a stopping child is watched
   * too: a drain can take max_running_time, and a wedged child should not hold it that long).
   */
  #watchHeartbeat(incarnation: Incarnation): void {
    const every = this.#timing.heartbeatIntervalMs;
    incarnation.lastHeartbeatAt = Date.now();
    let lastCheck = incarnation.lastHeartbeatAt;
    incarnation.watch = setInterval(() => {
      const now = Date.now();
      // After a stall of the master's own event loop this check can run before the beats waiting in
      // the IPC pipe are read: the time the master was not looking does not count against the child.
      const stalled = now - lastCheck - every;
      if (stalled > every) incarnation.lastHeartbeatAt += stalled;
      lastCheck = now;
      this.#checkHeartbeat(incarnation, now);
    }, every);
    incarnation.watch.unref();
  }

  #checkHeartbeat(incarnation: Incarnation, now: number): void {
    if (incarnation.exited) return;
    const silentMs = now - incarnation.lastHeartbeatAt;
    const childPid = incarnation.child.pid;
    if (incarnation.unresponsiveSince === null && silentMs >= this.#timing.unresponsiveAfterMs) {
      incarnation.unresponsiveSince = incarnation.lastHeartbeatAt;
      const killIn = this.#timing.killAfterMs === 0 ? 'it is not killed (--child_kill_after 0)' : `it is killed after ${this.#timing.killAfterMs} ms of silence`;
      this.#log.warn(
        { event: 'child-unresponsive', childPid, silentMs, killAfterMs: this.#timing.killAfterMs },
        `pool ${this.name}: child ${childPid} sent no heartbeat for ${silentMs} ms (stopped, or its event loop is blocked); ${killIn}`,
      );
    }
    if (this.#timing.killAfterMs > 0 && silentMs >= this.#timing.killAfterMs && !incarnation.killedForSilence) {
      incarnation.killedForSilence = true;
      this.#log.error(
        { event: 'child-unresponsive-kill', childPid, silentMs },
        `pool ${this.name}: child ${childPid} sent no heartbeat for ${silentMs} ms; killing it (SIGKILL): gearmand re-queues its running jobs`,
      );
      incarnation.child.kill('SIGKILL');
    }
  }

  #onHeartbeat(incarnation: Incarnation): void {
    const now = Date.now();
    if (incarnation.unresponsiveSince !== null && !incarnation.exited) {
      const silentMs = now - incarnation.unresponsiveSince;
      this.#log.info({ event: 'child-responding', childPid: incarnation.child.pid, silentMs }, `pool ${this.name}: child ${incarnation.child.pid} is responding again after ${silentMs} ms of silence`);
      incarnation.unresponsiveSince = null;
    }
    incarnation.lastHeartbeatAt = now;
  }

  #armEscalation(incarnation: Incarnation, deadlineMs: number): void {
    this.#clearEscalation();
    const grace = this.#timing.killGraceMs;
    this.#escalation.push(
      setTimeout(() => {
        if (incarnation.exited) return;
        this.#log.warn({ event: 'sigterm', childPid: incarnation.child.pid }, `pool ${this.name}: child still running ${grace} ms after its deadline; sending SIGTERM`);
        incarnation.child.kill('SIGTERM');
      }, deadlineMs + grace),
      setTimeout(() => {
        if (incarnation.exited) return;
        this.#log.error({ event: 'sigkill', childPid: incarnation.child.pid }, `pool ${this.name}: child ignored SIGTERM; sending SIGKILL`);
        incarnation.child.kill('SIGKILL');
      }, deadlineMs + 2 * grace),
    );
  }

  #clearEscalation(): void {
    for (const timer of this.#escalation) clearTimeout(timer);
    this.#escalation = [];
  }

  /** Replaces a child that cannot take its new settings: drain it, then fork a fresh one at once. */
  #recycle(): void {
    const current = this.#current;
    if (current === null || current.exited) return;
    const deadlineMs = this.#settings.pool.maxRunningTimeMs;
    this.#setState(SupervisorState.STOPPING);
    this.#stopMode = Mode.GRACEFUL;
    this.#stopDeadlineAt = Date.now() + deadlineMs;
    this.#recycleAfterStop = true;
    current.channel.request({ type: 'shutdown', mode: Mode.GRACEFUL, deadlineMs }, deadlineMs + 2 * this.#timing.killGraceMs).then(
      (reply) => this.#takeFinalTotals(current, reply),
      () => {},
    );
    this.#armEscalation(current, deadlineMs);
  }

  /**
   * A `stopped` reply's counters and metrics are the child's last word: they replace the last poll's
   * (after the exit its tally is settled, and a late reply changes nothing).
   */
  #takeFinalTotals(incarnation: Incarnation, reply: ChildToMaster): void {
    if (reply.type !== 'stopped') return;
    incarnation.tally.report({
      ...(reply.counters === undefined ? {} : { counters: sanitizeCounters(reply.counters) }),
      ...(reply.metrics === undefined ? {} : { metrics: sanitizeMetrics(reply.metrics) }),
    });
  }

  #onExit(incarnation: Incarnation, code: number | null, signal: NodeJS.Signals | null): void {
    if (incarnation.exited) return;
    incarnation.exited = true;
    if (incarnation.watch !== null) clearInterval(incarnation.watch);
    incarnation.channel.close(`child exited (code ${code}, signal ${signal})`);
    incarnation.tally.settle();
    if (this.#current !== incarnation) return;
    this.#clearEscalation();
    const uptimeMs = Date.now() - incarnation.spawnedAt;
    const childPid = incarnation.child.pid;
    if (this.#state === SupervisorState.STOPPING) {
      this.#log.info({ event: 'stopped', childPid, code, signal }, `pool ${this.name}: child ${childPid} stopped (code ${code}, signal ${signal})`);
      if (this.#recycleAfterStop) {
        this.#recycleAfterStop = false;
        this.#spawn();
      } else {
        this.#setState(SupervisorState.STOPPED);
      }
      return;
    }
    this.#log.warn(
      { event: 'child-exit', childPid, code, signal, uptimeMs },
      `pool ${this.name}: child ${childPid} exited unexpectedly (code ${code}, signal ${signal}) after ${uptimeMs} ms`,
    );
    this.#afterUnexpectedExit(uptimeMs, `code ${code}, signal ${signal}`);
  }

  #afterUnexpectedExit(uptimeMs: number, how: string): void {
    if (uptimeMs >= this.#timing.minUptimeMs) {
      // A child that ran for a while and then died is not a crash loop: start over from the short delay.
      this.#unstableExits = 0;
      this.#restartDelay = this.#timing.restartDelayMs;
    }
    this.#unstableExits++;
    if (this.#unstableExits > this.#timing.maxUnstableRestarts) {
      this.#failReason = `crash loop: ${this.#unstableExits} exits within ${this.#timing.minUptimeMs} ms of starting, the last ${how}`;
      this.#setState(SupervisorState.FAILED);
      this.#log.error({ event: 'pool-failed', reason: this.#failReason }, `pool ${this.name} marked failed (${this.#failReason}); send SIGHUP or change its config to retry`);
      return;
    }
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(Math.round(this.#restartDelay * this.#timing.restartFactor), this.#timing.restartDelayMaxMs);
    this.#setState(SupervisorState.BACKOFF);
    this.#log.info({ event: 'restart-scheduled', delayMs: delay, attempt: this.#unstableExits }, `pool ${this.name}: restarting child in ${delay} ms`);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      if (this.#state !== SupervisorState.BACKOFF) return;
      this.#restarts++;
      this.#totals.restarted(this.name);
      this.#spawn();
    }, delay);
  }
}

/** A child's count of running jobs by function, as plain own properties of numbers. */
function sanitizeRunning(running: unknown): Record<string, number> {
  if (typeof running !== 'object' || running === null || Array.isArray(running)) return {};
  return Object.fromEntries(Object.entries(running as Record<string, unknown>).filter((entry): entry is [string, number] => Number.isSafeInteger(entry[1]) && (entry[1] as number) >= 0));
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IpcError(message)), ms);
    // A child that exited before its hello must not hold the master's event loop open.
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
