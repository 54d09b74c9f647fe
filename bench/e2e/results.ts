/**
 * What the e2e benchmark measures, as the scenarios produce it, the report reads it and the JSON
 * result file holds it.
 */
import type { Mode } from './options.js';
import type { ProfileSummary } from './profile.js';

/** Label suffix of a scenario run with signing on. */
export const SIGNED_SUFFIX = '+signed';

export interface CpuShare {
  /** CPU µs per job of the measured workers (daemon, echo workers or gearman -w processes). */
  workers: number;
  gearmand: number;
  endpoint: number;
  /** This harness (submitting, polling). */
  harness: number;
}

export interface Integrity {
  /** Requests the endpoint logged during the run. */
  answered: number;
  non200: number;
  /** gearmand `status` shows no job queued or running for the run's functions. */
  queueEmpty: boolean;
  /** Daemon counters (status port `counters`) over the run, when the binary has them. */
  completed?: number;
  failed?: number;
  /** Only with --verify-bodies: uniques never seen and uniques seen more than once. */
  lost?: number;
  duplicated?: number;
  ok: boolean;
  problems: string[];
}

export interface ThroughputResult {
  kind: 'throughput';
  mode: 'queue' | 'cold' | 'concurrent';
  jobs: number;
  /** Jobs per second from the first to the last request/answer. */
  rate: number;
  spanMs: number;
  cpuUsPerJob: CpuShare;
  /** Sum of all measured processes' CPU over the span, in cores (2 = the whole machine). */
  coresBusy: number;
  /**
   * CPU used over the same time by processes this benchmark did not start (other engineers' tests),
   * in cores. Above ~0.3 on 2 cores the run competed for CPU and its absolute figures are low.
   */
  otherCores: number;
  /** CPU µs per job per process of the daemon tree (master first). */
  perProcess?: Array<{
    pid: number;
    name: string;
    cpuUsPerJob: number;
    sysUsPerJob: number;
    /**
     * Time the process spent runnable but waiting for a core, ÷ its time on one, over the run
     * (/proc/<pid>/schedstat; null when unreadable). Well above 0.1 the run was short of cores at
     * moments even if the machine as a whole had idle time: on a 2-vCPU VM a process woken by a
     * loopback write often waits for its writer's core.
     */
    waitPerRun?: number | null;
    /** Context switches of the main thread per job: the event loop going to sleep (voluntary), and preemptions. */
    sleepsPerJob?: number | null;
    preemptionsPerJob?: number | null;
    rssBeforeKiB: number;
    rssAfterKiB: number;
    /** The after-run RSS split: anonymous (heap, malloc) and file-backed (the node binary). */
    rssAnonAfterKiB: number;
    rssFileAfterKiB: number;
    /** null when smaps_rollup could not be read. */
    pssBeforeKiB: number | null;
    pssAfterKiB: number | null;
  }>;
  rssBeforeKiB?: number;
  rssAfterKiB?: number;
  /** PSS of the daemon's processes, summed (smaps_rollup): lowered by every other process sharing a page. */
  pssBeforeKiB?: number | null;
  pssAfterKiB?: number | null;
  /**
   * "PSS alone": every page resident in the daemon's processes counted once, as their summed PSS would
   * be if nothing else on the machine mapped the node binary (pagemap; null when not root).
   */
  aloneBeforeKiB?: number | null;
  aloneAfterKiB?: number | null;
  /** Distinct keep-alive connections the endpoint saw. */
  httpConnections?: number;
  /** The most file descriptors held at once during the run (sampled every 250 ms): the daemon's processes summed, gearmand, the endpoint. */
  fdsPeak?: { daemon: number; daemonProcess?: number; gearmand: number; endpoint: number };
  integrity?: Integrity;
}

export interface LatencyResult {
  kind: 'latency';
  jobs: number;
  failed: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  meanUs: number;
}

export type RunResult = ThroughputResult | LatencyResult;

export interface ScenarioResult {
  label: string;
  binary: 'ours' | 'compare';
  /** For the compare binary: another build of ours or the original. */
  compareKind?: 'build' | 'original';
  slots: number;
  pools: number;
  /** A slow-endpoint scenario: the endpoint's delay per request; Little's law gives slots × pools ÷ delay as the ideal rate. */
  delayMs?: number;
  idleRssKiB?: number;
  /** The idle sample's PSS sum (null when smaps_rollup was unreadable). */
  idlePssKiB?: number | null;
  /** The idle sample's "PSS alone" (see ThroughputResult.aloneAfterKiB). */
  idleAloneKiB?: number | null;
  /**
   * PSS alone SETTLED_AFTER_RUN_MS after the first queue run drained: what the daemon keeps once the
   * burst is over (the "after" figures are sampled the moment the last job is answered).
   */
  settledAloneKiB?: number | null;
  /** The idle sample per process, master first. */
  idleByProcess?: MemoryByProcess[];
  idleProcesses?: number;
  registerMs?: number;
  runs: Partial<Record<Mode, RunResult>>;
  error?: string;
  profile?: ProfileSummary[];
  load: [number, number, number];
  /** The ceiling measured right before this scenario (or the run's only one). */
  ceiling?: CeilingResult;
  /** Every queue-mode run when --repeat > 1 (runs.queue is their median by rate). */
  queueRuns?: ThroughputResult[];
  /** --warmup: the unmeasured queue runs before them (their integrity counts; the first has the after-one-run memory). */
  warmupRuns?: ThroughputResult[];
  /**
   * 1 slot only: the Node floor (echo-worker.ts --http) draining the same N jobs through the same
   * endpoint and gearmand — what a Node worker with no HTTP library, timers or bookkeeping reaches.
   */
  floor?: ThroughputResult;
  /** With --repeat > 1: every measured run of the Node floor (`floor` is their median by rate, as for the daemon). */
  floorRuns?: ThroughputResult[];
  /** The Node floor's foreground latency (latency mode), the 1-slot p50 any Node daemon starts from. */
  floorLatency?: LatencyResult;
  floorError?: string;
  /**
   * 1 and 10 slots: the undici floor (echo-worker.ts --http --undici, as many connections as slots): the Node
   * floor POSTing through our undici adapter.
   */
  undiciFloor?: ThroughputResult;
  /** With --repeat > 1: every measured run of the undici floor (`undiciFloor` is their median by rate). */
  undiciFloorRuns?: ThroughputResult[];
  /** 10 slots with --warmup ≥ 1: the undici floor's first run, a fresh Node process's first N jobs (the cold-start target's floor). */
  undiciFloorFirst?: ThroughputResult;
  /**
   * 10 slots: the contract floor (echo-worker.ts --http --contract, 10 connections): the undici floor
   * sending the contract's request (the daemon's RequestBuilder: body, job headers, traceparent) and
   * reading the answer with the daemon's interpretBody. Between it and the daemon: the daemon's own machinery.
   */
  contractFloor?: ThroughputResult;
  contractFloorRuns?: ThroughputResult[];
  contractFloorFirst?: ThroughputResult;
}

export interface MemoryByProcess {
  pid: number;
  rssKiB: number;
  rssAnonKiB: number;
  rssFileKiB: number;
  pssKiB: number | null;
}

/** NaN (not read) becomes null, which JSON can hold. */
export function orNull(kib: number): number | null {
  return Number.isFinite(kib) ? kib : null;
}

/** Two bare Node processes of this design (memory-floor.ts), sampled like the daemon at idle. */
export interface MemoryFloor {
  aloneKiB: number;
  pssKiB: number;
  rssKiB: number;
}

export interface CeilingResult {
  /** When it was measured: 'start', or right before which scenario. */
  at: string;
  node?: ThroughputResult;
  nodeConcurrent?: ThroughputResult;
  libgearman?: ThroughputResult;
  latencyNode?: LatencyResult;
  latencyLibgearman?: LatencyResult;
  /**
   * Foreground latency with as many echo connections asleep as the scenario has slots per pool:
   * gearmand wakes every sleeping worker for each job, so this is the floor for that slot count.
   */
  latencyNodeHerd?: LatencyResult & { connections: number };
  errors: string[];
}

/** One performance target as judged from a run: the report prints it, the JSON keeps it. */
export interface Target {
  name: string;
  value: string;
  goal: string;
  pass: boolean | undefined;
  note?: string;
}

/** Little's law: with every slot busy for the endpoint's whole delay, slots × pools ÷ delay jobs/s; undefined unless slow. */
export function idealRate(s: Pick<ScenarioResult, 'delayMs' | 'slots' | 'pools'>): number | undefined {
  return s.delayMs === undefined ? undefined : (s.slots * s.pools * 1000) / s.delayMs;
}

/** The scenario's first queue run, warm-up or measured: the one "after one N-job run" memory is about. */
export function firstQueueRun(s: ScenarioResult): RunResult | undefined {
  return s.warmupRuns?.[0] ?? s.queueRuns?.[0] ?? s.runs.queue;
}
