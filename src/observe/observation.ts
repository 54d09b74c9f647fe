/**
 * One snapshot of the master (its pools, their children's status replies, the pools' totals) and what
 * the exporter shows from it: the Prometheus metric families, the /status document and the /readyz
 * verdict. The status port's text is rendered from the same snapshot (status-text.ts). Pure functions
 * of plain data, so each view is tested without processes, and all of them agree on what a slot's
 * state is.
 */
import type { AdminFunctionStatus } from '../codec/admin.js';
import { redactUris } from '../config/redact.js';
import type { PoolConfig, ServerAddress } from '../config/types.js';
import { BreakerState } from '../ipc/messages.js';
import type { ChildStatus, DeliveryStatus, SlotStatus } from '../ipc/messages.js';
import { zeroCounters } from '../ipc/counters.js';
import type { ChildCounters } from '../ipc/counters.js';
import { DURATION_BUCKETS, emptyFunctionMetrics } from '../ipc/metrics.js';
import type { ChildMetrics, FunctionMetrics } from '../ipc/metrics.js';
import { flowFamilies, poolFlow, statusLimits } from './flow-view.js';
import type { StatusLimits } from './flow-view.js';
import { allPausedReason, breakerFunctions, functionBreakers } from './function-breaker-view.js';
import type { FunctionBreakerView } from './function-breaker-view.js';
import type { GearmandScrape } from './gearmand-poller.js';
import { MetricType } from './prometheus.js';
import type { HistogramSample, MetricFamily, Sample } from './prometheus.js';

/** One pool child as the master sees it at snapshot time. */
export interface ChildObservation {
  pool: string;
  /** The supervisor's state (starting, running, backoff, stopping, stopped, failed). */
  state: string;
  pid: number | null;
  restarts: number;
  failReason: string | null;
  /** Date.now() of the last heartbeat of a child silent for --child_unresponsive_after since; null (or absent) while it beats. */
  unresponsiveSince?: number | null;
  /** Draining after its pool was removed or scaled to zero. */
  retiring: boolean;
  /** The child's answer to the status poll, or null with the reason in statusError. */
  status: ChildStatus | null;
  statusError: string | null;
}

/** Cumulative over every child a pool ever had (restarts, reloads and removal included). */
export interface PoolTotals {
  counters: ChildCounters;
  metrics: ChildMetrics;
  restarts: number;
  /** Times a child's circuit breaker opened. */
  breakerOpened: number;
  /** Times each function's circuit breaker opened, by function name (only functions whose breaker ever opened). */
  functionBreakerOpened: ReadonlyMap<string, number>;
}

/** When and by whom (the status port peer, `address:port`) something was paused. */
export interface PauseMark {
  /** Date.now() of the pause. */
  since: number;
  by: string;
}

/** What operators paused in one pool, as the master records it (docs/operations.md, Pause and resume). */
export interface PoolPauseView {
  /** The whole pool: no slot grabs. */
  pool: PauseMark | null;
  /** Functions no slot registers, in jobs_list order. */
  functions: ReadonlyArray<{ function: string } & PauseMark>;
}

export interface Observation {
  /** Date.now() when the children were polled. */
  takenAt: number;
  version: string;
  pid: number;
  /** The master's state. */
  state: string;
  startedAt: number;
  configFile: string;
  configLoadedAt: number;
  servers: readonly ServerAddress[];
  /** Configured pools by name, in file order. */
  pools: Readonly<Record<string, PoolConfig>>;
  /** Configured pools first, then pools removed but still draining. */
  poolNames: readonly string[];
  children: readonly ChildObservation[];
  /** Per pool name, including pools removed from the config long ago (their counters stay exported). */
  totals: ReadonlyMap<string, PoolTotals>;
  reloads: { ok: number; failed: number };
  childRestarts: number;
  /** Pools with something paused, by name (absent or missing: nothing paused). */
  pauses?: ReadonlyMap<string, PoolPauseView>;
}

export const SlotState = {
  IDLE: 'idle',
  BUSY: 'busy',
  STOPPING: 'stopping',
} as const;
export type SlotState = (typeof SlotState)[keyof typeof SlotState];

const SLOT_STATES: readonly SlotState[] = [SlotState.IDLE, SlotState.BUSY, SlotState.STOPPING];

/** A slot's state; also the `threads` shutdown flag (stopping ⇔ flag 1), so both views agree. */
export function slotState(slot: SlotStatus, child: ChildObservation): SlotState {
  if (slot.stopping || child.retiring || child.state === 'stopping') return SlotState.STOPPING;
  return slot.job === null ? SlotState.IDLE : SlotState.BUSY;
}

/** What is paused in `pool`, or null when nothing is. */
export function poolPause(observation: Observation, pool: string): PoolPauseView | null {
  return observation.pauses?.get(pool) ?? null;
}

export function childrenOf(observation: Observation, pool: string): ChildObservation[] {
  return observation.children.filter((child) => child.pool === pool);
}

function isUnresponsive(child: ChildObservation): boolean {
  return child.unresponsiveSince !== undefined && child.unresponsiveSince !== null;
}

/**
 * The servers the pool's slots skip because a GRAB to them went unanswered, with since when (Date.now()):
 * the earliest report among the pool's children, a draining one's included, as its slots still grab.
 */
export function poolSuspectServers(children: ReadonlyArray<Pick<ChildObservation, 'status'>>): Map<string, number> {
  const since = new Map<string, number>();
  for (const child of children) {
    for (const view of child.status?.servers ?? []) {
      if (view.suspectSince === null) continue;
      const earlier = since.get(view.server);
      if (earlier === undefined || view.suspectSince < earlier) since.set(view.server, view.suspectSince);
    }
  }
  return since;
}

/** False while a child of the pool has missed its heartbeats (a pool without a child is not "unresponsive"). */
export function childResponding(observation: Observation, pool: string): boolean {
  return !childrenOf(observation, pool).some(isUnresponsive);
}
/**
 * A pool's delivery state as the views show it: the serving child's (the one not draining), else a
 * draining one's; null while no child of the pool reports one. `gauges` uses it too.
 */
export function poolDelivery(children: ReadonlyArray<Pick<ChildObservation, 'status' | 'retiring'>>): DeliveryStatus | null {
  const reporting = children.filter((child) => child.status?.delivery != null);
  const chosen = reporting.find((child) => !child.retiring) ?? reporting[0];
  return chosen?.status?.delivery ?? null;
}

const BREAKER_STATES: readonly BreakerState[] = [BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN];

export function slotsOf(observation: Observation, pool: string): Array<{ slot: SlotStatus; child: ChildObservation }> {
  const out: Array<{ slot: SlotStatus; child: ChildObservation }> = [];
  for (const child of childrenOf(observation, pool)) for (const slot of child.status?.slots ?? []) out.push({ slot, child });
  return out;
}

/** The pools whose totals are shown: configured and draining ones, then pools removed long ago. */
export function countedPools(observation: Observation): string[] {
  const pools = [...observation.poolNames];
  for (const name of observation.totals.keys()) if (!pools.includes(name)) pools.push(name);
  return pools;
}

/** The breakers of the pool's functions that the serving (else a draining) child reports. */
export function poolFunctionBreakers(observation: Observation, pool: string, delivery: DeliveryStatus | null): FunctionBreakerView[] {
  return functionBreakers(delivery, breakerFunctions(observation.pools[pool]?.jobsList, delivery));
}

/** Configured functions first (their counter exists at zero), then any other whose breaker ever opened. */
function breakerCountedFunctions(observation: Observation, pool: string, totals: PoolTotals | undefined): string[] {
  const names = [...(observation.pools[pool]?.jobsList ?? [])];
  for (const name of totals?.functionBreakerOpened.keys() ?? []) if (!names.includes(name)) names.push(name);
  return names;
}

/** The pool's functions: configured ones first (so their series exist at zero), then any others seen. */
function functionsOf(observation: Observation, pool: string, totals: PoolTotals | undefined): string[] {
  const names = [...(observation.pools[pool]?.jobsList ?? [])];
  for (const name of Object.keys(totals?.metrics.functions ?? {})) if (!names.includes(name)) names.push(name);
  return names;
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────
// Prometheus

const OUTCOMES: ReadonlyArray<readonly [string, keyof FunctionMetrics]> = [
  ['completed', 'completed'],
  ['failed', 'failed'],
  ['timed_out', 'timedOut'],
  ['requeued', 'requeued'],
];

/** Numeric codes in order, then "error" and "timeout". */
function compareCodes(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  if (Number.isFinite(na)) return -1;
  if (Number.isFinite(nb)) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function metricFamilies(observation: Observation, scrapes: readonly GearmandScrape[]): MetricFamily[] {
  const jobs: Sample[] = [];
  const durations: HistogramSample[] = [];
  const http: Sample[] = [];
  const slots: Sample[] = [];
  const restarts: Sample[] = [];
  const responding: Sample[] = [];
  const retried: Sample[] = [];
  const handedBack: Sample[] = [];
  const deadLettered: Sample[] = [];
  const returned: Sample[] = [];
  const breakerOpened: Sample[] = [];
  const breaker: Sample[] = [];
  const functionOpened: Sample[] = [];
  const functionBreaker: Sample[] = [];
  const retrying: Sample[] = [];
  const admitted: Sample[] = [];
  const poolPaused: Sample[] = [];
  const functionPaused: Sample[] = [];
  const suspect: Sample[] = [];
  for (const pool of Object.values(observation.pools)) {
    const suspectSince = poolSuspectServers(childrenOf(observation, pool.name));
    for (const server of observation.servers) suspect.push({ labels: { pool: pool.name, server: server.label }, value: suspectSince.has(server.label) ? 1 : 0 });
    const pause = poolPause(observation, pool.name);
    poolPaused.push({ labels: { pool: pool.name }, value: pause?.pool != null ? 1 : 0 });
    const paused = new Set(pause?.functions.map((f) => f.function));
    for (const fn of pool.jobsList) functionPaused.push({ labels: { pool: pool.name, function: fn }, value: paused.has(fn) ? 1 : 0 });
  }
  for (const pool of countedPools(observation)) {
    const totals = observation.totals.get(pool);
    for (const fn of functionsOf(observation, pool, totals)) {
      const f = totals?.metrics.functions[fn] ?? emptyFunctionMetrics();
      for (const [outcome, key] of OUTCOMES) jobs.push({ labels: { pool, function: fn, outcome }, value: f[key] as number });
      durations.push({ labels: { pool, function: fn }, bounds: DURATION_BUCKETS, counts: f.buckets, sum: f.durationSum });
    }
    const codes = Object.keys(totals?.metrics.http ?? {}).sort(compareCodes);
    for (const code of codes) http.push({ labels: { pool, code }, value: totals?.metrics.http[code] ?? 0 });
    const byState = new Map<SlotState, number>(SLOT_STATES.map((s) => [s, 0]));
    for (const { slot, child } of slotsOf(observation, pool)) {
      const state = slotState(slot, child);
      byState.set(state, (byState.get(state) ?? 0) + 1);
    }
    for (const [state, count] of byState) slots.push({ labels: { pool, state }, value: count });
    restarts.push({ labels: { pool }, value: totals?.restarts ?? 0 });
    if (observation.poolNames.includes(pool)) responding.push({ labels: { pool }, value: childResponding(observation, pool) ? 1 : 0 });
    const counters = totals?.counters ?? zeroCounters();
    retried.push({ labels: { pool }, value: counters.jobs_retried });
    handedBack.push({ labels: { pool }, value: counters.jobs_handed_back });
    deadLettered.push({ labels: { pool }, value: counters.jobs_dead_lettered });
    returned.push({ labels: { pool }, value: counters.jobs_returned });
    breakerOpened.push({ labels: { pool }, value: totals?.breakerOpened ?? 0 });
    for (const fn of breakerCountedFunctions(observation, pool, totals)) functionOpened.push({ labels: { pool, function: fn }, value: totals?.functionBreakerOpened.get(fn) ?? 0 });
    // The state gauges exist only while a child of the pool reports them: no stale "closed" for a pool without one.
    const delivery = poolDelivery(childrenOf(observation, pool));
    if (delivery !== null) {
      for (const state of BREAKER_STATES) breaker.push({ labels: { pool, state }, value: delivery.breaker === state ? 1 : 0 });
      retrying.push({ labels: { pool }, value: delivery.retrying });
      admitted.push({ labels: { pool }, value: delivery.admitted });
      // Only functions that have a breaker (that failed since the child started): the others are closed,
      // and three constant series for each of up to jobs_list's length would say nothing.
      for (const b of poolFunctionBreakers(observation, pool, delivery)) {
        for (const state of BREAKER_STATES) functionBreaker.push({ labels: { pool, function: b.function, state }, value: b.breaker === state ? 1 : 0 });
      }
    }
  }

  const up: Sample[] = observation.servers.map((server) => ({ labels: { server: server.label }, value: serverConnected(observation, server.label) ? 1 : 0 }));
  const scrapeOk: Sample[] = [];
  const queued: Sample[] = [];
  const running: Sample[] = [];
  const workers: Sample[] = [];
  for (const scrape of scrapes) {
    scrapeOk.push({ labels: { server: scrape.server }, value: scrape.ok ? 1 : 0 });
    for (const f of scrape.functions) {
      const labels = { server: scrape.server, function: f.function };
      queued.push({ labels, value: f.total });
      running.push({ labels, value: f.running });
      workers.push({ labels, value: f.availableWorkers });
    }
  }

  const flows = observation.poolNames.map((pool) => ({ pool, flow: poolFlow(childrenOf(observation, pool)) }));
  return [
    {
      name: 'driveshaft_jobs_total',
      help: 'Jobs finished by the slots, by outcome: completed (WORK_COMPLETE), failed (WORK_FAIL for any reason but max_running_time), timed_out (WORK_FAIL after max_running_time), requeued (gearman_ret 14: connection dropped so gearmand re-queues the job).',
      type: MetricType.COUNTER,
      samples: jobs,
    },
    {
      name: 'driveshaft_job_duration_seconds',
      help: "Seconds from gearmand's assignment of a job to its outcome, every outcome included.",
      type: MetricType.HISTOGRAM,
      samples: durations,
    },
    {
      name: 'driveshaft_http_responses_total',
      help: 'Job requests to the endpoint by result: the HTTP status code, error (no response: refused, reset, DNS or TLS failure) or timeout (no answer within max_running_time).',
      type: MetricType.COUNTER,
      samples: http,
    },
    {
      name: 'driveshaft_slots',
      help: 'Worker slots by state: idle (waiting for a job), busy (running one), stopping (told to stop by a reload, a scale-down or the shutdown).',
      type: MetricType.GAUGE,
      samples: slots,
    },
    {
      name: 'driveshaft_gearmand_up',
      help: 'Whether at least one slot of any pool is registered with this gearmand (1) or none is (0).',
      type: MetricType.GAUGE,
      samples: up,
    },
    {
      name: 'driveshaft_gearmand_suspect',
      help: "Whether the pool's slots skip this gearmand because a GRAB to it went unanswered (1: hung or overloaded; the pool grabs on its other servers until any packet comes from it) or not (0), for every configured pool and server.",
      type: MetricType.GAUGE,
      samples: suspect,
    },
    {
      name: 'driveshaft_gearmand_scrape_ok',
      help: "Whether the last poll of this gearmand's admin status (every loop_timeout) worked.",
      type: MetricType.GAUGE,
      samples: scrapeOk,
    },
    {
      name: 'driveshaft_gearmand_queue_jobs',
      help: "Jobs queued or running for the function on this gearmand (admin status TOTAL), as of the last poll.",
      type: MetricType.GAUGE,
      samples: queued,
    },
    {
      name: 'driveshaft_gearmand_queue_running_jobs',
      help: "Jobs of the function running on this gearmand's workers (admin status RUNNING), as of the last poll.",
      type: MetricType.GAUGE,
      samples: running,
    },
    {
      name: 'driveshaft_gearmand_queue_workers',
      help: 'Workers of any client registered for the function on this gearmand (admin status AVAILABLE_WORKERS), as of the last poll.',
      type: MetricType.GAUGE,
      samples: workers,
    },
    {
      name: 'driveshaft_reloads_total',
      help: 'Jobs config reloads: ok (applied) or failed (invalid, unreadable or over the fd budget; the running config was kept).',
      type: MetricType.COUNTER,
      samples: [
        { labels: { result: 'ok' }, value: observation.reloads.ok },
        { labels: { result: 'failed' }, value: observation.reloads.failed },
      ],
    },
    {
      name: 'driveshaft_child_restarts_total',
      help: 'Pool child processes forked again after an unexpected exit.',
      type: MetricType.COUNTER,
      samples: restarts,
    },
    {
      name: 'driveshaft_child_responding',
      help: "Whether the pool's child process sends its heartbeats (1) or has been silent for --child_unresponsive_after (0: stopped, or its event loop is blocked; it is killed and restarted after --child_kill_after).",
      type: MetricType.GAUGE,
      samples: responding,
    },
    {
      name: 'driveshaft_jobs_retried_total',
      help: 'Job attempts POSTed again after a transient failure (connection error, timeout or a retryable HTTP status), after a backoff.',
      type: MetricType.COUNTER,
      samples: retried,
    },
    {
      name: 'driveshaft_jobs_handed_back_total',
      help: 'Jobs given back to gearmand unfailed (the breaker opened or the slot stopped while the job waited to be retried); gearmand runs them again.',
      type: MetricType.COUNTER,
      samples: handedBack,
    },
    {
      name: 'driveshaft_jobs_dead_lettered_total',
      help: "Jobs written to the pool's dead-letter file before their WORK_FAIL.",
      type: MetricType.COUNTER,
      samples: deadLettered,
    },
    {
      name: 'driveshaft_jobs_returned_total',
      help: 'Jobs a gearmand assigned after the slot had stopped waiting for its GRAB (the server was too slow to answer) and the slot was busy by then: given back unstarted; gearmand runs them again.',
      type: MetricType.COUNTER,
      samples: returned,
    },
    {
      name: 'driveshaft_breaker_opened_total',
      help: "Times the pool's circuit breaker opened (stopped taking jobs after transient failures of the endpoint).",
      type: MetricType.COUNTER,
      samples: breakerOpened,
    },
    {
      name: 'driveshaft_breaker_state',
      help: "The pool's circuit breaker: 1 for its current state (closed: jobs flow; open: the pool takes no job until the cool-off ends; half-open: one probe decides), 0 for the others.",
      type: MetricType.GAUGE,
      samples: breaker,
    },
    {
      name: 'driveshaft_function_breaker_opened_total',
      help: "Times a function's circuit breaker opened (the pool stopped taking that function's jobs after transient failures of them; its other functions go on), over every child the pool had.",
      type: MetricType.COUNTER,
      samples: functionOpened,
    },
    {
      name: 'driveshaft_function_breaker_state',
      help: "A function's circuit breaker, for functions that failed since the pool's child started: 1 for its current state (closed: its jobs flow; open: the pool does not register the function, its jobs wait in gearmand; half-open: one slot registers it, one probe decides), 0 for the others.",
      type: MetricType.GAUGE,
      samples: functionBreaker,
    },
    {
      name: 'driveshaft_retrying_jobs',
      help: 'Jobs held by a slot waiting for their next attempt.',
      type: MetricType.GAUGE,
      samples: retrying,
    },
    {
      name: 'driveshaft_admitted_slots',
      help: 'Slots allowed to hold a job right now: worker_count while the breaker is closed and ramped up, fewer while it ramps up after re-closing, 0 while open.',
      type: MetricType.GAUGE,
      samples: admitted,
    },
    {
      name: 'driveshaft_pool_paused',
      help: 'Whether an operator paused the pool (1: no slot takes a new job, running jobs finish, jobs wait in gearmand) or not (0), for every configured pool.',
      type: MetricType.GAUGE,
      samples: poolPaused,
    },
    {
      name: 'driveshaft_function_paused',
      help: "Whether an operator paused the function in the pool (1: no slot registers it, its jobs wait in gearmand while the pool's other functions run) or not (0), for every configured function.",
      type: MetricType.GAUGE,
      samples: functionPaused,
    },
    ...flowFamilies(flows),
  ];
}

function serverConnected(observation: Observation, label: string): boolean {
  for (const child of observation.children) {
    for (const slot of child.status?.slots ?? []) {
      if (slot.connections?.some((c) => c.server === label && c.connected) === true) return true;
    }
  }
  return false;
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────
// /readyz

export interface Readiness {
  ready: boolean;
  /** Why each pool that should serve does not, by pool name. */
  problems: Array<{ pool: string; reason: string }>;
}

/**
 * Ready when every configured pool with worker_count > 0 has at least one slot registered with at least
 * one gearmand, its circuit breaker closed (open or half-open, the pool takes no jobs, or one probe
 * only) and at least one of its functions' breakers closed (a pool whose other functions run is
 * serving). A daemon that is starting or stopping is not ready whatever its pools say. A pool an
 * operator paused is ready: the pause is deliberate, and a load balancer or an orchestrator acting on
 * it would only add a second outage (pausedPools says which are).
 */
export function readiness(observation: Observation): Readiness {
  const problems: Array<{ pool: string; reason: string }> = [];
  if (observation.state === 'starting' || observation.state === 'stopping' || observation.state === 'stopped') {
    problems.push({ pool: '*', reason: `the daemon is ${observation.state}` });
  }
  for (const pool of Object.values(observation.pools)) {
    if (pool.workerCount === 0) continue;
    const live = childrenOf(observation, pool.name).filter((child) => !child.retiring);
    const child = live[0];
    let reason: string | null = null;
    if (child === undefined) {
      reason = 'no child process';
    } else if (child.state === 'failed') {
      reason = `marked failed (${child.failReason ?? 'crash loop'}); send SIGHUP to retry`;
    } else if (isUnresponsive(child)) {
      reason = `child ${child.pid ?? '?'} unresponsive: no heartbeat for ${Math.max(0, observation.takenAt - (child.unresponsiveSince as number))} ms`;
    } else if (child.status === null) {
      reason = child.pid === null ? `child not running (${child.state})` : `child not answering (${child.statusError ?? 'no status'})`;
    } else if (child.status.delivery != null && child.status.delivery.breaker !== BreakerState.CLOSED) {
      const delivery = child.status.delivery;
      reason = `circuit breaker ${delivery.breaker} since ${new Date(delivery.since).toISOString()}${delivery.lastReason === null ? '' : ` (${delivery.lastReason})`}`;
    } else {
      const slots = child.status.slots.filter((slot) => !slot.stopping);
      if (!slots.some((slot) => slot.connectedServers > 0)) {
        reason = `no slot is registered with any gearmand (${slots.length} slots, ${observation.servers.length} servers: ${observation.servers.map((s) => s.label).join(', ')})`;
      } else {
        reason = allPausedReason(functionBreakers(child.status.delivery ?? null, pool.jobsList), pool.jobsList);
      }
    }
    if (reason !== null) problems.push({ pool: pool.name, reason });
  }
  return { ready: problems.length === 0, problems };
}

/** The configured pools an operator paused, wholly or some of their functions, each with a one-line account (/readyz lists them). */
export function pausedPools(observation: Observation): Array<{ pool: string; reason: string }> {
  const paused: Array<{ pool: string; reason: string }> = [];
  for (const pool of Object.values(observation.pools)) {
    const pause = poolPause(observation, pool.name);
    if (pause === null) continue;
    const parts: string[] = [];
    if (pause.pool !== null) parts.push(`paused since ${new Date(pause.pool.since).toISOString()} by ${pause.pool.by}`);
    if (pause.functions.length > 0) parts.push(`${pause.functions.length === 1 ? 'function' : 'functions'} paused: ${pause.functions.map((f) => f.function).join(', ')}`);
    if (parts.length > 0) paused.push({ pool: pool.name, reason: parts.join('; ') });
  }
  return paused;
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────
// /status

export interface StatusSlot {
  id: string;
  state: SlotState;
  /** The `threads` shutdown flag. */
  stopping: boolean;
  job: { handle: string; unique: string; function: string; server: string; startedAt: string; ageMs: number } | null;
  connectedServers: number;
}

export interface StatusPool {
  name: string;
  configured: boolean;
  workerCount: number;
  functions: string[];
  /** The endpoint, its password (if any) redacted. */
  uri: string | null;
  /** False while a child of the pool has sent no heartbeat for --child_unresponsive_after. */
  childResponding: boolean;
  /**
   * `responding`: the child answered this status poll and is sending its heartbeats. `unresponsiveSince`:
   * its last heartbeat, when it has been silent for --child_unresponsive_after since.
   */
  children: Array<{
    pid: number | null;
    state: string;
    responding: boolean;
    unresponsiveSince: string | null;
    restarts: number;
    retiring: boolean;
    failReason: string | null;
    error: string | null;
    /** The pause the child applies, as it reports it (null: it did not answer, or is older). */
    flow: { paused: boolean; pausedFunctions: string[] } | null;
  }>;
  slots: StatusSlot[];
  slotCounts: Record<SlotState, number>;
  /**
   * Per configured server: slots registered with it, every connection state seen, and since when the
   * pool skips it because a GRAB went unanswered (ISO time; null while it answers).
   */
  servers: Array<{ server: string; connectedSlots: number; slots: number; states: Record<string, number>; suspectSince: string | null }>;
  counters: ChildCounters;
  jobs: Record<string, { completed: number; failed: number; timedOut: number; requeued: number; count: number; durationSumSeconds: number }>;
  http: Record<string, number>;
  childRestarts: number;
  /** Retries and circuit breaker; null while no child of the pool reports them. */
  delivery: StatusDelivery | null;
  /** What an operator paused (docs/operations.md, Pause and resume), as the master records it, and the pool's limits. */
  flow: StatusFlow;
}

export interface StatusFlow {
  paused: boolean;
  /** When and by whom (the status port peer) the pool was paused; null while it is not. */
  pausedSince: string | null;
  pausedBy: string | null;
  /** Functions paused, in jobs_list order. */
  pausedFunctions: Array<{ function: string; since: string; by: string }>;
  /** Rate limit and concurrency limit (docs/flow-control.md); null while no child of the pool reports them. */
  limits: StatusLimits | null;
}

export interface StatusDelivery {
  breaker: BreakerState;
  /** When the breaker last changed state. */
  since: string;
  /** The transient failure that opened the breaker (or the last one seen). */
  lastReason: string | null;
  admittedSlots: number;
  retrying: number;
  /** Times the breaker opened, over every child the pool had. */
  openedTotal: number;
  /** By function name: the breakers of the pool's functions that failed since its child started (a function not listed is closed). */
  functions: Record<string, StatusFunctionBreaker>;
}

export interface StatusFunctionBreaker {
  breaker: BreakerState;
  /** When the function's breaker last changed state. */
  since: string;
  /** The transient failure that opened it (or the last one seen). */
  lastReason: string | null;
  /** Times it opened, over every child the pool had. */
  openedTotal: number;
}

export interface StatusDocument {
  version: string;
  pid: number;
  state: string;
  generatedAt: string;
  startedAt: string;
  uptimeSeconds: number;
  config: { file: string; loadedAt: string; servers: string[] };
  reloads: { ok: number; failed: number };
  childRestarts: number;
  ready: Readiness;
  pools: StatusPool[];
  gearmand: Array<{ server: string; up: boolean; scrapeOk: boolean; scrapedAt: string | null; scrapeMs: number; error: string | null; functions: AdminFunctionStatus[] }>;
}

function statusDelivery(delivery: DeliveryStatus | null, breakers: readonly FunctionBreakerView[], totals: PoolTotals | undefined): StatusDelivery | null {
  if (delivery === null) return null;
  // fromEntries makes own properties, so a function named "__proto__" is a key like any other.
  const functions = Object.fromEntries(
    breakers.map((b) => [b.function, { breaker: b.breaker, since: new Date(b.since).toISOString(), lastReason: b.lastReason, openedTotal: totals?.functionBreakerOpened.get(b.function) ?? 0 }]),
  );
  return {
    breaker: delivery.breaker,
    since: new Date(delivery.since).toISOString(),
    lastReason: delivery.lastReason,
    admittedSlots: delivery.admitted,
    retrying: delivery.retrying,
    openedTotal: totals?.breakerOpened ?? 0,
    functions,
  };
}

function statusFlow(pause: PoolPauseView | null): Omit<StatusFlow, 'limits'> {
  return {
    paused: pause?.pool != null,
    pausedSince: pause?.pool == null ? null : new Date(pause.pool.since).toISOString(),
    pausedBy: pause?.pool?.by ?? null,
    pausedFunctions: (pause?.functions ?? []).map((f) => ({ function: f.function, since: new Date(f.since).toISOString(), by: f.by })),
  };
}

export function statusDocument(observation: Observation, scrapes: readonly GearmandScrape[]): StatusDocument {
  const now = observation.takenAt;
  const pools: StatusPool[] = observation.poolNames.map((name) => {
    const config = observation.pools[name];
    const totals = observation.totals.get(name);
    const children = childrenOf(observation, name);
    const delivery = poolDelivery(children);
    const slots: StatusSlot[] = [];
    const slotCounts: Record<SlotState, number> = { idle: 0, busy: 0, stopping: 0 };
    const suspect = poolSuspectServers(children);
    const servers = new Map(
      observation.servers.map((s) => {
        const since = suspect.get(s.label);
        return [s.label, { server: s.label, connectedSlots: 0, slots: 0, states: {} as Record<string, number>, suspectSince: since === undefined ? null : new Date(since).toISOString() }];
      }),
    );
    for (const { slot, child } of slotsOf(observation, name)) {
      const state = slotState(slot, child);
      slotCounts[state]++;
      const job = slot.job;
      slots.push({
        id: slot.id,
        state,
        stopping: state === SlotState.STOPPING,
        job:
          job === null
            ? null
            : { handle: job.handle, unique: job.unique, function: job.functionName, server: job.server, startedAt: new Date(job.startedAt).toISOString(), ageMs: Math.max(0, now - job.startedAt) },
        connectedServers: slot.connectedServers,
      });
      for (const connection of slot.connections ?? []) {
        const entry = servers.get(connection.server);
        if (entry === undefined) continue;
        entry.slots++;
        if (connection.connected) entry.connectedSlots++;
        entry.states[connection.state] = (entry.states[connection.state] ?? 0) + 1;
      }
    }
    const jobs: StatusPool['jobs'] = {};
    for (const fn of functionsOf(observation, name, totals)) {
      const f = totals?.metrics.functions[fn] ?? emptyFunctionMetrics();
      const count = f.buckets.reduce((sum, n) => sum + n, 0);
      jobs[fn] = { completed: f.completed, failed: f.failed, timedOut: f.timedOut, requeued: f.requeued, count, durationSumSeconds: f.durationSum };
    }
    return {
      name,
      configured: config !== undefined,
      workerCount: config?.workerCount ?? 0,
      functions: config?.jobsList ?? [],
      uri: config === undefined ? null : redactUris(config.jobProcessingUri),
      childResponding: childResponding(observation, name),
      children: children.map((child) => ({
        pid: child.pid,
        state: child.state,
        responding: child.status !== null && !isUnresponsive(child),
        unresponsiveSince: isUnresponsive(child) ? new Date(child.unresponsiveSince as number).toISOString() : null,
        restarts: child.restarts,
        retiring: child.retiring,
        failReason: child.failReason,
        error: child.status === null && child.pid !== null ? child.statusError : null,
        flow: child.status?.flow ?? null,
      })),
      slots,
      slotCounts,
      servers: [...servers.values()],
      counters: totals?.counters ?? zeroCounters(),
      jobs,
      http: totals?.metrics.http ?? {},
      childRestarts: totals?.restarts ?? 0,
      delivery: statusDelivery(delivery, poolFunctionBreakers(observation, name, delivery), totals),
      flow: { ...statusFlow(poolPause(observation, name)), limits: statusLimits(poolFlow(children)) },
    };
  });
  return {
    version: observation.version,
    pid: observation.pid,
    state: observation.state,
    generatedAt: new Date(now).toISOString(),
    startedAt: new Date(observation.startedAt).toISOString(),
    uptimeSeconds: Math.floor((now - observation.startedAt) / 1000),
    config: { file: observation.configFile, loadedAt: new Date(observation.configLoadedAt).toISOString(), servers: observation.servers.map((s) => s.label) },
    reloads: observation.reloads,
    childRestarts: observation.childRestarts,
    ready: readiness(observation),
    pools,
    gearmand: scrapes.map((scrape) => ({
      server: scrape.server,
      up: serverConnected(observation, scrape.server),
      scrapeOk: scrape.ok,
      scrapedAt: scrape.at === 0 ? null : new Date(scrape.at).toISOString(),
      scrapeMs: scrape.durationMs,
      error: scrape.error,
      functions: scrape.functions,
    })),
  };
}
