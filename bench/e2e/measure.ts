/**
 * The e2e benchmark's measurement building blocks (CPU and memory snapshots of process groups,
 * foreground latency, queue drains) and the ceiling: gearmand drained by workers that answer at once.
 */
import { startGearmand, type Gearmand } from '../../test/helpers/gearmand.js';
import { gearmanCliBinary, startEchoWorkers, startLibgearmanWorkers, type EchoWorkers } from './ceiling.js';
import { GearmanClient, makeJobs, queueBackground, type BenchJob } from './gearman-client.js';
import { livePids } from './live-pids.js';
import type { Options } from './options.js';
import { cpuDeltaUs, machineBusyUs, nowMs, sampleProcesses, signalAll, type ProcessSample, type TreeSample } from './proc-stats.js';
import { orNull, type CeilingResult, type CpuShare, type LatencyResult, type ThroughputResult } from './results.js';

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ── Measurement building blocks ───────────────────────────────────────────────────────────────────

export interface Groups {
  workers: () => number[];
  gearmand: Gearmand;
  endpointPid?: number;
}

export interface Snapshot {
  workers: TreeSample;
  gearmand: TreeSample;
  endpoint: TreeSample | undefined;
  harnessUs: number;
  machineUs: number;
}

/** CPU (total and kernel) per job and memory of each process of the workers' tree over a run of `n` jobs; PSS when `pss`. */
export function perProcessFigures(before: Snapshot, after: Snapshot, n: number, pss: boolean): NonNullable<ThroughputResult['perProcess']> {
  const start = new Map(before.workers.processes.map((p) => [p.pid, p]));
  return after.workers.processes.map((p) => ({
    pid: p.pid,
    name: p.name,
    cpuUsPerJob: (p.cpuUs - (start.get(p.pid)?.cpuUs ?? 0)) / n,
    sysUsPerJob: (p.sysUs - (start.get(p.pid)?.sysUs ?? 0)) / n,
    waitPerRun: runQueueShare(start.get(p.pid), p),
    sleepsPerJob: orNull((p.sleeps - (start.get(p.pid)?.sleeps ?? NaN)) / n),
    preemptionsPerJob: orNull((p.preemptions - (start.get(p.pid)?.preemptions ?? NaN)) / n),
    rssBeforeKiB: start.get(p.pid)?.rssKiB ?? 0,
    rssAfterKiB: p.rssKiB,
    rssAnonAfterKiB: p.rssAnonKiB,
    rssFileAfterKiB: p.rssFileKiB,
    pssBeforeKiB: pss ? orNull(start.get(p.pid)?.pssKiB ?? NaN) : null,
    pssAfterKiB: pss ? orNull(p.pssKiB) : null,
  }));
}

/** Time a process waited runnable for a core ÷ its time on one, between two samples; null when unknown or it did not run. */
function runQueueShare(before: ProcessSample | undefined, after: ProcessSample): number | null {
  if (before === undefined) return null;
  const run = after.runNs - before.runNs;
  const wait = after.waitNs - before.waitNs;
  return Number.isFinite(run) && Number.isFinite(wait) && run > 0 ? wait / run : null;
}

export function snapshot(groups: Groups): Snapshot {
  const usage = process.cpuUsage();
  return {
    workers: sampleProcesses(groups.workers(), { pss: true }),
    gearmand: sampleProcesses([groups.gearmand.pid]),
    endpoint: groups.endpointPid === undefined ? undefined : sampleProcesses([groups.endpointPid]),
    harnessUs: usage.user + usage.system,
    machineUs: machineBusyUs(),
  };
}

function cpuShare(before: Snapshot, after: Snapshot, jobs: number): { share: CpuShare; totalUs: number } {
  const workers = cpuDeltaUs(before.workers, after.workers);
  const gearmand = cpuDeltaUs(before.gearmand, after.gearmand);
  const endpoint = before.endpoint && after.endpoint ? cpuDeltaUs(before.endpoint, after.endpoint) : 0;
  const harness = after.harnessUs - before.harnessUs;
  return {
    share: { workers: workers / jobs, gearmand: gearmand / jobs, endpoint: endpoint / jobs, harness: harness / jobs },
    totalUs: workers + gearmand + endpoint + harness,
  };
}

export async function queueEmpty(gearmand: Gearmand, functions: readonly string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await gearmand.status().catch(() => undefined);
    if (status !== undefined) {
      const busy = status.filter((s) => functions.includes(s.function)).reduce((sum, s) => sum + s.total, 0);
      if (busy === 0) return true;
    }
    if (Date.now() > deadline) return false;
    await delay(20);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export async function measureLatency(
  port: number,
  functionName: string,
  options: Options,
  prefix: string,
  budgetMs = options.latencySeconds * 1000,
): Promise<LatencyResult> {
  const client = await GearmanClient.connect(port);
  try {
    const jobs = makeJobs(options.latencyWarmup + options.latencyJobs, [functionName], prefix);
    const times: number[] = [];
    let failed = 0;
    // With hundreds of sleeping slots a job can take tens of ms: bound the run by time, not count.
    const warmupEnd = Date.now() + budgetMs / 4;
    let timedEnd = Infinity;
    for (let i = 0; i < jobs.length; i++) {
      if (i < options.latencyWarmup && Date.now() > warmupEnd) i = options.latencyWarmup;
      if (i >= options.latencyWarmup && timedEnd === Infinity) timedEnd = Date.now() + budgetMs;
      if (Date.now() > timedEnd && times.length > 0) break;
      const start = process.hrtime.bigint();
      const outcome = await withDeadline(client.submitForeground(jobs[i] as BenchJob), 30_000, 'a foreground job');
      const us = Number(process.hrtime.bigint() - start) / 1000;
      if (i < options.latencyWarmup) continue;
      if (!outcome.ok) failed++;
      times.push(us);
    }
    times.sort((a, b) => a - b);
    return {
      kind: 'latency',
      jobs: times.length,
      failed,
      p50Us: percentile(times, 50),
      p90Us: percentile(times, 90),
      p99Us: percentile(times, 99),
      maxUs: times[times.length - 1] ?? NaN,
      meanUs: times.reduce((a, b) => a + b, 0) / Math.max(1, times.length),
    };
  } finally {
    client.close();
  }
}

// ── The ceiling ───────────────────────────────────────────────────────────────────────────────────

export async function measureCeiling(options: Options, at: string, herdSlots: number): Promise<CeilingResult> {
  const result: CeilingResult = { at, errors: [] };
  const fn = 'bench_ceiling';
  const n = options.jobs;
  const drainMs = options.drainTimeoutS * 1000;

  // Codec echo workers: queue-first, then concurrent, on one gearmand.
  {
    const gearmand = await startGearmand();
    livePids.add(gearmand.pid);
    const echo = startEchoWorkers(gearmand.port, [fn], options.ceilingConnections);
    livePids.add(echo.pid);
    try {
      await withDeadline(echo.ready, 10_000, 'echo workers to register');
      const groups: Groups = { workers: () => [echo.pid], gearmand };

      result.node = await echoQueueRun(echo, groups, options, fn, `ceil-${at}-q`, 'echo workers to answer every job');
      if (!(await queueEmpty(gearmand, [fn], 5_000))) result.errors.push('node echo: gearmand queue not empty after the run');

      if (options.modes.includes('concurrent')) {
        await echo.arm(n);
        const beforeC = snapshot(groups);
        const submitting = queueBackground(gearmand.port, makeJobs(n, [fn], `ceil-${at}-c`), 1, options.concurrentWindow);
        const doneC = await withDeadline(echo.done(), drainMs, 'echo workers (concurrent)');
        await submitting;
        const afterC = snapshot(groups);
        result.nodeConcurrent = throughputFrom('concurrent', n, doneC.firstMs, doneC.lastMs, beforeC, afterC);
      }
    } catch (error) {
      result.errors.push(`node echo: ${errorText(error)}`);
    } finally {
      await echo.stop();
      livePids.delete(echo.pid);
      await gearmand.stop();
      livePids.delete(gearmand.pid);
    }
  }

  // libgearman's `gearman -w`: no timestamps of its own, so the drain ends when gearmand's status
  // says the queue is empty (polled every 5 ms: ≤0.3% of a 2 s run).
  const cli = options.libgearman ? gearmanCliBinary() : undefined;
  if (options.libgearman && cli === undefined) result.errors.push('libgearman: gearman CLI not found; skipped');
  if (cli !== undefined) {
    const gearmand = await startGearmand();
    livePids.add(gearmand.pid);
    const workers = startLibgearmanWorkers(cli, gearmand.port, fn, options.ceilingConnections);
    for (const pid of workers.pids) livePids.add(pid);
    try {
      await withDeadline(waitWorkers(gearmand, fn, options.ceilingConnections), 10_000, 'gearman -w workers to register');
      const groups: Groups = { workers: () => workers.pids, gearmand };
      signalAll(workers.pids, 'SIGSTOP');
      await queueBackground(gearmand.port, makeJobs(n, [fn], `ceil-${at}-l`), options.submitConnections);
      const before = snapshot(groups);
      const firstMs = nowMs();
      signalAll(workers.pids, 'SIGCONT');
      const deadline = Date.now() + drainMs;
      for (;;) {
        const status = await gearmand.status();
        if (status.filter((s) => s.function === fn).every((s) => s.total === 0)) break;
        if (Date.now() > deadline) throw new Error('gearman -w workers did not drain the queue in time');
        await delay(5);
      }
      const lastMs = nowMs();
      const after = snapshot(groups);
      result.libgearman = throughputFrom('queue', n, firstMs, lastMs, before, after);
    } catch (error) {
      result.errors.push(`libgearman: ${errorText(error)}`);
    } finally {
      await workers.stop();
      for (const pid of workers.pids) livePids.delete(pid);
      await gearmand.stop();
      livePids.delete(gearmand.pid);
    }
  }

  // Foreground latency with one worker connection.
  if (options.modes.includes('latency')) {
    const gearmand = await startGearmand();
    livePids.add(gearmand.pid);
    try {
      const echo = startEchoWorkers(gearmand.port, [fn], 1);
      livePids.add(echo.pid);
      try {
        await withDeadline(echo.ready, 10_000, 'echo worker to register');
        result.latencyNode = await measureLatency(gearmand.port, fn, options, `ceil-${at}-lat`);
      } finally {
        await echo.stop();
        livePids.delete(echo.pid);
      }
      if (herdSlots > 1) {
        const herd = startEchoWorkers(gearmand.port, [`${fn}_h`], herdSlots);
        livePids.add(herd.pid);
        try {
          await withDeadline(herd.ready, 30_000, `${herdSlots} echo connections to register`);
          const latency = await measureLatency(gearmand.port, `${fn}_h`, options, `ceil-${at}-herd`, (options.latencySeconds * 1000) / 2);
          result.latencyNodeHerd = { ...latency, connections: herdSlots };
        } finally {
          await herd.stop();
          livePids.delete(herd.pid);
        }
      }
      if (cli !== undefined) {
        const workers = startLibgearmanWorkers(cli, gearmand.port, `${fn}_l`, 1);
        for (const pid of workers.pids) livePids.add(pid);
        try {
          await withDeadline(waitWorkers(gearmand, `${fn}_l`, 1), 10_000, 'gearman -w worker to register');
          result.latencyLibgearman = await measureLatency(gearmand.port, `${fn}_l`, options, `ceil-${at}-latl`);
        } finally {
          await workers.stop();
          for (const pid of workers.pids) livePids.delete(pid);
        }
      }
    } catch (error) {
      result.errors.push(`latency: ${errorText(error)}`);
    } finally {
      await gearmand.stop();
      livePids.delete(gearmand.pid);
    }
  }
  return result;
}

async function waitWorkers(gearmand: Gearmand, fn: string, count: number): Promise<void> {
  for (;;) {
    const workers = await gearmand.workers().catch(() => []);
    if (workers.filter((w) => w.functions.includes(fn)).length >= count) return;
    await delay(20);
  }
}

export function throughputFrom(
  mode: ThroughputResult['mode'],
  jobs: number,
  firstMs: number,
  lastMs: number,
  before: Snapshot,
  after: Snapshot,
): ThroughputResult {
  const spanMs = Math.max(lastMs - firstMs, 0.001);
  const { share, totalUs } = cpuShare(before, after, jobs);
  const wallMs = Math.max(after.workers.atMs - before.workers.atMs, 1);
  return {
    kind: 'throughput',
    mode,
    jobs,
    rate: jobs / (spanMs / 1000),
    spanMs,
    cpuUsPerJob: share,
    coresBusy: totalUs / 1000 / wallMs,
    otherCores: Math.max(0, after.machineUs - before.machineUs - totalUs) / 1000 / wallMs,
  };
}

/**
 * Queue mode for echo-worker.ts processes (the ceiling's and the Node floor's): frozen while N jobs are
 * queued, released, timed by their own first-assign/last-complete stamps.
 */
export async function echoQueueRun(echo: EchoWorkers, groups: Groups, options: Options, fn: string, prefix: string, what: string, n = options.jobs): Promise<ThroughputResult> {
  await echo.arm(n);
  signalAll([echo.pid], 'SIGSTOP');
  await queueBackground(groups.gearmand.port, makeJobs(n, [fn], prefix), options.submitConnections);
  const before = snapshot(groups);
  signalAll([echo.pid], 'SIGCONT');
  const done = await withDeadline(echo.done(), options.drainTimeoutS * 1000, what);
  const after = snapshot(groups);
  const result = throughputFrom('queue', n, done.firstMs, done.lastMs, before, after);
  // The kernel's share (stime) beside the total, as for the daemon's processes; the floor's PSS is not read.
  result.perProcess = perProcessFigures(before, after, n, false);
  return result;
}
