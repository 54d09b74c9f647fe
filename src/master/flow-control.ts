/**
 * The status port's control commands (docs/operations.md, Pause and resume), answered by the master:
 *
 *   pause  <pool> [<function>]   the pool grabs no job (running jobs finish), or no slot registers the function
 *   resume <pool> [<function>]   grabs start again at once
 *   drain  <pool> [<function>]   pause, then answer once no job of the pool (or of the function) runs
 *
 * Each answers one line: `OK …` when done, `Error: …` when refused (unknown pool or function, a pool
 * without a running child, the daemon starting or stopping, a child that did not confirm). The pause
 * itself lives in the PauseBook; the pool's supervisor hands it to the child now and to every later
 * child. Every command is one info log line naming the status port peer that sent it.
 */
import { poolNamed } from '../config/types.js';
import type { JobsConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { PauseState } from '../ipc/settings.js';
import type { PoolPauseView } from '../observe/observation.js';
import { PauseBook } from './pause-book.js';
import { SupervisorState } from './supervisor.js';
import type { PauseResult, PoolSupervisor } from './supervisor.js';

/** How often a drain asks the child how many jobs still run. */
const DRAIN_POLL_MS = 100;
/** How many names an "unknown pool" or "unknown function" error lists. */
const NAMES_LISTED = 10;

export interface FlowControlHost {
  /** The master's state (starting, running, reloading, stopping, stopped). */
  state(): string;
  config(): JobsConfig;
  /** The supervisor of a configured pool with workers. */
  supervisor(pool: string): PoolSupervisor | undefined;
  /** A pool removed or scaled to zero whose child still drains. */
  retiring(pool: string): boolean;
  /** loop_timeout in milliseconds: a drain waits max_running_time plus this. */
  loopTimeoutMs: number;
}

type Target = { pool: string; functionName: string | null; supervisor: PoolSupervisor };

export class FlowControl {
  readonly #host: FlowControlHost;
  readonly #log: Logger;
  readonly #book = new PauseBook();

  constructor(host: FlowControlHost, logger: Logger) {
    this.#host = host;
    this.#log = logger.child({ component: 'flow-control' });
  }

  /** What `pool`'s child must apply (given to every new supervisor). */
  stateOf(pool: string): PauseState {
    return this.#book.stateOf(pool);
  }

  /** For the status views. */
  view(): ReadonlyMap<string, PoolPauseView> {
    return this.#book.view(this.#host.config());
  }

  /** A reload took effect: pauses of pools and functions it removed are dropped, each logged. */
  prune(config: JobsConfig): void {
    for (const { pool, function: fn, mark } of this.#book.prune(config)) {
      const what = describe({ pool, functionName: fn });
      this.#log.info({ event: 'pause-dropped', pool, function: fn, pausedBy: mark.by, pausedSince: new Date(mark.since).toISOString() }, `${what} is no longer paused: the reload removed it`);
    }
  }

  /** Answers one control command from `peer`; never throws. */
  async command(command: string, words: readonly string[], peer: string): Promise<string> {
    if (words.length < 1 || words.length > 2) return `Error: usage: ${command} <pool> [<function>]`;
    const [pool, functionName = null] = words as [string, string?];
    const target = this.#target(pool, functionName);
    if (typeof target === 'string') return `Error: ${target}`;
    switch (command) {
      case 'pause':
        return this.#pause(target, peer, false);
      case 'drain':
        return this.#pause(target, peer, true);
      case 'resume':
        return this.#resume(target, peer);
      default:
        return `Error: unrecognized command ${command}`;
    }
  }

  /** The pool and function the words name, or why they cannot be paused. */
  #target(pool: string, functionName: string | null): Target | string {
    const state = this.#host.state();
    if (state === 'starting') return 'the daemon is starting';
    if (state === 'stopping' || state === 'stopped') return 'the daemon is stopping';
    const config = this.#host.config();
    const poolConfig = poolNamed(config, pool);
    if (poolConfig === undefined) {
      if (this.#host.retiring(pool)) return `pool ${JSON.stringify(pool)} is not running (removed from the jobs config, stopping)`;
      return `unknown pool ${JSON.stringify(pool)} (pools: ${listed(Object.keys(config.pools))})`;
    }
    if (functionName !== null && !poolConfig.jobsList.includes(functionName)) {
      return `pool ${JSON.stringify(pool)} has no function ${JSON.stringify(functionName)} (its functions: ${listed(poolConfig.jobsList)})`;
    }
    if (poolConfig.workerCount === 0) return `pool ${JSON.stringify(pool)} is not running (worker_count 0)`;
    const supervisor = this.#host.supervisor(pool);
    if (supervisor === undefined || supervisor.state === SupervisorState.STOPPING || supervisor.state === SupervisorState.STOPPED) {
      return `pool ${JSON.stringify(pool)} is not running (${supervisor?.state ?? 'no child'})`;
    }
    return { pool, functionName, supervisor };
  }

  async #pause(target: Target, peer: string, drain: boolean): Promise<string> {
    const { pool, functionName } = target;
    const what = describe(target);
    const earlier = this.#book.pause(pool, functionName, { since: Date.now(), by: peer });
    const result = await target.supervisor.applyPause(this.#book.stateOf(pool));
    const action = drain ? 'drain' : 'pause';
    this.#log.info(
      { event: action, pool, function: functionName, by: peer, alreadyPaused: earlier !== null, result: result.kind },
      `${what} ${earlier === null ? 'paused' : 'pause repeated'} by ${peer} (status port${drain ? ', drain' : ''})${outcome(result)}`,
    );
    if (result.kind === 'failed') return `Error: ${what} is paused, but its child did not confirm it (${result.reason}); a restarted child starts paused`;
    const was = earlier === null ? 'paused' : `was already paused (since ${new Date(earlier.since).toISOString()} by ${earlier.by})`;
    if (result.kind === 'later') return `OK ${what} ${was}; its child is not running (${result.state}) and starts paused`;
    if (drain) return this.#drain(target, was);
    const running = runningOf(result.running, functionName);
    const late = result.settled ? '' : '; a GRAB sent to a slow gearmand before the pause is still outstanding, and a job it brings still runs';
    return functionName === null
      ? `OK ${what} ${was}: ${jobs(running)} running finish, new jobs wait in gearmand${late}`
      : `OK ${what} ${was}: ${jobs(running)} of it running finish, its jobs wait in gearmand while the pool's other functions run${late}`;
  }

  async #resume(target: Target, peer: string): Promise<string> {
    const { pool, functionName } = target;
    const what = describe(target);
    const earlier = this.#book.resume(pool, functionName);
    const result = await target.supervisor.applyPause(this.#book.stateOf(pool));
    this.#log.info(
      { event: 'resume', pool, function: functionName, by: peer, wasPaused: earlier !== null, result: result.kind, ...(earlier === null ? {} : { pausedBy: earlier.by, pausedMs: Date.now() - earlier.since }) },
      `${what} ${earlier === null ? 'resume asked (was not paused)' : `resumed after ${Math.round((Date.now() - earlier.since) / 1000)} s`} by ${peer} (status port)${outcome(result)}`,
    );
    if (result.kind === 'failed') return `Error: ${what} is resumed, but its child did not confirm it (${result.reason})`;
    const still = this.#book.stateOf(pool);
    const rest =
      functionName === null
        ? still.functions.length > 0 ? `; still paused: ${still.functions.length === 1 ? 'function' : 'functions'} ${listed(still.functions)}` : ''
        : still.pool ? '; the pool itself is still paused' : '';
    return `OK ${what} ${earlier === null ? 'was not paused' : 'resumed'}${rest}`;
  }

  /** Waits until no job of the target runs (or max_running_time plus loop_timeout has passed). */
  async #drain(target: Target, was: string): Promise<string> {
    const { pool, functionName, supervisor } = target;
    const what = describe(target);
    const startedAt = Date.now();
    const deadlineMs = (poolNamed(this.#host.config(), pool)?.maxRunningTimeMs ?? 0) + this.#host.loopTimeoutMs;
    let running = await this.#running(supervisor, functionName);
    while (running !== 0) {
      const state = this.#host.state();
      if (state === 'stopping' || state === 'stopped') return `Error: the daemon is stopping; ${what} ${was}, ${running === null ? 'its jobs' : jobs(running)} still running`;
      if (poolNamed(this.#host.config(), pool) === undefined) return `Error: ${what} was removed from the jobs config while draining`;
      if (this.#book.markOf(pool, functionName) === null) return `Error: ${what} was resumed while draining`;
      if (Date.now() - startedAt >= deadlineMs) {
        return `Error: ${what} ${was}, but ${running === null ? 'its child does not answer' : `${jobs(running)} still running`} after ${seconds(Date.now() - startedAt)} s`;
      }
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
      running = await this.#running(supervisor, functionName);
    }
    const waited = Date.now() - startedAt;
    this.#log.info({ event: 'drained', pool, function: functionName, waitedMs: waited }, `${what} drained: no job running (waited ${waited} ms)`);
    return `OK ${what} ${was} and drained: no job running (waited ${seconds(waited)} s)`;
  }

  /** Jobs of the target the pool's child holds; 0 with no child (gearmand re-queued its jobs); null when it does not answer. */
  async #running(supervisor: PoolSupervisor, functionName: string | null): Promise<number | null> {
    const status = await supervisor.status();
    if (!status.ok) return supervisor.pid === null ? 0 : null;
    return status.status.slots.filter((slot) => slot.job !== null && (functionName === null || slot.job.functionName === functionName)).length;
  }
}

function describe({ pool, functionName }: { pool: string; functionName: string | null }): string {
  return functionName === null ? `pool ${JSON.stringify(pool)}` : `function ${JSON.stringify(functionName)} of pool ${JSON.stringify(pool)}`;
}

function runningOf(running: Record<string, number>, functionName: string | null): number {
  if (functionName !== null) return Object.hasOwn(running, functionName) ? (running[functionName] as number) : 0;
  return Object.values(running).reduce((sum, n) => sum + n, 0);
}

function jobs(n: number): string {
  return n === 1 ? '1 job' : `${n} jobs`;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function listed(names: readonly string[]): string {
  if (names.length === 0) return 'none';
  const shown = names.slice(0, NAMES_LISTED).map((name) => JSON.stringify(name));
  if (names.length > NAMES_LISTED) shown.push(`and ${names.length - NAMES_LISTED} more`);
  return shown.join(', ');
}

function outcome(result: PauseResult): string {
  if (result.kind === 'applied') return '';
  if (result.kind === 'later') return `; its child is not running (${result.state}) and starts with it`;
  return `; its child did not confirm: ${result.reason}`;
}
