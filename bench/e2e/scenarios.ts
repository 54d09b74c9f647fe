/**
 * One scenario (slots × pools) against one binary: its gearmand and endpoint, the daemon started,
 * registered and sampled idle, then each mode run and checked (every job answered once, the queue
 * empty, the daemon's counters), and at 1 slot the Node floor on the same gearmand and endpoint.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startGearmand, type Gearmand } from '../../test/helpers/gearmand.js';
import { startEchoWorkers, type FloorKind } from './ceiling.js';
import { REPO_ROOT, startDaemon, sumCounters, waitRegistered, type Daemon, type PoolSpec } from './daemon.js';
import { startEndpoint, type Endpoint } from './endpoint.js';
import { makeJobs, queueBackground } from './gearman-client.js';
import { livePids } from './live-pids.js';
import { delay, echoQueueRun, errorText, measureLatency, perProcessFigures, queueEmpty, snapshot, throughputFrom, withDeadline, type Groups, type Snapshot } from './measure.js';
import { compareKind, jobsFor, type Options, type ScenarioSpec } from './options.js';
import { loadAverage, openFds, sampleProcesses, signalAll, type TreeSample } from './proc-stats.js';
import { summariseProfileDir } from './profile.js';
import { inspectorBasePort, inspectorUrls, RunProfiler } from './run-profiler.js';
import { orNull, SIGNED_SUFFIX, type Integrity, type LatencyResult, type ScenarioResult, type ThroughputResult } from './results.js';

/** The idle figures are the median of this many samples, this far apart. */
const IDLE_SAMPLES = 5;
const IDLE_SAMPLE_INTERVAL_MS = 100;

export interface ScenarioContext {
  options: Options;
  spec: ScenarioSpec;
  binary: 'ours' | 'compare';
  bin: string;
  dir: string;
  /** Pools sign every request (signing_secrets from a file in `dir`). */
  signed: boolean;
}

function poolsFor(spec: ScenarioSpec, extra: Record<string, unknown> = {}): PoolSpec[] {
  return Array.from({ length: spec.pools }, (_, i) => ({ name: `bench${i}`, slots: spec.slots, functionName: `bench_fn${i}`, extra }));
}

/** A secrets file of `count` secrets: every request carries one HMAC per secret. */
function signingExtra(dir: string, count: number): Record<string, unknown> {
  const file = join(dir, 'bench.whsec');
  writeFileSync(file, Array.from({ length: count }, () => `whsec_${randomBytes(32).toString('base64')}\n`).join(''), { mode: 0o600 });
  return { signing_secrets: { file } };
}

export async function runScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { options, spec } = ctx;
  const label = ctx.signed ? `${spec.label}${SIGNED_SUFFIX}` : spec.label;
  const result: ScenarioResult = { label, binary: ctx.binary, slots: spec.slots, pools: spec.pools, runs: {}, load: loadAverage() };
  if (ctx.binary === 'compare') result.compareKind = compareKind(ctx.bin);
  if (spec.delayMs > 0) result.delayMs = spec.delayMs;
  const pools = poolsFor(spec, ctx.signed ? signingExtra(ctx.dir, options.signingSecrets) : {});
  const functions = pools.map((p) => p.functionName);
  const registerTimeoutMs = 30_000 + spec.slots * spec.pools * 20;
  // Another build of ours (a .js file) speaks our log config; the original takes log4cxx XML.
  const flavour = ctx.binary === 'ours' || compareKind(ctx.bin) === 'build' ? 'ours' : 'original';
  const modes = options.modes;

  const gearmand = await startGearmand();
  livePids.add(gearmand.pid);
  let endpoint: Endpoint | undefined;
  let daemon: Daemon | undefined;
  const profileDir = join(ctx.dir, 'profile');
  const launch = async (): Promise<Daemon> => {
    const inspectPort = options.profileRuns && ctx.binary === 'ours' ? await inspectorBasePort(spec.pools) : undefined;
    const started = await startDaemon({
      bin: ctx.bin,
      flavour,
      dir: ctx.dir,
      gearmand,
      endpointUrl: endpoint!.url,
      pools,
      logLevel: options.logLevel,
      ...(ctx.binary === 'ours'
        ? {
            nodeArgs: [
              ...options.daemonNodeArgs,
              ...(options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
              ...(inspectPort === undefined ? [] : [`--inspect=127.0.0.1:${inspectPort}`]),
            ],
          }
        : {}),
    });
    livePids.add(started.pid);
    return started;
  };
  const stopDaemon = async (): Promise<void> => {
    if (daemon === undefined) return;
    const { graceful } = await daemon.stop(options.profile ? 30_000 : 10_000);
    livePids.delete(daemon.pid);
    if (!graceful) process.stderr.write(`  note: ${spec.label}: the daemon did not stop gracefully (killed)\n`);
    daemon = undefined;
  };

  try {
    endpoint = await startEndpoint({ dir: ctx.dir, verifyBodies: options.verifyBodies, forceNode: options.endpoint === 'node', delayMs: spec.delayMs });
    livePids.add(endpoint.pid);

    // A foreground job behind a slow endpoint takes its delay: nothing to learn from a latency run there.
    const warmModes = modes.filter((m) => m !== 'cold' && !(m === 'latency' && spec.delayMs > 0));
    if (warmModes.length > 0) {
      const t0 = Date.now();
      daemon = await launch();
      await waitRegistered(gearmand, daemon, pools, registerTimeoutMs);
      result.registerMs = Date.now() - t0;
      await delay(options.settleMs);
      // The median of several samples: a single one lands anywhere in the GC cycle, and the per-slot
      // figure divides a difference of a few MiB by 990.
      const idle: TreeSample[] = [];
      for (let i = 0; i < IDLE_SAMPLES; i++) {
        if (i > 0) await delay(IDLE_SAMPLE_INTERVAL_MS);
        idle.push(sampleProcesses(daemon.pids(), { pss: true }));
      }
      idle.sort((a, b) => a.rssKiB - b.rssKiB);
      const median = idle[Math.floor(idle.length / 2)] as TreeSample;
      result.idleRssKiB = median.rssKiB;
      result.idlePssKiB = orNull(median.pssKiB);
      result.idleAloneKiB = orNull(median.uniqueKiB);
      result.idleByProcess = median.processes.map((p) => ({ pid: p.pid, rssKiB: p.rssKiB, rssAnonKiB: p.rssAnonKiB, rssFileKiB: p.rssFileKiB, pssKiB: orNull(p.pssKiB) }));
      result.idleProcesses = median.processes.length;
      let profiler: RunProfiler | undefined;
      if (options.profileRuns && ctx.binary === 'ours') {
        mkdirSync(profileDir, { recursive: true });
        profiler = await RunProfiler.attach(inspectorUrls(daemon.outPath));
      }

      for (const mode of warmModes) {
        const prefix = `${spec.label}-${mode}`;
        if (mode === 'latency') {
          result.runs.latency = await measureLatency(gearmand.port, functions[0] as string, options, prefix);
          continue;
        }
        if (mode === 'queue') {
          // Warm-up runs first (the JIT), then the measured ones; the median of several is the steadier figure.
          const all: ThroughputResult[] = [];
          for (let i = 0; i < options.warmup + options.repeat; i++) {
            const profiled = profiler !== undefined && i >= options.warmup ? { profiler, dir: profileDir } : undefined;
            all.push(await throughputRun(mode, ctx, gearmand, endpoint, daemon, functions, `${prefix}${i}`, undefined, profiled));
            if (i === 0) result.settledAloneKiB = await settledAlone(daemon);
          }
          if (options.warmup > 0) result.warmupRuns = all.slice(0, options.warmup);
          const measured = all.slice(options.warmup);
          if (measured.length > 1) result.queueRuns = measured;
          result.runs.queue = medianByRate(measured);
          continue;
        }
        result.runs[mode] = await throughputRun(mode, ctx, gearmand, endpoint, daemon, functions, prefix);
      }
      profiler?.close();
      await stopDaemon();
    }

    if (ctx.binary === 'ours' && spec.delayMs > 0 && spec.pools === 1 && modes.includes('queue')) {
      try {
        // As many connections as slots, each POSTing through the daemon's undici adapter: what Node and
        // undici reach behind the same slow endpoint with nothing of the daemon.
        const floor = await measureNodeFloor({ ...options, modes: ['queue'] }, gearmand, endpoint, functions[0] as string, `${spec.label}-undici-floor`, 'undici', spec.slots, jobsFor(options, spec));
        result.undiciFloor = floor.queue;
        if (floor.runs !== undefined) result.undiciFloorRuns = floor.runs;
      } catch (error) {
        result.floorError = errorText(error);
      }
    }

    if (ctx.binary === 'ours' && spec.slots === 10 && spec.pools === 1 && spec.delayMs === 0 && modes.includes('queue')) {
      try {
        // What 10 connections cost with nothing of the daemon but its undici adapter: the 10-slot CPU target's floor.
        const floor = await measureNodeFloor({ ...options, modes: ['queue'] }, gearmand, endpoint, functions[0] as string, `${spec.label}-undici-floor`, 'undici', 10);
        result.undiciFloor = floor.queue;
        if (floor.runs !== undefined) result.undiciFloorRuns = floor.runs;
        if (floor.first !== undefined) result.undiciFloorFirst = floor.first;
        // The same with the request and answer handling the HTTP contract asks for: what of the rest is the contract's.
        const contract = await measureNodeFloor({ ...options, modes: ['queue'] }, gearmand, endpoint, functions[0] as string, `${spec.label}-contract-floor`, 'contract', 10);
        result.contractFloor = contract.queue;
        if (contract.runs !== undefined) result.contractFloorRuns = contract.runs;
        if (contract.first !== undefined) result.contractFloorFirst = contract.first;
      } catch (error) {
        result.floorError = errorText(error);
      }
    }

    if (ctx.binary === 'ours' && spec.slots === 1 && spec.pools === 1 && spec.delayMs === 0 && modes.includes('queue')) {
      try {
        const floor = await measureNodeFloor(options, gearmand, endpoint, functions[0] as string, `${spec.label}-floor`);
        result.floor = floor.queue;
        if (floor.runs !== undefined) result.floorRuns = floor.runs;
        if (floor.latency !== undefined) result.floorLatency = floor.latency;
        const undiciFloor = await measureNodeFloor({ ...options, modes: ['queue'] }, gearmand, endpoint, functions[0] as string, `${spec.label}-undici-floor`, 'undici');
        result.undiciFloor = undiciFloor.queue;
        if (undiciFloor.runs !== undefined) result.undiciFloorRuns = undiciFloor.runs;
      } catch (error) {
        result.floorError = errorText(error);
      }
    }

    if (modes.includes('cold')) {
      result.runs.cold = await throughputRun('cold', ctx, gearmand, endpoint, undefined, functions, `${spec.label}-cold`, async () => {
        daemon = await launch();
        return daemon;
      });
      await stopDaemon();
    }
  } catch (error) {
    result.error = errorText(error);
    if (daemon !== undefined) result.error += `\n  daemon output (tail):\n${daemon.output().trim().split('\n').slice(-10).join('\n')}`;
  } finally {
    await stopDaemon().catch(() => undefined);
    if (endpoint !== undefined) {
      await endpoint.stop();
      livePids.delete(endpoint.pid);
    }
    await gearmand.stop();
    livePids.delete(gearmand.pid);
  }
  if ((options.profile || options.profileRuns) && ctx.binary === 'ours') result.profile = summariseProfileDir(profileDir, REPO_ROOT);
  return result;
}

/** The most descriptors each side held at once during a run, sampled every FD_SAMPLE_MS. */
class FdPeaks {
  /** `daemonProcess`: the most one daemon process held (what --check's fd budget is about). */
  readonly peaks = { daemon: 0, daemonProcess: 0, gearmand: 0, endpoint: 0 };
  #lastAt = 0;

  sample(daemonPids: readonly number[], gearmandPid: number, endpointPid: number): void {
    const now = Date.now();
    if (now - this.#lastAt < FD_SAMPLE_MS) return;
    this.#lastAt = now;
    const count = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + (openFds(pid) || 0), 0);
    this.peaks.daemon = Math.max(this.peaks.daemon, count(daemonPids));
    for (const pid of daemonPids) this.peaks.daemonProcess = Math.max(this.peaks.daemonProcess, count([pid]));
    this.peaks.gearmand = Math.max(this.peaks.gearmand, count([gearmandPid]));
    this.peaks.endpoint = Math.max(this.peaks.endpoint, count([endpointPid]));
  }
}

const FD_SAMPLE_MS = 250;

/** How long after a run the settled sample is taken: the daemon's quiet-time GC (src/idle-memory.ts) looks once a second. */
const SETTLED_AFTER_RUN_MS = 3000;

async function settledAlone(daemon: Daemon): Promise<number | null> {
  await delay(SETTLED_AFTER_RUN_MS);
  return orNull(sampleProcesses(daemon.pids(), { pss: true }).uniqueKiB);
}

/** The run of median rate (of an even count, the upper one): the daemon's and the floors' reported run. */
function medianByRate(runs: readonly ThroughputResult[]): ThroughputResult {
  return [...runs].sort((a, b) => a.rate - b.rate)[Math.floor(runs.length / 2)] as ThroughputResult;
}

/**
 * A floor of `kind` (Node, undici or contract; echo-worker.ts) for one slot (or `connections`), measured like the
 * echo ceiling (frozen while N jobs are queued, then released) on the scenario's own gearmand and endpoint, after the
 * daemon has stopped.
 */
async function measureNodeFloor(
  options: Options,
  gearmand: Gearmand,
  endpoint: Endpoint,
  fn: string,
  prefix: string,
  kind: FloorKind = 'node',
  connections = 1,
  n = options.jobs,
): Promise<{ queue: ThroughputResult; runs?: ThroughputResult[]; first?: ThroughputResult; latency?: LatencyResult }> {
  const floor = startEchoWorkers(gearmand.port, [fn], connections, endpoint.url, kind);
  livePids.add(floor.pid);
  try {
    await withDeadline(floor.ready, 10_000 + connections * 5, 'the Node floor worker to register');
    const groups: Groups = { workers: () => [floor.pid], gearmand, endpointPid: endpoint.pid };
    const logged = endpoint.count();
    const what = 'the Node floor worker to answer every job';
    // The floor is Node too: it gets the daemon's warm-up runs before the measured one. Its first run
    // is a fresh process's, as the daemon's first warm-up run is: the cold-start target's floor.
    let first: ThroughputResult | undefined;
    for (let i = 0; i < options.warmup; i++) {
      const warmup = await echoQueueRun(floor, groups, options, fn, `${prefix}-warmup${i}`, what, n);
      first ??= warmup;
    }
    // As many measured runs as the daemon's, and their median by rate as for the daemon: one run of a
    // floor against the median of several of ours made the 10-slot ratio swing with a single placement.
    const measured: ThroughputResult[] = [];
    for (let i = 0; i < Math.max(1, options.repeat); i++) measured.push(await echoQueueRun(floor, groups, options, fn, i === 0 ? prefix : `${prefix}-run${i}`, what, n));
    const run = medianByRate(measured);
    const expected = logged + n * (options.warmup + measured.length);
    const requests = await waitCount(endpoint, expected, 5_000);
    if (requests !== expected) throw new Error(`the endpoint logged ${requests - logged} floor requests for ${n * (options.warmup + measured.length)} jobs`);
    const runs = { queue: run, ...(measured.length > 1 ? { runs: measured } : {}), ...(first === undefined ? {} : { first }) };
    if (!options.modes.includes('latency')) return runs;
    return { ...runs, latency: await measureLatency(gearmand.port, fn, options, `${prefix}-fg`) };
  } finally {
    await floor.stop();
    livePids.delete(floor.pid);
  }
}

/** Resolves once the endpoint's log has not grown for three of nginx's 50 ms flush periods. */
async function logSettled(endpoint: Endpoint): Promise<void> {
  const deadline = Date.now() + 5_000;
  let count = endpoint.count();
  for (;;) {
    await delay(150);
    const now = endpoint.count();
    if (now === count || Date.now() > deadline) return;
    count = now;
  }
}

/** The endpoint's log count once it reached `want` (nginx writes its log line after answering), or at the deadline. */
async function waitCount(endpoint: Endpoint, want: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let count = endpoint.count();
  while (count < want && Date.now() < deadline) {
    await delay(10);
    count = endpoint.count();
  }
  return count;
}

async function throughputRun(
  mode: 'queue' | 'cold' | 'concurrent',
  ctx: ScenarioContext,
  gearmand: Gearmand,
  endpoint: Endpoint,
  running: Daemon | undefined,
  functions: readonly string[],
  prefix: string,
  startCold?: () => Promise<Daemon>,
  profiled?: { profiler: RunProfiler; dir: string },
): Promise<ThroughputResult> {
  const { options, spec } = ctx;
  const n = jobsFor(options, spec);
  const jobs = makeJobs(n, functions, prefix);
  let daemon = running;
  const groups: Groups = { workers: () => (daemon === undefined ? [] : daemon.pids()), gearmand, endpointPid: endpoint.pid };
  // A latency run right before leaves requests in nginx's log buffer: counted here, they would pass
  // for this run's duplicates.
  await logSettled(endpoint);
  const lineBase = endpoint.count();
  const countersBefore = daemon === undefined ? undefined : await countersOf(daemon);
  let before: Snapshot;
  let submitting: Promise<void> | undefined;

  if (mode === 'queue') {
    // Frozen, the daemon cannot take a job before the whole queue is in: the same start as the
    // original's "queue first, then start", but with CPU and RSS sampled exactly before the first job.
    const frozen = daemon!.pids();
    signalAll(frozen, 'SIGSTOP');
    try {
      await queueBackground(gearmand.port, jobs, options.submitConnections);
    } finally {
      before = snapshot(groups);
      // Asked while frozen, the profilers start the moment the daemon runs again.
      const profiling = profiled?.profiler.start();
      signalAll(frozen, 'SIGCONT');
      await profiling;
    }
  } else if (mode === 'cold') {
    await queueBackground(gearmand.port, jobs, options.submitConnections);
    before = snapshot(groups); // no daemon yet: its CPU per job includes its whole startup
    daemon = await startCold!();
  } else {
    before = snapshot(groups);
    submitting = queueBackground(gearmand.port, jobs, 1, options.concurrentWindow);
  }

  // Done when the endpoint has logged every job. The log is flushed every 50 ms; $msec inside it is
  // exact, only this loop's notice of the end lags, while the daemon sits idle.
  const deadline = Date.now() + options.drainTimeoutS * 1000;
  const fds = new FdPeaks();
  while (endpoint.count() - lineBase < n) {
    if (daemon !== undefined && !daemon.alive()) throw new Error(`${mode}: the daemon exited during the run:\n${daemon.output()}`);
    fds.sample(daemon?.pids() ?? [], gearmand.pid, endpoint.pid);
    if (Date.now() > deadline) {
      throw new Error(`${mode}: only ${endpoint.count() - lineBase} of ${n} jobs reached the endpoint within ${options.drainTimeoutS} s`);
    }
    await delay(20);
  }
  const after = snapshot(groups);
  await profiled?.profiler.stop(profiled.dir, prefix);
  await submitting;

  const empty = await queueEmpty(gearmand, functions, 5_000);
  // Late duplicates would arrive now, if any: give the endpoint one more flush period.
  await delay(150);
  const lines = endpoint.lines(lineBase);
  // Behind a slow endpoint the span starts when the first request arrived, not when it was answered:
  // otherwise the first wave's delay would be left out of a run only a few waves long.
  const firstMs = lines.reduce((m, l) => Math.min(m, spec.delayMs > 0 ? l.startMs : l.atMs), Infinity);
  const lastMs = lines.reduce((m, l) => Math.max(m, l.atMs), -Infinity);
  const result = throughputFrom(mode, n, firstMs, lastMs, before, after);
  result.fdsPeak = fds.peaks;

  // Per process of the daemon tree: master first (processTree order).
  result.rssBeforeKiB = mode === 'cold' ? undefined : before.workers.rssKiB;
  result.rssAfterKiB = after.workers.rssKiB;
  result.pssBeforeKiB = mode === 'cold' ? undefined : orNull(before.workers.pssKiB);
  result.pssAfterKiB = orNull(after.workers.pssKiB);
  result.aloneBeforeKiB = mode === 'cold' ? undefined : orNull(before.workers.uniqueKiB);
  result.aloneAfterKiB = orNull(after.workers.uniqueKiB);
  result.perProcess = perProcessFigures(before, after, n, true);
  result.httpConnections = new Set(lines.map((l) => l.connection)).size;

  const integrity: Integrity = { answered: lines.length, non200: lines.filter((l) => l.status !== 200).length, queueEmpty: empty, ok: true, problems: [] };
  if (daemon !== undefined && countersBefore !== undefined) {
    const countersAfter = await countersOf(daemon);
    if (countersAfter !== undefined) {
      integrity.completed = (countersAfter['jobs_completed'] ?? 0) - (countersBefore['jobs_completed'] ?? 0);
      integrity.failed = (countersAfter['jobs_failed'] ?? 0) - (countersBefore['jobs_failed'] ?? 0);
    }
  }
  if (options.verifyBodies) {
    const seen = new Map<string, number>();
    for (const line of lines) {
      const unique = uniqueOf(line.body);
      seen.set(unique, (seen.get(unique) ?? 0) + 1);
    }
    integrity.lost = jobs.filter((job) => !seen.has(job.unique)).length;
    integrity.duplicated = [...seen.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0);
    if (integrity.lost > 0) integrity.problems.push(`${integrity.lost} jobs never reached the endpoint`);
    if (integrity.duplicated > 0) integrity.problems.push(`${integrity.duplicated} duplicate requests`);
  }
  if (integrity.answered !== n) integrity.problems.push(`endpoint answered ${integrity.answered} requests for ${n} jobs`);
  if (integrity.non200 > 0) integrity.problems.push(`${integrity.non200} non-200 answers`);
  if (!integrity.queueEmpty) integrity.problems.push('gearmand still holds jobs for the bench functions');
  if (integrity.completed !== undefined && integrity.completed !== n) integrity.problems.push(`daemon counted ${integrity.completed} completed`);
  if (integrity.failed !== undefined && integrity.failed !== 0) integrity.problems.push(`daemon counted ${integrity.failed} failed`);
  integrity.ok = integrity.problems.length === 0;
  result.integrity = integrity;
  return result;
}

function uniqueOf(body: string | undefined): string {
  if (body === undefined) return '<no body>';
  try {
    const parsed = JSON.parse(body) as { unique?: unknown };
    if (typeof parsed.unique === 'string') return parsed.unique;
  } catch {
    // multipart (another binary): the unique is the third part
    const match = /name="unique"\r\n\r\n([^\r]*)\r\n/.exec(body);
    if (match !== null) return match[1] as string;
  }
  return `<unparseable body: ${body.slice(0, 80)}>`;
}

async function countersOf(daemon: Daemon): Promise<Record<string, number> | undefined> {
  try {
    const counters = sumCounters(await daemon.status('counters'));
    return Object.keys(counters).length === 0 ? undefined : counters;
  } catch {
    return undefined;
  }
}
