/**
 * The master process (docs/architecture.md): owns the config, one supervisor per pool child, the status
 * port, the config watcher and the signals. It never touches a job or a packet.
 *
 *   starting ──► running ⇄ reloading
 *                   └──────────┴──► stopping ──► stopped
 *
 * Decisions where the spec is silent:
 * - SIGHUP also gives pools marked failed (crash loop) a fresh start; a file-change reload only retries
 *   the pools whose config changed.
 * - Reloads never overlap: one requested while another runs is done once after it.
 * - Stopping pools (removed, or worker_count → 0) get their pool's max_running_time to finish running
 *   jobs (docs/operations.md, Signals and reload); a daemon shutdown shortens that to its own deadline.
 * - Every status view (the status port's `threads`, `counters`, `gauges`; the exporter's /metrics,
 *   /status, /readyz) is rendered from one snapshot built by observe(): the children's status replies
 *   and the pools' totals (src/observe/pool-totals.ts, fed by the supervisors). A child that does not
 *   answer within the status timeout is logged as a warning and its slots are left out.
 * - Counters are cumulative since the master started, across child restarts, reloads, pool removal and
 *   scaling to zero and back; a crashed child's jobs since the last status poll are lost from them
 *   (gearmand re-queues those jobs anyway).
 * - Exit code 0 after a clean stop, graceful or hard; 1 when the shutdown deadline had to kill children.
 * - A status client must send its whole command line within loop_timeout (at least 1 s, at most 5 s) of
 *   connecting, or it is closed without a reply.
 * - With --exporter_addr, the exporter is bound next to the status port (before privileges drop) and
 *   closed with it; gearmand's queues are polled every loop_timeout (each poll bounded by loop_timeout,
 *   0.5–5 s) only while the exporter is on. Prometheus counters are the same cumulative sums as
 *   `counters`, kept across child restarts and pool removal.
 * - Shutdown budget: graceful = children get 4×loop_timeout for running jobs, then SIGTERM and SIGKILL
 *   one kill-grace (loop_timeout/2, 0.25–5 s) apart; the master's own deadline timer sits one second past
 *   that. Hard = children fail running jobs at once, the same escalation from 0, and the master's
 *   deadline at 2×loop_timeout (or just past the escalation, for tiny loop_timeouts).
 */
import { diffJobsConfig, isEmptyDiff } from '../config/diff.js';
import type { ConfigDiff } from '../config/diff.js';
import type { DaemonOptions, JobsConfig, PoolConfig } from '../config/types.js';
import type { ExporterWebConfig } from '../config/web-config.js';
import { ListenError, problemLines } from '../errors.js';
import { formatListenAddress } from '../config/listen-address.js';
import { versionText } from '../config/options.js';
import { secondsToMs } from '../config/seconds.js';
import type { ShutdownMode } from '../ipc/messages.js';
import { ShutdownMode as Mode } from '../ipc/messages.js';
import type { ChildSettings } from '../ipc/settings.js';
import type { Logger } from '../log/logger.js';
import { effectiveLevel } from '../log/bunyan-logger.js';
import type { ForkChild } from './child-process.js';
import { ConfigWatcher, fileSignature } from './config-watcher.js';
import { DeadLetterFolder } from './dead-letter-folder.js';
import { FlowControl } from './flow-control.js';
// The exporter (node:http, node:crypto, the status page) is loaded only when --exporter_addr asks for it.
import type { Exporter, ExporterSource } from '../observe/exporter.js';
import { GearmandPoller } from '../observe/gearmand-poller.js';
import type { GearmandScrape } from '../observe/gearmand-poller.js';
import type { Observation } from '../observe/observation.js';
import { PoolTotalsLedger } from '../observe/pool-totals.js';
import { statusCommands } from '../observe/status-text.js';
import { reopenLogFiles } from '../daemon/reopen-logs.js';
import { SignalRouter } from './signals.js';
import type { SignalSource } from './signals.js';
import { StatusServer } from '../observe/status-server.js';
import { PoolSupervisor, SupervisorState, supervisorTiming } from './supervisor.js';
import type { StatusResult, SupervisorTiming } from './supervisor.js';

export const MasterState = {
  STARTING: 'starting',
  RUNNING: 'running',
  RELOADING: 'reloading',
  STOPPING: 'stopping',
  STOPPED: 'stopped',
} as const;
export type MasterState = (typeof MasterState)[keyof typeof MasterState];

export const ReloadTrigger = {
  SIGNAL: 'signal',
  FILE: 'file',
} as const;
export type ReloadTrigger = (typeof ReloadTrigger)[keyof typeof ReloadTrigger];

export type ReloadOutcome = { ok: true; diff: ConfigDiff } | { ok: false; problems: string[] };

export interface MasterOptions {
  options: DaemonOptions;
  /** The jobs config, already validated (and fd-budget checked) by the caller. */
  config: JobsConfig;
  logger: Logger;
  fork: ForkChild;
  /** Reads and validates the jobs config file (throws ConfigError). */
  loadConfig: (file: string) => JobsConfig;
  /** Throws FdBudgetError when the config would not fit the open-file limit. */
  checkBudget: (config: JobsConfig) => void;
  /** Runs after the status port is bound and before any child is forked (privilege drop). */
  afterBind?: () => void;
  /** Where signals come from; null installs none (tests drive the master directly). */
  signals?: SignalSource | null;
  /** --web_config_file, already validated: the exporter's TLS and basic auth. */
  webConfig?: ExporterWebConfig | null;
  timing?: Partial<SupervisorTiming>;
}

const VERSION = versionText();

export class Master implements ExporterSource {
  readonly #opts: MasterOptions;
  readonly #log: Logger;
  readonly #loopMs: number;
  readonly #timing: SupervisorTiming;
  readonly #signals: SignalRouter | null;
  readonly #supervisors = new Map<string, PoolSupervisor>();
  /** Supervisors draining a pool that was removed or scaled to zero. */
  readonly #retiring = new Set<PoolSupervisor>();
  /**
   * Every pool's counters, metrics and restarts over every child it had, fed by its supervisors: a
   * removed pool, or one scaled to zero and back, keeps what it counted.
   */
  readonly #totals = new PoolTotalsLedger();
  readonly #deadLetterFolder: DeadLetterFolder;
  /** Operator pauses (the status port's pause, resume and drain) and where they are kept. */
  readonly #flow: FlowControl;
  readonly #startedAt = Date.now();
  #config: JobsConfig;
  #configLoadedAt = Date.now();
  #exporter: Exporter | null = null;
  #exporterAddress: { host: string; port: number } | null = null;
  #poller: GearmandPoller | null = null;
  #state: MasterState = MasterState.STARTING;
  #statusServer: StatusServer | null = null;
  #statusAddress: { host: string; port: number } | null = null;
  #watcher: ConfigWatcher | null = null;
  #reloading: Promise<ReloadOutcome> | null = null;
  #reloadAgain: ReloadTrigger | null = null;
  #stopMode: ShutdownMode | null = null;
  #deadline: { timer: NodeJS.Timeout; at: number } | null = null;
  #resolveDone!: (code: number) => void;
  readonly #done: Promise<number>;
  #reloads = { ok: 0, failed: 0 };

  constructor(options: MasterOptions) {
    this.#opts = options;
    this.#config = options.config;
    this.#log = options.logger.child({ component: 'master' });
    this.#loopMs = Math.round(options.options.loop_timeout * 1000);
    const heartbeat = { unresponsiveAfterMs: secondsToMs(options.options.child_unresponsive_after), killAfterMs: secondsToMs(options.options.child_kill_after) };
    this.#timing = { ...supervisorTiming(this.#loopMs, heartbeat), ...options.timing };
    this.#deadLetterFolder = new DeadLetterFolder(options.options.dead_letter_dir, options.options.user, this.#log);
    this.#flow = new FlowControl(
      {
        state: () => this.#state,
        config: () => this.#config,
        supervisor: (pool) => this.#supervisors.get(pool),
        retiring: (pool) => [...this.#retiring].some((supervisor) => supervisor.name === pool),
        loopTimeoutMs: this.#loopMs,
      },
      options.logger,
    );
    const source = options.signals === undefined ? process : options.signals;
    this.#signals =
      source === null
        ? null
        : new SignalRouter(
            {
              reload: (signal) => {
                this.#log.info({ event: 'signal', signal }, `${signal}: reloading`);
                void this.reload(ReloadTrigger.SIGNAL);
              },
              gracefulStop: (signal) => void this.stop(Mode.GRACEFUL, signal),
              hardStop: (signal) => void this.stop(Mode.HARD, signal),
              reopenLogs: (signal) => this.#reopenLogs(signal),
            },
            source,
          );
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  get state(): MasterState {
    return this.#state;
  }

  get config(): JobsConfig {
    return this.#config;
  }

  /** Where the status port listens, once started (null when --status_port is not set). */
  get statusAddress(): { host: string; port: number } | null {
    return this.#statusAddress;
  }

  /** Where the exporter listens, once started (null when --exporter_addr is not set). */
  get exporterAddress(): { host: string; port: number } | null {
    return this.#exporterAddress;
  }

  /** Resolves with the process exit code once the master has stopped. */
  get done(): Promise<number> {
    return this.#done;
  }

  supervisor(pool: string): PoolSupervisor | undefined {
    return this.#supervisors.get(pool);
  }

  /**
   * Binds the status port, runs afterBind, forks every pool with workers and waits for their ready
   * handshakes (a pool whose child fails to start is being restarted; start does not wait for that).
   * Throws when the port cannot be bound or afterBind fails, after undoing what it did.
   */
  async start(): Promise<void> {
    this.#signals?.install();
    const { options } = this.#opts;
    let deadLetterFolderCreated = false;
    try {
      if (options.status_port !== null) {
        const requestTimeoutMs = Math.min(5000, Math.max(1000, this.#loopMs));
        const source = { ...statusCommands(() => this.observe()), control: (command: string, words: string[], peer: string) => this.#flow.command(command, words, peer) };
        this.#statusServer = new StatusServer({ host: options.status_host, port: options.status_port, source, logger: this.#opts.logger, requestTimeoutMs });
        this.#statusAddress = await this.#statusServer.listen().catch((error: NodeJS.ErrnoException) => {
          throw new ListenError(`--status_port ${options.status_port}: cannot listen on ${options.status_host}:${options.status_port}: ${error.message}`, { cause: error, osCode: error.code ?? null });
        });
      }
      if (options.exporter_addr !== null) {
        const where = formatListenAddress(options.exporter_addr);
        const { Exporter } = await import('../observe/exporter.js');
        this.#exporter = new Exporter({
          host: options.exporter_addr.host,
          port: options.exporter_addr.port,
          source: this,
          logger: this.#opts.logger,
          allowedHosts: options.exporter_allowed_hosts,
          web: this.#opts.webConfig ?? null,
        });
        this.#exporterAddress = await this.#exporter.listen().catch((error: NodeJS.ErrnoException) => {
          throw new ListenError(`--exporter_addr ${where}: cannot listen: ${error.message}`, { cause: error, osCode: error.code ?? null });
        });
      }
      if (this.#state !== MasterState.STARTING) return; // stopped while binding
      // Created while the master may still be root (/var/lib), for the --user the children run as.
      deadLetterFolderCreated = this.#deadLetterFolder.create(Object.values(this.#config.pools));
      this.#opts.afterBind?.();
    } catch (error) {
      this.#signals?.uninstall();
      await this.#statusServer?.close();
      await this.#exporter?.close();
      this.#state = MasterState.STOPPED;
      this.#resolveDone(2);
      throw error;
    }
    this.#logConfigWarnings(this.#config);
    if (deadLetterFolderCreated) this.#deadLetterFolder.verify(Object.values(this.#config.pools));
    const starts: Array<Promise<void>> = [];
    for (const pool of Object.values(this.#config.pools)) {
      if (pool.workerCount > 0) starts.push(this.#startPool(pool));
    }
    await Promise.all(starts);
    if (this.#state !== MasterState.STARTING) return; // stopped while starting
    const file = this.#config.path;
    this.#watcher = new ConfigWatcher({
      file,
      intervalMs: Math.max(1, Math.round(this.#loopMs / 2)),
      onChange: () => {
        this.#log.info({ event: 'config-changed', file }, `${file} changed: reloading`);
        void this.reload(ReloadTrigger.FILE);
      },
    });
    this.#watcher.start();
    if (this.#exporter !== null) {
      this.#poller = new GearmandPoller({
        servers: this.#config.servers,
        intervalMs: this.#loopMs,
        timeoutMs: Math.min(5000, Math.max(500, this.#loopMs)),
        logger: this.#opts.logger,
      });
      this.#poller.start();
    }
    this.#state = MasterState.RUNNING;
    this.#log.info(
      {
        event: 'started',
        pools: Object.keys(this.#config.pools),
        children: [...this.#supervisors.values()].map((s) => ({ pool: s.name, pid: s.pid, state: s.state })),
        statusAddress: this.#statusAddress,
        exporterAddress: this.#exporterAddress,
      },
      `driveshaft running: ${this.#supervisors.size} pool children${this.#statusAddress === null ? '' : `, status port ${this.#statusAddress.host}:${this.#statusAddress.port}`}${this.#exporterAddress === null ? '' : `, exporter ${(this.#opts.webConfig?.tls ?? null) === null ? 'http' : 'https'}://${formatListenAddress(this.#exporterAddress)}/`}`,
    );
  }

  /**
   * Reads the jobs config again and applies the difference (docs/configuration.md, Reload). An invalid
   * or unreadable file, or one over the fd budget, changes nothing and is logged with every problem.
   */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    if (this.#state === MasterState.STOPPING || this.#state === MasterState.STOPPED || this.#state === MasterState.STARTING) {
      this.#log.warn({ event: 'reload-ignored', trigger, state: this.#state }, `reload ignored while ${this.#state}`);
      return Promise.resolve({ ok: false, problems: [`not reloading while ${this.#state}`] });
    }
    if (this.#reloading !== null) {
      // SIGHUP wins over a file change: it also retries failed pools.
      if (this.#reloadAgain !== ReloadTrigger.SIGNAL) this.#reloadAgain = trigger;
      return this.#reloading;
    }
    this.#state = MasterState.RELOADING;
    this.#reloading = (async () => {
      let outcome = await this.#reloadOnce(trigger);
      while (this.#reloadAgain !== null && this.#state === MasterState.RELOADING) {
        const again = this.#reloadAgain;
        this.#reloadAgain = null;
        outcome = await this.#reloadOnce(again);
      }
      return outcome;
    })().finally(() => {
      this.#reloading = null;
      this.#reloadAgain = null;
      if (this.#state === MasterState.RELOADING) this.#state = MasterState.RUNNING;
    });
    return this.#reloading;
  }

  /**
   * Stops every child and the status port; resolves with the exit code. A hard stop during a graceful
   * one upgrades it. The deadline timer is armed before any shutdown work starts (close-with-grace), so
   * a child or a step that hangs cannot keep the process alive past it.
   */
  stop(mode: ShutdownMode, reason = 'stop requested'): Promise<number> {
    if (this.#state === MasterState.STOPPED) return this.#done;
    const graceful = mode === Mode.GRACEFUL;
    const deadlineMs = graceful ? 4 * this.#loopMs + 2 * this.#timing.killGraceMs + 1000 : Math.max(2 * this.#loopMs, 2 * this.#timing.killGraceMs + 250);
    const childDeadlineMs = graceful ? 4 * this.#loopMs : 0;
    if (this.#state === MasterState.STOPPING) {
      if (mode !== Mode.HARD || this.#stopMode === Mode.HARD) return this.#done;
      this.#stopMode = Mode.HARD;
      this.#log.warn({ event: 'shutdown', mode, reason }, `${reason}: hard stop, failing running jobs now`);
      this.#armDeadline(deadlineMs);
      for (const supervisor of this.#allSupervisors()) void supervisor.stop(Mode.HARD, 0);
      return this.#done;
    }
    this.#armDeadline(deadlineMs);
    this.#state = MasterState.STOPPING;
    this.#stopMode = mode;
    this.#log.info(
      { event: 'shutdown', mode, reason, deadlineMs },
      graceful ? `${reason}: stopping gracefully (running jobs get ${childDeadlineMs} ms)` : `${reason}: hard stop, failing running jobs now`,
    );
    this.#watcher?.close();
    this.#poller?.stop();
    void (async () => {
      await Promise.all([...this.#allSupervisors()].map((supervisor) => supervisor.stop(mode, childDeadlineMs)));
      // The status port and the exporter stay open while children drain, so an operator can watch them finish.
      await Promise.all([this.#statusServer?.close(), this.#exporter?.close()]);
      this.#finish(0);
    })();
    return this.#done;
  }

  // ---------------------------------------------------------------------------------------------------
  // The one snapshot every status view is rendered from (status port, exporter)

  /** Polls every child once and returns everything the status views need, as plain data. */
  async observe(): Promise<Observation> {
    const results = await this.#pollAll();
    const takenAt = Date.now();
    const poolNames = this.#poolNames();
    return {
      takenAt,
      version: VERSION,
      pid: process.pid,
      state: this.#state,
      startedAt: this.#startedAt,
      configFile: this.#config.path,
      configLoadedAt: this.#configLoadedAt,
      servers: this.#config.servers,
      pools: this.#config.pools,
      poolNames,
      children: results.map(({ supervisor, result, retiring }) => ({
        pool: supervisor.name,
        state: supervisor.state,
        pid: supervisor.pid,
        restarts: supervisor.restarts,
        failReason: supervisor.failReason,
        unresponsiveSince: supervisor.unresponsiveSince,
        retiring,
        status: result.ok ? result.status : null,
        statusError: result.ok ? null : result.reason,
      })),
      totals: this.#totals.totals(poolNames),
      reloads: { ...this.#reloads },
      childRestarts: this.#totals.restarts,
      pauses: this.#flow.view(),
    };
  }

  /** The gearmand poller's cache (empty while the exporter is off or before the first poll). */
  gearmandScrapes(): GearmandScrape[] {
    return this.#poller?.scrapes ?? [];
  }

  // ---------------------------------------------------------------------------------------------------

  /** A secret file others can read, a certificate out of date: worth a line at every (re)load, never fatal. */
  #logConfigWarnings(config: JobsConfig): void {
    for (const warning of config.warnings ?? []) this.#log.warn({ event: 'config-warning', file: config.path }, warning);
  }

  #settingsFor(pool: PoolConfig, config: JobsConfig = this.#config): ChildSettings {
    return { pool, servers: config.servers, loopTimeoutMs: this.#loopMs, logLevel: effectiveLevel(this.#opts.logger), heartbeatIntervalMs: this.#timing.heartbeatIntervalMs };
  }

  #startPool(pool: PoolConfig): Promise<void> {
    const supervisor = new PoolSupervisor({
      settings: this.#settingsFor(pool),
      fork: this.#opts.fork,
      logger: this.#opts.logger,
      timing: this.#timing,
      totals: this.#totals,
      pause: this.#flow.stateOf(pool.name),
    });
    this.#supervisors.set(pool.name, supervisor);
    return supervisor.start();
  }

  /** Drains a pool's child in the background (removed pool, or worker_count → 0). */
  #retire(supervisor: PoolSupervisor, deadlineMs: number): void {
    this.#supervisors.delete(supervisor.name);
    this.#retiring.add(supervisor);
    // Its child's figures stay in the pool's totals: the ledger settled them when the child exited.
    void supervisor.stop(Mode.GRACEFUL, deadlineMs).then(() => this.#retiring.delete(supervisor));
  }

  *#allSupervisors(): Iterable<PoolSupervisor> {
    yield* this.#supervisors.values();
    yield* this.#retiring;
  }

  /** Configured pools in file order, then pools still draining after removal. */
  #poolNames(): string[] {
    const names = Object.keys(this.#config.pools);
    for (const supervisor of this.#retiring) if (!names.includes(supervisor.name)) names.push(supervisor.name);
    return names;
  }

  async #pollAll(): Promise<Array<{ supervisor: PoolSupervisor; result: StatusResult; retiring: boolean }>> {
    const all = [...this.#supervisors.values()].map((s) => ({ supervisor: s, retiring: false }));
    for (const s of this.#retiring) all.push({ supervisor: s, retiring: true });
    return Promise.all(
      all.map(async ({ supervisor, retiring }) => {
        const result = await supervisor.status();
        if (!result.ok && supervisor.pid !== null && supervisor.state !== SupervisorState.STARTING) {
          this.#log.warn({ event: 'status-timeout', pool: supervisor.name, reason: result.reason }, `pool ${supervisor.name}: no status from child (${result.reason}); its slots are left out`);
        }
        return { supervisor, result, retiring };
      }),
    );
  }

  async #reloadOnce(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const file = this.#config.path;
    this.#watcher?.accept(fileSignature(file));
    let next: JobsConfig;
    try {
      next = this.#opts.loadConfig(file);
      this.#opts.checkBudget(next);
    } catch (error) {
      const problems = problemLines(error);
      this.#reloads.failed++;
      this.#log.error(
        { event: 'reload-failed', trigger, file, problems },
        `reload of ${file} failed, keeping the running config: ${problems.join('; ')}`,
      );
      return { ok: false, problems };
    }
    if (this.#state !== MasterState.RELOADING) return { ok: false, problems: ['stopped during reload'] };
    this.#logConfigWarnings(next);
    const previous = this.#config;
    const diff = diffJobsConfig(previous, next);
    this.#config = next;
    this.#configLoadedAt = Date.now();
    this.#reloads.ok++;
    this.#poller?.setServers(next.servers);
    // A pause of a removed pool or function goes; the children get what is left with their settings.
    this.#flow.prune(next);
    for (const supervisor of this.#supervisors.values()) supervisor.notePause(this.#flow.stateOf(supervisor.name));
    const work: Array<Promise<void>> = [];
    if (trigger === ReloadTrigger.SIGNAL) {
      for (const supervisor of this.#supervisors.values()) work.push(supervisor.retry());
    }
    for (const name of diff.removed) {
      const supervisor = this.#supervisors.get(name);
      if (supervisor !== undefined) this.#retire(supervisor, (previous.pools[name] as PoolConfig).maxRunningTimeMs);
    }
    const changed = [...diff.resized.map((r) => r.pool), ...diff.replaced, ...diff.added];
    this.#deadLetterFolder.prepare([...diff.added, ...diff.replaced].map((name) => next.pools[name] as PoolConfig));
    for (const name of changed) {
      const pool = next.pools[name] as PoolConfig;
      const supervisor = this.#supervisors.get(name);
      if (pool.workerCount === 0) {
        if (supervisor !== undefined) this.#retire(supervisor, (previous.pools[name] ?? pool).maxRunningTimeMs);
      } else if (supervisor === undefined) {
        work.push(this.#startPool(pool));
      } else {
        // worker_count up or down, or slots replaced: the child does it in place, new slots first.
        work.push(supervisor.reconfigure(this.#settingsFor(pool, next)));
      }
    }
    await Promise.all(work);
    const summary = {
      added: diff.added,
      removed: diff.removed,
      resized: diff.resized,
      replaced: diff.replaced,
    };
    const describe = isEmptyDiff(diff)
      ? 'no changes'
      : [
          diff.added.length > 0 ? `added ${diff.added.join(', ')}` : '',
          diff.removed.length > 0 ? `removed ${diff.removed.join(', ')}` : '',
          diff.resized.length > 0 ? `resized ${diff.resized.map((r) => `${r.pool} ${r.from}→${r.to}`).join(', ')}` : '',
          diff.replaced.length > 0 ? `replaced slots of ${diff.replaced.join(', ')}` : '',
        ]
          .filter((part) => part !== '')
          .join('; ');
    this.#log.info({ event: 'reloaded', trigger, file, ...summary }, `reloaded ${file}: ${describe}`);
    return { ok: true, diff };
  }

  #reopenLogs(signal: NodeJS.Signals): void {
    try {
      const files = reopenLogFiles(this.#opts.logger);
      this.#log.info({ event: 'logs-reopened', signal, files }, `${signal}: ${files.length} log files reopened`);
    } catch (error) {
      this.#log.error({ event: 'logs-reopen-failed', signal, err: error }, `${signal}: cannot reopen log files: ${(error as Error).message}`);
    }
    // The pools' dead-letter files are open in the children.
    for (const supervisor of this.#supervisors.values()) {
      void supervisor.reopenFiles().then((result) => {
        if (!result.ok) {
          this.#log.warn({ event: 'files-reopen-failed', pool: supervisor.name, signal, reason: result.reason }, `${signal}: pool ${supervisor.name} did not reopen its dead-letter file: ${result.reason}`);
        } else if (result.files.length > 0) {
          this.#log.info({ event: 'files-reopened', pool: supervisor.name, signal, files: result.files }, `${signal}: pool ${supervisor.name} reopened ${result.files.join(', ')}`);
        }
      });
    }
  }

  #armDeadline(ms: number): void {
    const at = Date.now() + ms;
    if (this.#deadline !== null && this.#deadline.at <= at) return;
    if (this.#deadline !== null) clearTimeout(this.#deadline.timer);
    const timer = setTimeout(() => {
      this.#log.error({ event: 'shutdown-deadline', deadlineMs: ms }, `shutdown did not finish within ${ms} ms; killing the remaining children`);
      for (const supervisor of this.#allSupervisors()) {
        const pid = supervisor.pid;
        if (pid !== null) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
      }
      void this.#statusServer?.close();
      void this.#exporter?.close();
      this.#finish(1);
    }, ms);
    this.#deadline = { timer, at };
  }

  #finish(code: number): void {
    if (this.#state === MasterState.STOPPED) return;
    this.#poller?.stop();
    if (this.#deadline !== null) clearTimeout(this.#deadline.timer);
    this.#deadline = null;
    this.#watcher?.close();
    this.#signals?.uninstall();
    this.#state = MasterState.STOPPED;
    this.#log.info({ event: 'stopped', code }, `driveshaft stopped (exit code ${code})`);
    this.#resolveDone(code);
  }
}
