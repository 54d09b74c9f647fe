/**
 * One daemon through the many-pools scenario: P pools of S slots on a fresh gearmand and endpoint,
 * idle, then J background jobs per pool (one function per pool), then a quiet period sampled once a
 * second. Memory is read per process from smaps_rollup (smaps.ts).
 */
import { startGearmand } from '../../test/helpers/gearmand.js';
import { startDaemon, waitRegistered, type PoolSpec } from '../e2e/daemon.js';
import { startEndpoint } from '../e2e/endpoint.js';
import { makeJobs, queueBackground } from '../e2e/gearman-client.js';
import { livePids } from '../e2e/live-pids.js';
import { delay, queueEmpty } from '../e2e/measure.js';
import { treeMemory, type TreeMemory } from './smaps.js';

/** What runs: our daemon (any build, any Node flags and environment) or the original. */
export interface Variant {
  label: string;
  flavour: 'ours' | 'original';
  bin: string;
  nodeArgs: string[];
  env: Record<string, string>;
}

export interface ScenarioShape {
  pools: number;
  slots: number;
  jobsPerPool: number;
  idleS: number;
  quietS: number;
}

/** The command line of bench:memory (many-pools.ts). */
export interface Options extends ScenarioShape {
  original: boolean;
  variants: Variant[];
  rounds: number;
  floors: boolean;
  out: string | undefined;
  keepTmp: boolean;
}

export interface PoolsRun {
  variant: Variant;
  /** From spawning the daemon to gearmand listing every slot. */
  registeredMs: number;
  idle: TreeMemory;
  /** From queueing the first job to gearmand's queue being empty. */
  workMs: number;
  /** Read once gearmand's queue is empty; quiet[0] is this sample. */
  afterWork: TreeMemory;
  /** One sample per second of quiet, from the end of the work (quiet[0] = afterWork). */
  quiet: TreeMemory[];
  jobs: number;
  /** The endpoint logged exactly `jobs` requests, all 200, and gearmand has nothing queued. */
  integrity: { ok: boolean; logged: number; non200: number; queueEmpty: boolean };
  error?: string;
}

const REGISTER_TIMEOUT_MS = 120_000;
const DRAIN_TIMEOUT_MS = 60_000;
const SAMPLE_INTERVAL_MS = 1000;

export function poolSpecs(shape: ScenarioShape): PoolSpec[] {
  return Array.from({ length: shape.pools }, (_, i) => ({ name: `pool${i}`, slots: shape.slots, functionName: `many_pools_${i}` }));
}

export async function runPools(variant: Variant, shape: ScenarioShape, dir: string): Promise<PoolsRun> {
  const gearmand = await startGearmand();
  livePids.add(gearmand.pid);
  const endpoint = await startEndpoint({ dir });
  livePids.add(endpoint.pid);
  const pools = poolSpecs(shape);
  const spawnedAt = Date.now();
  const daemon = await startDaemon({
    bin: variant.bin,
    flavour: variant.flavour,
    dir,
    gearmand,
    endpointUrl: endpoint.url,
    pools,
    logLevel: 'warn',
    nodeArgs: variant.nodeArgs,
    env: variant.env,
  });
  livePids.add(daemon.pid);
  try {
    await waitRegistered(gearmand, daemon, pools, REGISTER_TIMEOUT_MS);
    const registeredMs = Date.now() - spawnedAt;
    await delay(shape.idleS * 1000);
    const idle = treeMemory(daemon.pid);

    const jobs = makeJobs(shape.pools * shape.jobsPerPool, pools.map((pool) => pool.functionName), `mp-${variant.label}`);
    const lineBase = endpoint.count();
    const workStart = Date.now();
    await queueBackground(gearmand.port, jobs, 1);
    while (endpoint.count() - lineBase < jobs.length) {
      if (Date.now() - workStart > DRAIN_TIMEOUT_MS) throw new Error(`only ${endpoint.count() - lineBase} of ${jobs.length} jobs reached the endpoint in ${DRAIN_TIMEOUT_MS} ms`);
      await delay(10);
    }
    const empty = await queueEmpty(gearmand, pools.map((pool) => pool.functionName), 10_000);
    const workMs = Date.now() - workStart;
    const afterWork = treeMemory(daemon.pid);
    const quiet = [afterWork];
    for (let second = 1; second <= shape.quietS; second++) {
      await delay(Math.max(0, afterWork.atMs + second * SAMPLE_INTERVAL_MS - Date.now()));
      quiet.push(treeMemory(daemon.pid));
    }
    const lines = endpoint.lines(lineBase);
    const non200 = lines.filter((line) => line.status !== 200).length;
    return {
      variant,
      registeredMs,
      idle,
      workMs,
      afterWork,
      quiet,
      jobs: jobs.length,
      integrity: { ok: lines.length === jobs.length && non200 === 0 && empty, logged: lines.length, non200, queueEmpty: empty },
    };
  } finally {
    await daemon.stop();
    livePids.delete(daemon.pid);
    await endpoint.stop();
    livePids.delete(endpoint.pid);
    await gearmand.stop();
    livePids.delete(gearmand.pid);
  }
}

/** Per pool child: USS over its idle figure, in KiB, at each quiet sample (children present at idle). */
export function childExcessKiB(run: PoolsRun): number[][] {
  return run.idle.children.map((idle) => run.quiet.map((sample) => (sample.children.find((c) => c.pid === idle.pid)?.ussKiB ?? NaN) - idle.ussKiB));
}

/**
 * Seconds of quiet until every child was within `marginKiB` of its idle USS (and stayed so to the
 * end); NaN if some child never was. 0 when already so right after the work.
 */
export function secondsUntilBack(run: PoolsRun, marginKiB: number): number {
  const excess = childExcessKiB(run);
  if (excess.length === 0) return NaN;
  let from = NaN;
  for (let i = run.quiet.length - 1; i >= 0; i--) {
    if (excess.every((series) => (series[i] as number) <= marginKiB)) from = i;
    else break;
  }
  return from;
}
