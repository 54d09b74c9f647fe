/**
 * End-to-end benchmark: real gearmand, a fast HTTP endpoint nobody here wrote (nginx), and the real
 * `driveshaft` CLI, beside the gearmand ceiling measured in the same run. `npm run bench:e2e -- --help`.
 *
 * Every figure that matters is a ratio to something measured seconds apart on the same machine: the
 * machine has 2 shared cores, so absolute numbers drift from run to run while ratios hold.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGearmand, type Gearmand } from '../../test/helpers/gearmand.js';
import { gearmanCliBinary, startEchoWorkers, startLibgearmanWorkers, type EchoWorkers } from './ceiling.js';
import { OUR_BIN, REPO_ROOT, originalBinary, startDaemon, sumCounters, waitRegistered, type Daemon, type PoolSpec } from './daemon.js';
import { startEndpoint, type Endpoint, type EndpointKind } from './endpoint.js';
import { GearmanClient, makeJobs, queueBackground, type BenchJob } from './gearman-client.js';
import { killEverything, livePids } from './live-pids.js';
import { cpuDeltaUs, loadAverage, machineBusyUs, nowMs, sampleProcesses, signalAll, type TreeSample } from './proc-stats.js';
import { summariseProfileDir, type ProfileSummary } from './profile.js';

// ── Performance targets ───────────────────────────────────────────────────────────────────────────
// Every ratio is between figures of the same run: the original (the compare binary), the Node floor
// and the ceiling are measured minutes or seconds from ours on the same machine.

/** 10 slots: our jobs/s ÷ the original's. */
const TARGET_SPEEDUP_10 = 2.5;
/** 10 slots: our daemon CPU per job ÷ the original's, at most. */
const TARGET_CPU_RATIO_10 = 0.5;
/** 1 slot: our jobs/s ÷ the Node floor (one raw-socket Node worker), at least. */
const TARGET_FLOOR_RATIO_1 = 0.9;
/** 1 slot: our jobs/s ÷ the original's. */
const TARGET_SPEEDUP_1 = 1.5;
/** 1 slot: foreground p50 at most this far above the echo worker's (the latency ceiling). */
const TARGET_P50_OVER_CEILING_US = 150;
/** Memory is judged by PSS, master + children: a page two Node processes share counts once. */
const TARGET_PSS_1000_AFTER_MIB = 100;
const TARGET_PSS_10_IDLE_MIB = 60;
const TARGET_PSS_PER_SLOT_KIB = 16;
const IDLE_SAMPLES = 5;
const IDLE_SAMPLE_INTERVAL_MS = 100;

// ── Options ───────────────────────────────────────────────────────────────────────────────────────

const MODES = ['queue', 'cold', 'concurrent', 'latency'] as const;
type Mode = (typeof MODES)[number];

interface ScenarioSpec {
  label: string;
  slots: number;
  pools: number;
}

interface Options {
  jobs: number;
  latencyJobs: number;
  latencyWarmup: number;
  scenarios: ScenarioSpec[];
  modes: Mode[];
  logLevel: 'warn' | 'info';
  verifyBodies: boolean;
  endpoint: 'auto' | 'node';
  submitConnections: number;
  concurrentWindow: number;
  settleMs: number;
  /** 'each': a ceiling measured right before every scenario (ratios use the adjacent one); 'once': at the start. */
  ceiling: 'each' | 'once';
  latencySeconds: number;
  repeat: number;
  /** Extra Node flags for the daemon (children inherit them), for experiments: "--max-semi-space-size=2". */
  daemonNodeArgs: string[];
  libgearman: boolean;
  ceilingConnections: number;
  profile: boolean;
  drainTimeoutS: number;
  maxMinutes: number;
  out: string | undefined;
  keepTmp: boolean;
  compareBin: string | undefined;
  /** Each scenario also runs with request signing on, right after the unsigned run. */
  signing: boolean;
  /** Secrets the signed run signs with (one HMAC each per request; 2 while a secret is rotated). */
  signingSecrets: number;
}

/** What a compare binary is: another build of ours (a `.js` file) or the original C++ daemon. */
function compareKind(bin: string): 'build' | 'original' {
  return bin.endsWith('.js') ? 'build' : 'original';
}

const USAGE = `npm run bench:e2e -- [options]

  --jobs N               background jobs per throughput run (default 20000)
  --scenarios LIST       comma list of SLOTS or SLOTSxPOOLS (default 1,10,100,1000,10x3)
  --modes LIST           queue,cold,concurrent,latency (default queue,concurrent,latency)
                           queue       jobs queued while the daemon is frozen (SIGSTOP), then released
                           cold        jobs queued first, then the daemon started (the original's method)
                           concurrent  jobs submitted while the daemon runs
                           latency     one client, foreground jobs one after another
  --latency-jobs N       foreground jobs timed per latency run (default 2000, after 200 warm-up)
  --latency-seconds S    stop a latency run after S seconds even if fewer jobs ran (default 8)
  --repeat N             queue-mode runs per scenario on the same daemon; the median is reported (default 1;
                         the first run includes the daemon's JIT warm-up)
  --log-level L          daemon log level: warn (default) or info (info logs every job? see README)
  --verify-bodies        log every request body and check each job's unique arrived exactly once
                         (nginx mirrors each request to read the body: costs endpoint CPU)
  --endpoint node        use the Node stand-in endpoint even if nginx is installed
  --submit-connections N client connections that queue jobs (default 4)
  --concurrent-window N  unacknowledged submissions in concurrent mode (default 1000)
  --ceiling each|once    measure the ceiling right before every scenario, each scenario's ratios
                         against its own (default each: the shared machine drifts), or once
  --no-libgearman        skip the \`gearman -w\` ceiling
  --daemon-node-args="F" extra Node flags for our daemon, children included (e.g. "--max-semi-space-size=2")
  --profile              run the daemon with --cpu-prof (slower; figures are not comparable) and
                         summarise where its CPU goes
  --drain-timeout S      give up on a run after S seconds (default 90)
  --max-minutes M        abort the whole benchmark after M minutes (default 15)
  --out PATH             JSON result path (default bench/results/e2e-<date>.json)
  --keep-tmp             keep the temporary directory (configs, logs, access logs)
  --signing              run each scenario twice on our binary, signing off then on, and report on ÷ off
  --signing-secrets N    secrets the signed run uses (default 1; 2 = during a rotation)
  --original             compare with the original C++ daemon at ../shared/reference/original/driveshaft
                         (relative to the repository, or to the main checkout from a git worktree):
                         the same as DRIVESHAFT_COMPARE_BIN=<that path>
Environment: DRIVESHAFT_COMPARE_BIN=/path/to/driveshaft runs another binary through the same scenarios
and modes, right after ours, and reports ours ÷ theirs; the targets' ratios to the original need it.
A .js file is taken to be another build of this daemon (an A/B of a change: JSON log config); anything
else is the original (log4cxx XML config, --loop_timeout 2). NGINX_BIN, GEARMAN_BIN, GEARMAND_BIN override paths.`;

function fail(message: string): never {
  throw new Error(message);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      jobs: { type: 'string', default: '20000' },
      scenarios: { type: 'string', default: '1,10,100,1000,10x3' },
      modes: { type: 'string', default: 'queue,concurrent,latency' },
      'latency-jobs': { type: 'string', default: '2000' },
      'latency-warmup': { type: 'string', default: '200' },
      'log-level': { type: 'string', default: 'warn' },
      'verify-bodies': { type: 'boolean', default: false },
      endpoint: { type: 'string', default: 'auto' },
      'submit-connections': { type: 'string', default: '4' },
      'concurrent-window': { type: 'string', default: '1000' },
      'settle-ms': { type: 'string', default: '1000' },
      ceiling: { type: 'string', default: 'each' },
      'latency-seconds': { type: 'string', default: '8' },
      repeat: { type: 'string', default: '1' },
      'daemon-node-args': { type: 'string', default: '' },
      'ceiling-connections': { type: 'string', default: '10' },
      'no-libgearman': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'drain-timeout': { type: 'string', default: '90' },
      'max-minutes': { type: 'string', default: '15' },
      out: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false },
      signing: { type: 'boolean', default: false },
      'signing-secrets': { type: 'string', default: '1' },
      original: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got ${JSON.stringify(text)}`);
    return n;
  };
  const scenarios = values.scenarios.split(',').map((text): ScenarioSpec => {
    const match = /^(\d+)(?:x(\d+))?$/.exec(text.trim());
    if (match === null) throw new Error(`--scenarios: ${JSON.stringify(text)} is not SLOTS or SLOTSxPOOLS`);
    const slots = Number(match[1]);
    const pools = match[2] === undefined ? 1 : Number(match[2]);
    if (slots < 1 || pools < 1) throw new Error(`--scenarios: ${text}: slots and pools must be ≥ 1`);
    return { label: pools === 1 ? `${slots}` : `${slots}x${pools}`, slots, pools };
  });
  const modes = values.modes.split(',').map((m) => m.trim());
  for (const mode of modes) if (!(MODES as readonly string[]).includes(mode)) throw new Error(`--modes: unknown mode ${mode}`);
  const logLevel = values['log-level'];
  if (logLevel !== 'warn' && logLevel !== 'info') throw new Error('--log-level: expected warn or info');
  if (values.endpoint !== 'auto' && values.endpoint !== 'node') throw new Error('--endpoint: expected auto or node');
  return {
    jobs: int('jobs', values.jobs, 1),
    latencyJobs: int('latency-jobs', values['latency-jobs'], 1),
    latencyWarmup: int('latency-warmup', values['latency-warmup'], 0),
    scenarios,
    modes: modes as Mode[],
    logLevel,
    verifyBodies: values['verify-bodies'],
    endpoint: values.endpoint,
    submitConnections: int('submit-connections', values['submit-connections'], 1),
    concurrentWindow: int('concurrent-window', values['concurrent-window'], 1),
    settleMs: int('settle-ms', values['settle-ms'], 0),
    ceiling: values.ceiling === 'once' ? 'once' : values.ceiling === 'each' ? 'each' : fail('--ceiling: expected each or once'),
    latencySeconds: int('latency-seconds', values['latency-seconds'], 1),
    repeat: int('repeat', values.repeat, 1),
    daemonNodeArgs: values['daemon-node-args'].split(/\s+/).filter((arg) => arg !== ''),
    ceilingConnections: int('ceiling-connections', values['ceiling-connections'], 1),
    libgearman: !values['no-libgearman'],
    profile: values.profile,
    drainTimeoutS: int('drain-timeout', values['drain-timeout'], 1),
    maxMinutes: int('max-minutes', values['max-minutes'], 1),
    out: values.out,
    keepTmp: values['keep-tmp'],
    compareBin: values.original ? originalBinary() : process.env['DRIVESHAFT_COMPARE_BIN'] || undefined,
    signing: values.signing,
    signingSecrets: int('signing-secrets', values['signing-secrets'], 1),
  };
}

// ── Results ───────────────────────────────────────────────────────────────────────────────────────

interface CpuShare {
  /** CPU µs per job of the measured workers (daemon, echo workers or gearman -w processes). */
  workers: number;
  gearmand: number;
  endpoint: number;
  /** This harness (submitting, polling). */
  harness: number;
}

interface Integrity {
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

interface ThroughputResult {
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
  integrity?: Integrity;
}

interface LatencyResult {
  kind: 'latency';
  jobs: number;
  failed: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  meanUs: number;
}

type RunResult = ThroughputResult | LatencyResult;

interface ScenarioResult {
  label: string;
  binary: 'ours' | 'compare';
  /** For the compare binary: another build of ours or the original. */
  compareKind?: 'build' | 'original';
  slots: number;
  pools: number;
  idleRssKiB?: number;
  /** The idle sample's PSS sum (null when smaps_rollup was unreadable). */
  idlePssKiB?: number | null;
  /** The idle sample's "PSS alone" (see ThroughputResult.aloneAfterKiB). */
  idleAloneKiB?: number | null;
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
  /**
   * 1 slot only: the Node floor (echo-worker.ts --http) draining the same N jobs through the same
   * endpoint and gearmand — what a Node worker with no HTTP library, timers or bookkeeping reaches.
   */
  floor?: ThroughputResult;
  /** The Node floor's foreground latency (latency mode), the 1-slot p50 any Node daemon starts from. */
  floorLatency?: LatencyResult;
  floorError?: string;
}

interface MemoryByProcess {
  pid: number;
  rssKiB: number;
  rssAnonKiB: number;
  rssFileKiB: number;
  pssKiB: number | null;
}

/** NaN (not read) becomes null, which JSON can hold. */
function orNull(kib: number): number | null {
  return Number.isFinite(kib) ? kib : null;
}

interface CeilingResult {
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

// ── Bookkeeping: everything started is stopped, whatever happens ─────────────────────────────────

/** Configs and logs of this run; kept when the run is interrupted, for a look at what happened. */
let tempDir: string | undefined;

process.on('exit', killEverything);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping every process the benchmark started${tempDir ? `; temp dir kept: ${tempDir}` : ''}\n`);
    killEverything();
    process.exit(130);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
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

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ── Measurement building blocks ───────────────────────────────────────────────────────────────────

interface Groups {
  workers: () => number[];
  gearmand: Gearmand;
  endpointPid?: number;
}

interface Snapshot {
  workers: TreeSample;
  gearmand: TreeSample;
  endpoint: TreeSample | undefined;
  harnessUs: number;
  machineUs: number;
}

function snapshot(groups: Groups): Snapshot {
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

async function queueEmpty(gearmand: Gearmand, functions: readonly string[], timeoutMs: number): Promise<boolean> {
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

async function measureLatency(
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

async function measureCeiling(options: Options, at: string, herdSlots: number): Promise<CeilingResult> {
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

function throughputFrom(
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

// ── One scenario against one binary ──────────────────────────────────────────────────────────────

interface ScenarioContext {
  options: Options;
  spec: ScenarioSpec;
  binary: 'ours' | 'compare';
  bin: string;
  dir: string;
  /** Pools sign every request (signing_secrets from a file in `dir`). */
  signed: boolean;
}

/** Label suffix of a scenario run with signing on. */
const SIGNED_SUFFIX = '+signed';

function poolsFor(spec: ScenarioSpec, extra: Record<string, unknown> = {}): PoolSpec[] {
  return Array.from({ length: spec.pools }, (_, i) => ({ name: `bench${i}`, slots: spec.slots, functionName: `bench_fn${i}`, extra }));
}

/** A secrets file of `count` secrets: every request carries one HMAC per secret. */
function signingExtra(dir: string, count: number): Record<string, unknown> {
  const file = join(dir, 'bench.whsec');
  writeFileSync(file, Array.from({ length: count }, () => `whsec_${randomBytes(32).toString('base64')}\n`).join(''), { mode: 0o600 });
  return { signing_secrets: { file } };
}

async function runScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const { options, spec } = ctx;
  const label = ctx.signed ? `${spec.label}${SIGNED_SUFFIX}` : spec.label;
  const result: ScenarioResult = { label, binary: ctx.binary, slots: spec.slots, pools: spec.pools, runs: {}, load: loadAverage() };
  if (ctx.binary === 'compare') result.compareKind = compareKind(ctx.bin);
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
    const started = await startDaemon({
      bin: ctx.bin,
      flavour,
      dir: ctx.dir,
      gearmand,
      endpointUrl: endpoint!.url,
      pools,
      logLevel: options.logLevel,
      ...(ctx.binary === 'ours'
        ? { nodeArgs: [...options.daemonNodeArgs, ...(options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])] }
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
    endpoint = await startEndpoint({ dir: ctx.dir, verifyBodies: options.verifyBodies, forceNode: options.endpoint === 'node' });
    livePids.add(endpoint.pid);

    const warmModes = modes.filter((m) => m !== 'cold');
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

      for (const mode of warmModes) {
        const prefix = `${spec.label}-${mode}`;
        if (mode === 'latency') {
          result.runs.latency = await measureLatency(gearmand.port, functions[0] as string, options, prefix);
          continue;
        }
        if (mode === 'queue' && options.repeat > 1) {
          // The first run also warms the daemon's JIT; the median of several is the steadier figure.
          const all: ThroughputResult[] = [];
          for (let i = 0; i < options.repeat; i++) {
            all.push(await throughputRun(mode, ctx, gearmand, endpoint, daemon, functions, `${prefix}${i}`));
          }
          result.queueRuns = all;
          result.runs.queue = [...all].sort((a, b) => a.rate - b.rate)[Math.floor(all.length / 2)];
          continue;
        }
        result.runs[mode] = await throughputRun(mode, ctx, gearmand, endpoint, daemon, functions, prefix);
      }
      await stopDaemon();
    }

    if (ctx.binary === 'ours' && spec.slots === 1 && spec.pools === 1 && modes.includes('queue')) {
      try {
        const floor = await measureNodeFloor(options, gearmand, endpoint, functions[0] as string, `${spec.label}-floor`);
        result.floor = floor.queue;
        if (floor.latency !== undefined) result.floorLatency = floor.latency;
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
  if (options.profile && ctx.binary === 'ours') result.profile = summariseProfileDir(profileDir, REPO_ROOT);
  return result;
}

/**
 * Queue mode for echo-worker.ts processes (the ceiling's and the Node floor's): frozen while N jobs are
 * queued, released, timed by their own first-assign/last-complete stamps.
 */
async function echoQueueRun(echo: EchoWorkers, groups: Groups, options: Options, fn: string, prefix: string, what: string): Promise<ThroughputResult> {
  const n = options.jobs;
  await echo.arm(n);
  signalAll([echo.pid], 'SIGSTOP');
  await queueBackground(groups.gearmand.port, makeJobs(n, [fn], prefix), options.submitConnections);
  const before = snapshot(groups);
  signalAll([echo.pid], 'SIGCONT');
  const done = await withDeadline(echo.done(), options.drainTimeoutS * 1000, what);
  const after = snapshot(groups);
  return throughputFrom('queue', n, done.firstMs, done.lastMs, before, after);
}

/**
 * The Node floor for one slot, measured like the echo ceiling (frozen while N jobs are queued, then
 * released) on the scenario's own gearmand and endpoint, after the daemon has stopped.
 */
async function measureNodeFloor(
  options: Options,
  gearmand: Gearmand,
  endpoint: Endpoint,
  fn: string,
  prefix: string,
): Promise<{ queue: ThroughputResult; latency?: LatencyResult }> {
  const n = options.jobs;
  const floor = startEchoWorkers(gearmand.port, [fn], 1, endpoint.url);
  livePids.add(floor.pid);
  try {
    await withDeadline(floor.ready, 10_000, 'the Node floor worker to register');
    const groups: Groups = { workers: () => [floor.pid], gearmand, endpointPid: endpoint.pid };
    const logged = endpoint.count();
    const run = await echoQueueRun(floor, groups, options, fn, prefix, 'the Node floor worker to answer every job');
    const requests = await waitCount(endpoint, logged + n, 5_000);
    if (requests !== logged + n) throw new Error(`the endpoint logged ${requests - logged} floor requests for ${n} jobs`);
    if (!options.modes.includes('latency')) return { queue: run };
    return { queue: run, latency: await measureLatency(gearmand.port, fn, options, `${prefix}-fg`) };
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
): Promise<ThroughputResult> {
  const { options } = ctx;
  const n = options.jobs;
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
      signalAll(frozen, 'SIGCONT');
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
  while (endpoint.count() - lineBase < n) {
    if (daemon !== undefined && !daemon.alive()) throw new Error(`${mode}: the daemon exited during the run:\n${daemon.output()}`);
    if (Date.now() > deadline) {
      throw new Error(`${mode}: only ${endpoint.count() - lineBase} of ${n} jobs reached the endpoint within ${options.drainTimeoutS} s`);
    }
    await delay(20);
  }
  const after = snapshot(groups);
  await submitting;

  const empty = await queueEmpty(gearmand, functions, 5_000);
  // Late duplicates would arrive now, if any: give the endpoint one more flush period.
  await delay(150);
  const lines = endpoint.lines(lineBase);
  const firstMs = lines.reduce((m, l) => Math.min(m, l.atMs), Infinity);
  const lastMs = lines.reduce((m, l) => Math.max(m, l.atMs), -Infinity);
  const result = throughputFrom(mode, n, firstMs, lastMs, before, after);

  // Per process of the daemon tree: master first (processTree order).
  result.rssBeforeKiB = mode === 'cold' ? undefined : before.workers.rssKiB;
  result.rssAfterKiB = after.workers.rssKiB;
  result.pssBeforeKiB = mode === 'cold' ? undefined : orNull(before.workers.pssKiB);
  result.pssAfterKiB = orNull(after.workers.pssKiB);
  result.aloneBeforeKiB = mode === 'cold' ? undefined : orNull(before.workers.uniqueKiB);
  result.aloneAfterKiB = orNull(after.workers.uniqueKiB);
  const start = new Map(before.workers.processes.map((p) => [p.pid, p]));
  result.perProcess = after.workers.processes.map((p) => ({
    pid: p.pid,
    name: p.name,
    cpuUsPerJob: (p.cpuUs - (start.get(p.pid)?.cpuUs ?? 0)) / n,
    sysUsPerJob: (p.sysUs - (start.get(p.pid)?.sysUs ?? 0)) / n,
    rssBeforeKiB: start.get(p.pid)?.rssKiB ?? 0,
    rssAfterKiB: p.rssKiB,
    rssAnonAfterKiB: p.rssAnonKiB,
    rssFileAfterKiB: p.rssFileKiB,
    pssBeforeKiB: orNull(start.get(p.pid)?.pssKiB ?? NaN),
    pssAfterKiB: orNull(p.pssKiB),
  }));
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

// ── Reporting ─────────────────────────────────────────────────────────────────────────────────────

interface Target {
  name: string;
  value: string;
  goal: string;
  pass: boolean | undefined;
  note?: string;
}

const fmt = {
  int: (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US')),
  f1: (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(1)),
  f3: (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(3)),
  mib: (kib: number | undefined): string => (kib === undefined ? '—' : (kib / 1024).toFixed(1)),
};

/** "10" for ours, "original 10" or "compare 10" for the compare binary. */
function scenarioName(s: ScenarioResult): string {
  if (s.binary === 'ours') return s.label;
  return `${s.compareKind === 'original' ? 'original' : 'compare'} ${s.label}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function mean(values: Array<number | undefined>): number | undefined {
  const present = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  return present.length === 0 ? undefined : present.reduce((a, b) => a + b, 0) / present.length;
}

interface CeilingFigures {
  /** The ceiling queue-mode ratios divide by. */
  reported: number | undefined;
  reportedKind: string;
  node: number | undefined;
  nodeConcurrent: number | undefined;
  libgearman: number | undefined;
  latencyP50: number | undefined;
  latencyP50Libgearman: number | undefined;
  herdP50: number | undefined;
}

/**
 * The original's 40,000 jobs/s came from `gearman -w` workers, so that is the ceiling its ratios
 * (0.117 at 10 workers) are relative to; the codec echo worker stands in when the CLI is absent.
 */
function ceilingFigures(ceilings: ReadonlyArray<CeilingResult | undefined>): CeilingFigures {
  const present = ceilings.filter((c): c is CeilingResult => c !== undefined);
  const node = mean(present.map((c) => c.node?.rate));
  const libgearman = mean(present.map((c) => c.libgearman?.rate));
  return {
    reported: libgearman ?? node,
    reportedKind: libgearman !== undefined ? 'gearman -w ×10 (libgearman)' : 'codec echo worker ×10 (Node)',
    node,
    nodeConcurrent: mean(present.map((c) => c.nodeConcurrent?.rate)),
    libgearman,
    latencyP50: mean(present.map((c) => c.latencyNode?.p50Us)),
    latencyP50Libgearman: mean(present.map((c) => c.latencyLibgearman?.p50Us)),
    herdP50: mean(present.map((c) => c.latencyNodeHerd?.p50Us)),
  };
}

function report(options: Options, meta: Record<string, unknown>, ceilings: CeilingResult[], scenarios: ScenarioResult[]): { text: string; targets: Target[] } {
  const out: string[] = [];
  const overall = ceilingFigures(ceilings);
  out.push('');
  out.push(`driveshaft e2e — ${String(meta['date'])}, commit ${String(meta['commit'])}, node ${String(meta['node'])}, ${String(meta['cpu'])} ×${String(meta['cores'])}`);
  out.push(`load average at start ${(meta['loadStart'] as number[]).join(' ')}, at end ${(meta['loadEnd'] as number[]).join(' ')}; endpoint: ${String(meta['endpoint'])}; daemon log level ${options.logLevel}; ${options.jobs} jobs per run`);
  out.push('');
  out.push(`Ceiling: gearmand draining the same queue with workers that answer at once, no HTTP (${options.ceilingConnections} workers; fg = foreground p50/p99 µs):`);
  const ceilRows = ceilings.map((c) => [
    c.at,
    fmt.int(c.libgearman?.rate),
    fmt.int(c.node?.rate),
    fmt.int(c.nodeConcurrent?.rate),
    c.latencyNode ? `${fmt.int(c.latencyNode.p50Us)}/${fmt.int(c.latencyNode.p99Us)}` : '—',
    c.latencyLibgearman ? `${fmt.int(c.latencyLibgearman.p50Us)}/${fmt.int(c.latencyLibgearman.p99Us)}` : '—',
    c.latencyNodeHerd ? `${fmt.int(c.latencyNodeHerd.p50Us)}/${fmt.int(c.latencyNodeHerd.p99Us)} (×${c.latencyNodeHerd.connections})` : '—',
    c.libgearman ? fmt.f1(c.libgearman.cpuUsPerJob.gearmand) : fmt.f1(c.node?.cpuUsPerJob.gearmand),
    c.errors.join('; '),
  ]);
  out.push(table(['measured', 'gearman -w jobs/s', 'echo jobs/s', 'echo concurrent', 'echo ×1 fg', 'gearman -w ×1 fg', 'echo ×slots fg', 'gearmand µs/job', 'errors'], ceilRows));
  out.push(`Reported ceiling: ${overall.reportedKind}; mean ${fmt.int(overall.reported)} jobs/s over ${ceilings.length} measurement(s)` +
    (overall.node !== undefined && overall.libgearman !== undefined ? ` (codec echo: ${fmt.f3(overall.node / overall.libgearman)}× libgearman)` : '') +
    (options.ceiling === 'each' ? '. Each scenario\'s ratios use the ceiling measured right before it.' : '.'));
  out.push('');

  const rows: string[][] = [];
  for (const s of scenarios) {
    const name = scenarioName(s);
    const ceiling = ceilingFigures([s.ceiling]);
    if (s.error !== undefined) rows.push([name, 'ERROR', s.error.split('\n')[0]!.slice(0, 100)]);
    for (const mode of MODES) {
      const run = s.runs[mode];
      if (run === undefined) continue;
      if (run.kind === 'latency') {
        const base = ceiling.latencyP50;
        const herd = ceiling.herdP50 === undefined ? '' : `herd floor ${fmt.int(ceiling.herdP50)}`;
        rows.push([name, 'latency', `p50 ${fmt.int(run.p50Us)} µs`, base === undefined ? '—' : `+${fmt.int(run.p50Us - base)} µs`, `p99 ${fmt.int(run.p99Us)}`, herd, '', '', '', '', run.failed === 0 ? `ok (${run.jobs} jobs)` : `${run.failed} failed`]);
        continue;
      }
      const ceilingRate = mode === 'concurrent' ? ceiling.nodeConcurrent : ceiling.reported;
      const integ = mode === 'queue' && s.queueRuns !== undefined ? mergeIntegrity(s.queueRuns) : run.integrity;
      // With --repeat, RSS is the first run's: the figure "after one N-job run" the target is about.
      const rssRun = mode === 'queue' ? (s.queueRuns?.[0] ?? run) : run;
      const modeLabel = mode === 'queue' && s.queueRuns !== undefined ? `queue (median of ${s.queueRuns.length}: ${s.queueRuns.map((r) => fmt.int(r.rate)).join(', ')})` : mode;
      rows.push([
        name,
        modeLabel,
        fmt.int(run.rate),
        ceilingRate === undefined ? '—' : fmt.f3(run.rate / ceilingRate),
        fmt.f1(run.cpuUsPerJob.workers),
        fmt.f1(run.cpuUsPerJob.gearmand),
        fmt.f1(run.cpuUsPerJob.endpoint),
        `${fmt.f1(run.coresBusy)} / ${fmt.f1(run.otherCores)}`,
        `${fmt.mib(rssRun.rssBeforeKiB)}→${fmt.mib(rssRun.rssAfterKiB)}`,
        String(run.httpConnections ?? '—'),
        integ === undefined ? '—' : integ.ok ? `ok ${integ.answered}/${run.jobs}` : integ.problems.join('; '),
      ]);
    }
    if (s.floor !== undefined) {
      const f = s.floor;
      rows.push([name, 'Node floor', fmt.int(f.rate), ceiling.reported === undefined ? '—' : fmt.f3(f.rate / ceiling.reported), fmt.f1(f.cpuUsPerJob.workers), fmt.f1(f.cpuUsPerJob.gearmand), fmt.f1(f.cpuUsPerJob.endpoint), `${fmt.f1(f.coresBusy)} / ${fmt.f1(f.otherCores)}`, '', '1', `ok ${f.jobs}/${f.jobs}`]);
    }
    if (s.floorLatency !== undefined) {
      const l = s.floorLatency;
      const base = ceiling.latencyP50;
      rows.push([name, 'Node floor latency', `p50 ${fmt.int(l.p50Us)} µs`, base === undefined ? '—' : `+${fmt.int(l.p50Us - base)} µs`, `p99 ${fmt.int(l.p99Us)}`, '', '', '', '', '', l.failed === 0 ? `ok (${l.jobs} jobs)` : `${l.failed} failed`]);
    }
    if (s.floorError !== undefined) rows.push([name, 'Node floor', 'ERROR', s.floorError.split('\n')[0]!.slice(0, 100)]);
    if (s.idleRssKiB !== undefined) rows.push([name, 'idle', '', '', '', '', '', '', `${fmt.mib(s.idleRssKiB)} (${s.idleProcesses} procs)`, '', `registered in ${s.registerMs} ms, load ${s.load[0]}`]);
  }
  out.push('Scenarios (× ceiling: queue/cold ÷ the reported ceiling, concurrent ÷ the echo workers\' concurrent run, latency p50 − the echo ×1 p50;');
  out.push('"Node floor" at 1 slot: one raw-socket Node worker POSTing each job to the same endpoint, no HTTP library — the 1-slot rate Node allows here):');
  out.push(table(['slots', 'mode', 'jobs/s', '× ceiling', 'daemon µs/job', 'gearmand µs/job', 'endpoint µs/job', 'cores ours/other', 'RSS MiB', 'http conns', 'integrity'], rows));
  out.push('');

  out.push('Daemon CPU per job by process, queue mode (µs; "kernel" = stime: socket syscalls and epoll):');
  for (const s of scenarios) {
    const q = s.runs.queue ?? s.runs.cold;
    if (q?.kind !== 'throughput' || q.perProcess === undefined) continue;
    const parts = q.perProcess.map((p, i) => `${i === 0 ? 'master' : `child ${i}`} ${fmt.f1(p.cpuUsPerJob)} (kernel ${fmt.f1(p.sysUsPerJob)})`);
    out.push(`  ${scenarioName(s)}: ${parts.join(', ')}`);
  }
  out.push('');

  out.push(memoryLines(scenarios).join('\n'));
  out.push('');

  const signed = scenarios.filter((s) => s.binary === 'ours' && s.label.endsWith(SIGNED_SUFFIX));
  if (signed.length > 0) {
    out.push(`Signing on ÷ off (queue mode, ${options.signingSecrets} signing secret${options.signingSecrets === 1 ? '' : 's'}; the runs are adjacent on the same machine):`);
    for (const on of signed) {
      const offLabel = on.label.slice(0, -SIGNED_SUFFIX.length);
      const off = scenarios.find((s) => s.binary === 'ours' && s.label === offLabel)?.runs.queue;
      const onRun = on.runs.queue;
      if (off?.kind === 'throughput' && onRun?.kind === 'throughput') {
        out.push(
          `  ${offLabel}: ${fmt.int(onRun.rate)} vs ${fmt.int(off.rate)} jobs/s = ${fmt.f3(onRun.rate / off.rate)}× (cost ${fmt.f1((1 - onRun.rate / off.rate) * 100)}%); daemon CPU/job ${fmt.f1(onRun.cpuUsPerJob.workers)} vs ${fmt.f1(off.cpuUsPerJob.workers)} µs`,
        );
      }
    }
    out.push('');
  }

  const compares = scenarios.filter((s) => s.binary === 'compare');
  if (compares.length > 0) {
    const theirName = compares[0]?.compareKind === 'original' ? 'the original' : 'the compare build';
    out.push(`Ours ÷ ${theirName}, same run (queue: the median run; memory: PSS alone / PSS / RSS):`);
    for (const c of compares) {
      const mine = scenarios.find((s) => s.binary === 'ours' && s.label === c.label);
      const ours = mine?.runs.queue;
      const theirs = c.runs.queue;
      const parts: string[] = [];
      if (ours?.kind === 'throughput' && theirs?.kind === 'throughput') {
        parts.push(`${fmt.int(ours.rate)} vs ${fmt.int(theirs.rate)} jobs/s = ${fmt.f3(ours.rate / theirs.rate)}×`);
        parts.push(`CPU/job ${fmt.f1(ours.cpuUsPerJob.workers)} vs ${fmt.f1(theirs.cpuUsPerJob.workers)} µs = ${fmt.f3(ours.cpuUsPerJob.workers / theirs.cpuUsPerJob.workers)}×`);
      }
      const ourLatency = mine?.runs.latency;
      const theirLatency = c.runs.latency;
      if (ourLatency?.kind === 'latency' && theirLatency?.kind === 'latency') {
        parts.push(`fg p50 ${fmt.int(ourLatency.p50Us)} vs ${fmt.int(theirLatency.p50Us)} µs`);
      }
      if (mine?.idleRssKiB !== undefined && c.idleRssKiB !== undefined) {
        parts.push(`idle ${memoryTriple(mine.idleAloneKiB, mine.idlePssKiB, mine.idleRssKiB)} vs ${memoryTriple(c.idleAloneKiB, c.idlePssKiB, c.idleRssKiB)} MiB`);
      }
      const ourFirst = mine?.queueRuns?.[0] ?? ours;
      const theirFirst = c.queueRuns?.[0] ?? theirs;
      if (ourFirst?.kind === 'throughput' && theirFirst?.kind === 'throughput') {
        parts.push(
          `after one run ${memoryTriple(ourFirst.aloneAfterKiB, ourFirst.pssAfterKiB, ourFirst.rssAfterKiB)} vs ` +
            `${memoryTriple(theirFirst.aloneAfterKiB, theirFirst.pssAfterKiB, theirFirst.rssAfterKiB)} MiB`,
        );
      }
      if (parts.length > 0) out.push(`  ${c.label}: ${parts.join('; ')}`);
    }
    out.push('');
  }

  const targets = evaluateTargets(options, scenarios);
  out.push('Performance targets (ratios from this run; memory: PSS alone of master + children, PSS and RSS beside it):');
  out.push(table(['target', 'measured', 'goal', 'verdict'], targets.map((t) => [t.name, t.value, t.goal, t.pass === undefined ? `n/a${t.note ? ` (${t.note})` : ''}` : t.pass ? 'PASS' : 'FAIL'])));

  for (const s of scenarios) {
    if (s.profile === undefined || s.profile.length === 0) continue;
    out.push('');
    out.push(`Profile, ${s.label} slots (--cpu-prof; self time, % of non-idle):`);
    for (const p of s.profile) {
      out.push(`  ${p.file.split('/').pop()}: ${fmt.int(p.totalMs - p.idleMs)} ms busy of ${fmt.int(p.totalMs)} ms, GC ${fmt.int(p.gcMs)} ms`);
      out.push(`    by area: ${p.byArea.slice(0, 8).map((a) => `${a.area} ${a.selfPercent.toFixed(1)}%`).join(', ')}`);
      for (const e of p.top.slice(0, 12)) {
        out.push(`    ${e.selfPercent.toFixed(1).padStart(5)}%  ${e.function}  ${e.location}`);
        for (const caller of e.callers ?? []) out.push(`             ← ${caller}`);
      }
    }
  }
  return { text: out.join('\n'), targets };
}

/** PSS in MiB, or — when smaps_rollup could not be read. */
function pssMib(kib: number | null | undefined): string {
  return kib === null || kib === undefined ? '—' : fmt.mib(kib);
}

/** "PSS alone / PSS / RSS" in MiB. */
function memoryTriple(alone: number | null | undefined, pss: number | null | undefined, rss: number | undefined): string {
  return `${pssMib(alone)} / ${pssMib(pss)} / ${fmt.mib(rss)}`;
}

/**
 * The memory figure the targets judge: "PSS alone" (master + children, each page counted once, see
 * uniqueSetKiB) when pagemap was readable, else the summed PSS, which other processes sharing the
 * node binary lower.
 */
function judgedMemory(alone: number | null | undefined, pss: number | null | undefined): { kib: number; kind: string } | undefined {
  if (alone !== null && alone !== undefined) return { kib: alone, kind: 'PSS alone' };
  if (pss !== null && pss !== undefined) return { kib: pss, kind: 'PSS (pagemap unreadable: lowered by other processes)' };
  return undefined;
}

/**
 * RSS per process, split into anonymous (the process's own heap and malloc) and file-backed (mostly
 * the node binary's pages, shared by every node process but counted by RSS in each), with PSS beside
 * it. The targets are PSS, which counts the node binary's pages once for master and children.
 */
function memoryLines(scenarios: readonly ScenarioResult[]): string[] {
  const out = [
    'Daemon memory, MiB (RSS = anon + file; PSS divides a shared page between every process mapping it, this harness',
    "and other people's Node processes included; \"alone\" counts each page of master + children once, as their PSS",
    'would be with nothing else mapping the node binary: the targets judge it):',
  ];
  const who = (i: number): string => (i === 0 ? 'master' : `child ${i}`);
  const pss = pssMib;
  for (const s of scenarios) {
    const name = scenarioName(s);
    if (s.idleByProcess !== undefined) {
      const parts = s.idleByProcess.map((p, i) => `${who(i)} ${fmt.mib(p.rssKiB)} (${fmt.mib(p.rssAnonKiB)}+${fmt.mib(p.rssFileKiB)}, PSS ${pss(p.pssKiB)})`);
      out.push(`  ${name} idle: alone ${pss(s.idleAloneKiB)}, RSS ${fmt.mib(s.idleRssKiB)}, PSS ${pss(s.idlePssKiB)}; ${parts.join(', ')}`);
    }
    const q = s.queueRuns?.[0] ?? s.runs.queue ?? s.runs.cold;
    if (q?.kind === 'throughput' && q.perProcess !== undefined) {
      const parts = q.perProcess.map((p, i) => `${who(i)} ${fmt.mib(p.rssAfterKiB)} (${fmt.mib(p.rssAnonAfterKiB)}+${fmt.mib(p.rssFileAfterKiB)}, PSS ${pss(p.pssAfterKiB)})`);
      out.push(`  ${name} after ${q.mode}: alone ${pss(q.aloneAfterKiB)}, RSS ${fmt.mib(q.rssAfterKiB)}, PSS ${pss(q.pssAfterKiB)}; ${parts.join(', ')}`);
    }
  }
  return out;
}

function mergeIntegrity(runs: readonly ThroughputResult[]): Integrity | undefined {
  const all = runs.map((r) => r.integrity).filter((i): i is Integrity => i !== undefined);
  if (all.length === 0) return undefined;
  return {
    answered: all.reduce((sum, i) => sum + i.answered, 0) / all.length,
    non200: all.reduce((sum, i) => sum + i.non200, 0),
    queueEmpty: all.every((i) => i.queueEmpty),
    ok: all.every((i) => i.ok),
    problems: all.flatMap((i) => i.problems),
  };
}

function evaluateTargets(options: Options, scenarios: ScenarioResult[]): Target[] {
  const ours = (label: string): ScenarioResult | undefined => scenarios.find((s) => s.binary === 'ours' && s.label === label);
  const original = (label: string): ScenarioResult | undefined =>
    scenarios.find((s) => s.binary === 'compare' && s.compareKind === 'original' && s.label === label);
  const queueOf = (s: ScenarioResult | undefined): ThroughputResult | undefined => {
    const run = s?.runs.queue ?? s?.runs.cold;
    return run?.kind === 'throughput' ? run : undefined;
  };
  const noOriginal =
    options.compareBin === undefined
      ? 'no original in this run: --original'
      : compareKind(options.compareBin) === 'original'
        ? 'needs this scenario, ours and the original'
        : 'the compare binary is not the original';
  const targets: Target[] = [];
  const ceilingRatio = (s: ScenarioResult | undefined, rate: number): string => {
    const ceiling = ceilingFigures([s?.ceiling]).reported;
    return ceiling === undefined ? '—' : fmt.f3(rate / ceiling);
  };

  const speedup = (label: string, goal: number): void => {
    const mine = queueOf(ours(label));
    const theirs = queueOf(original(label));
    const ratio = mine !== undefined && theirs !== undefined ? mine.rate / theirs.rate : undefined;
    targets.push({
      name: `${label} slot${label === '1' ? '' : 's'}: jobs/s ÷ the original's`,
      value:
        mine === undefined || theirs === undefined || ratio === undefined
          ? '—'
          : `${fmt.f3(ratio)}× (${fmt.int(mine.rate)} vs ${fmt.int(theirs.rate)}; × ceiling ${ceilingRatio(ours(label), mine.rate)} vs ${ceilingRatio(original(label), theirs.rate)})`,
      goal: `≥ ${goal}×`,
      pass: ratio === undefined ? undefined : ratio >= goal,
      note: noOriginal,
    });
  };

  speedup('10', TARGET_SPEEDUP_10);
  {
    const mine = queueOf(ours('10'))?.cpuUsPerJob.workers;
    const theirs = queueOf(original('10'))?.cpuUsPerJob.workers;
    const ratio = mine !== undefined && theirs !== undefined ? mine / theirs : undefined;
    targets.push({
      name: "10 slots: daemon CPU per job ÷ the original's",
      value: ratio === undefined ? (mine === undefined ? '—' : `ours ${fmt.f1(mine)} µs`) : `${fmt.f3(ratio)}× (${fmt.f1(mine)} vs ${fmt.f1(theirs)} µs)`,
      goal: `≤ ${TARGET_CPU_RATIO_10}×`,
      pass: ratio === undefined ? undefined : ratio <= TARGET_CPU_RATIO_10,
      note: noOriginal,
    });
  }

  // One slot is a serial chain whose rate is per-job latency: the floor is what Node itself allows.
  {
    const mine = queueOf(ours('1'));
    const floor = ours('1')?.floor;
    const ratio = mine !== undefined && floor !== undefined ? mine.rate / floor.rate : undefined;
    targets.push({
      name: '1 slot: jobs/s ÷ the Node floor',
      value:
        ratio === undefined || mine === undefined || floor === undefined
          ? '—'
          : `${fmt.f3(ratio)}× (${fmt.int(mine.rate)} vs ${fmt.int(floor.rate)}; floor CPU ${fmt.f1(floor.cpuUsPerJob.workers)} µs/job, ours ${fmt.f1(mine.cpuUsPerJob.workers)})`,
      goal: `≥ ${TARGET_FLOOR_RATIO_1}×`,
      pass: ratio === undefined ? undefined : ratio >= TARGET_FLOOR_RATIO_1,
      note: ours('1')?.floorError ?? 'no 1-slot queue run',
    });
  }
  speedup('1', TARGET_SPEEDUP_1);

  const floorP50 = ours('1')?.floorLatency?.p50Us;
  for (const label of ['1', '10']) {
    const latency = ours(label)?.runs.latency;
    const p50 = latency?.kind === 'latency' ? latency.p50Us : undefined;
    const base = ceilingFigures([ours(label)?.ceiling]);
    const theirs = original(label)?.runs.latency;
    const context =
      (label !== '1' && base.herdP50 !== undefined ? `; echo ×${label} ${fmt.int(base.herdP50)}` : '') +
      (label === '1' && floorP50 !== undefined && base.latencyP50 !== undefined ? `; Node floor +${fmt.int(floorP50 - base.latencyP50)}` : '') +
      (theirs?.kind === 'latency' ? `; original ${fmt.int(theirs.p50Us)}` : '');
    const ceilingP50 = base.latencyP50;
    const measured = p50 !== undefined && ceilingP50 !== undefined;
    targets.push({
      name: `${label} slot${label === '1' ? '' : 's'}: foreground p50`,
      value: measured ? `${fmt.int(p50)} µs (ceiling ${fmt.int(ceilingP50)}, +${fmt.int(p50 - ceilingP50)}${context})` : '—',
      goal: `≤ ceiling p50 + ${TARGET_P50_OVER_CEILING_US} µs`,
      // The target is the 1-slot figure; 10 slots is shown beside it.
      pass: label === '1' && measured ? p50 <= ceilingP50 + TARGET_P50_OVER_CEILING_US : undefined,
      note: label === '1' ? 'no latency run' : 'context, not a target',
    });
  }

  // After exactly one N-job run (the first, when --repeat ran several): what the target is about.
  const run1000 = ours('1000')?.queueRuns?.[0] ?? queueOf(ours('1000'));
  const after1000 = judgedMemory(run1000?.aloneAfterKiB, run1000?.pssAfterKiB);
  targets.push({
    name: `1000 slots: PSS after a ${fmt.int(options.jobs)}-job run`,
    value: after1000 === undefined ? '—' : `${fmt.mib(after1000.kib)} MiB ${after1000.kind} (PSS ${pssMib(run1000?.pssAfterKiB)}, RSS ${fmt.mib(run1000?.rssAfterKiB)})`,
    goal: `≤ ${TARGET_PSS_1000_AFTER_MIB} MiB`,
    pass: after1000 === undefined ? undefined : after1000.kib / 1024 <= TARGET_PSS_1000_AFTER_MIB,
    note: 'no 1000-slot queue run, or PSS unreadable',
  });

  const s10 = ours('10');
  const idle10 = judgedMemory(s10?.idleAloneKiB, s10?.idlePssKiB);
  targets.push({
    name: `10 slots: idle PSS (${options.settleMs} ms after registering)`,
    value: idle10 === undefined ? '—' : `${fmt.mib(idle10.kib)} MiB ${idle10.kind} (PSS ${pssMib(s10?.idlePssKiB)}, RSS ${fmt.mib(s10?.idleRssKiB)})`,
    goal: `≤ ${TARGET_PSS_10_IDLE_MIB} MiB`,
    pass: idle10 === undefined ? undefined : idle10.kib / 1024 <= TARGET_PSS_10_IDLE_MIB,
    note: 'no 10-slot scenario, or PSS unreadable',
  });

  const s1000 = ours('1000');
  const idle1000 = judgedMemory(s1000?.idleAloneKiB, s1000?.idlePssKiB);
  const perSlot = idle10 !== undefined && idle1000 !== undefined && idle10.kind === idle1000.kind ? (idle1000.kib - idle10.kib) / 990 : undefined;
  const perSlotOf = (a: number | null | undefined, b: number | null | undefined): string =>
    a === null || a === undefined || b === null || b === undefined ? '—' : fmt.f1((b - a) / 990);
  targets.push({
    name: 'idle PSS per extra slot (10→1000)',
    value:
      perSlot === undefined || idle10 === undefined || idle1000 === undefined
        ? '—'
        : `${fmt.f1(perSlot)} KiB ${idle10.kind} (${fmt.mib(idle10.kib)} → ${fmt.mib(idle1000.kib)} MiB; ` +
          `PSS ${perSlotOf(s10?.idlePssKiB, s1000?.idlePssKiB)}, RSS ${perSlotOf(s10?.idleRssKiB, s1000?.idleRssKiB)} KiB/slot)`,
    goal: `≤ ${TARGET_PSS_PER_SLOT_KIB} KiB`,
    pass: perSlot === undefined ? undefined : perSlot <= TARGET_PSS_PER_SLOT_KIB,
    note: 'needs the 10 and 1000 scenarios',
  });

  const runsOf = (binary: ScenarioResult['binary']): RunResult[] =>
    scenarios.filter((s) => s.binary === binary).flatMap((s) => [...Object.values(s.runs), ...(s.queueRuns ?? [])]);
  const cleanliness = (runs: RunResult[]): { checked: number; bad: number; latencyFailures: number } => {
    const checked = runs.filter((r): r is ThroughputResult => r.kind === 'throughput');
    return {
      checked: checked.length,
      bad: checked.filter((r) => r.integrity !== undefined && !r.integrity.ok).length,
      latencyFailures: runs.filter((r): r is LatencyResult => r.kind === 'latency').reduce((sum, r) => sum + r.failed, 0),
    };
  };
  const mine = cleanliness(runsOf('ours'));
  const theirs = cleanliness(runsOf('compare'));
  const scenariosWithErrors = scenarios.filter((s) => s.binary === 'ours' && s.error !== undefined).length;
  targets.push({
    name: 'zero lost or duplicated jobs, every scenario',
    value:
      mine.checked === 0
        ? '—'
        : `${mine.checked - mine.bad}/${mine.checked} runs clean (${options.verifyBodies ? 'every unique checked' : 'counts, queue and counters'}), ` +
          `${mine.latencyFailures} foreground failures${scenariosWithErrors > 0 ? `, ${scenariosWithErrors} scenarios failed` : ''}` +
          (theirs.checked > 0 ? `; compare: ${theirs.checked - theirs.bad}/${theirs.checked} clean` : ''),
    goal: 'all runs clean',
    pass: mine.checked === 0 ? undefined : mine.bad === 0 && mine.latencyFailures === 0 && scenariosWithErrors === 0,
    note: 'no run',
  });
  return targets;
}

// ── Main ──────────────────────────────────────────────────────────────────────────────────────────

function commandOutput(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Undefined when `bin` starts, else why not. Ours answers --help with status 0; the original exits 1
 * on both --help and --version, so it counts as runnable when --version printed its version (a
 * missing shared library fails before that, in the loader's words on stderr).
 */
function daemonRunnable(bin: string): string | undefined {
  const js = bin.endsWith('.js');
  const flag = js ? '--help' : '--version';
  try {
    execFileSync(js ? process.execPath : bin, js ? [bin, flag] : [flag], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
    return undefined;
  } catch (error) {
    const e = error as { status?: number; stdout?: Buffer; stderr?: Buffer; message: string };
    if (!js && /version/i.test(e.stdout?.toString() ?? '')) return undefined;
    return `${bin} ${flag} failed (status ${e.status ?? '?'}): ${(e.stderr?.toString() || e.message).trim().split('\n')[0]}`;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const watchdog = setTimeout(() => {
    process.stderr.write(`\nbench:e2e: over --max-minutes ${options.maxMinutes}; stopping everything\n`);
    killEverything();
    process.exit(3);
  }, options.maxMinutes * 60_000);
  watchdog.unref();

  const tmp = mkdtempSync(join(tmpdir(), 'driveshaft-e2e-'));
  tempDir = tmp;
  const date = new Date().toISOString();
  const dirty = (commandOutput('git', ['status', '--porcelain']) ?? '') !== '';
  const meta: Record<string, unknown> = {
    date,
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    commit: `${commandOutput('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown'}${dirty ? '-dirty' : ''}`,
    gearmand: commandOutput(process.env['GEARMAND_BIN'] ?? '/usr/sbin/gearmand', ['--version'])?.split('\n')[0],
    nginx: commandOutput(process.env['NGINX_BIN'] ?? '/usr/sbin/nginx', ['-v']) ?? undefined,
    uptimeStart: commandOutput('uptime', []),
    loadStart: loadAverage(),
    options: { ...options, scenarios: options.scenarios.map((s) => s.label) },
  };
  process.stdout.write(`bench:e2e: ${options.jobs} jobs, scenarios ${options.scenarios.map((s) => s.label).join(' ')}, modes ${options.modes.join(',')}; temp ${tmp}\n`);
  process.stdout.write(`load: ${String(meta['uptimeStart'])}\n`);
  if (options.profile) process.stdout.write('--profile: the daemon runs with --cpu-prof; its figures are slower than a normal run\n');

  // nginx or its stand-in, decided once and stated up front.
  const probe = await startEndpoint({ dir: join(tmp, 'probe'), forceNode: options.endpoint === 'node' });
  const endpointKind: EndpointKind = probe.kind;
  meta['endpoint'] = probe.kind === 'nginx' ? 'nginx' : `Node stand-in (${probe.fallbackReason ?? ''})`;
  await probe.stop();
  if (endpointKind === 'node') {
    process.stdout.write(`NOTE: ${probe.fallbackReason}. Using the minimal Node endpoint instead; it costs more CPU than nginx, so ratios are pessimistic.\n`);
  }

  const ceilings: CeilingResult[] = [];
  const scenarios: ScenarioResult[] = [];
  const progress = (text: string): void => {
    process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
  };

  const ceilingLine = (c: CeilingResult): string =>
    `  ceiling: gearman -w ${fmt.int(c.libgearman?.rate)} jobs/s, codec echo ${fmt.int(c.node?.rate)} jobs/s, echo fg p50 ${fmt.int(c.latencyNode?.p50Us)} µs` +
    (c.latencyNodeHerd ? `, echo ×${c.latencyNodeHerd.connections} fg p50 ${fmt.int(c.latencyNodeHerd.p50Us)} µs` : '') +
    (c.errors.length ? `; ${c.errors.join('; ')}` : '');
  const measure = async (at: string, herdSlots: number): Promise<CeilingResult> => {
    progress(`ceiling (${at})`);
    const c = await measureCeiling(options, at, herdSlots);
    ceilings.push(c);
    progress(ceilingLine(c));
    return c;
  };

  const problem = daemonRunnable(OUR_BIN);
  const binaries: Array<{ binary: 'ours' | 'compare'; bin: string; signed: boolean }> = [];
  if (problem === undefined) binaries.push({ binary: 'ours', bin: OUR_BIN, signed: false });
  if (problem === undefined && options.signing) binaries.push({ binary: 'ours', bin: OUR_BIN, signed: true });
  else process.stdout.write(`NOTE: the daemon is not runnable yet, scenarios skipped: ${problem}\n`);
  if (options.compareBin !== undefined) {
    const compareProblem = daemonRunnable(options.compareBin);
    if (compareProblem === undefined) binaries.push({ binary: 'compare', bin: options.compareBin, signed: false });
    else process.stdout.write(`NOTE: DRIVESHAFT_COMPARE_BIN not runnable: ${compareProblem}\n`);
  }

  // The machine is shared: a ceiling measured minutes away from a scenario can be off by half. With
  // --ceiling each, every scenario is measured right after a ceiling of its own.
  let once: CeilingResult | undefined;
  if (options.ceiling === 'once' || binaries.length === 0) once = await measure('start', 1);
  for (const spec of options.scenarios) {
    if (binaries.length === 0) break;
    const ceiling = once ?? (await measure(`before ${spec.label}`, spec.slots));
    for (const { binary, bin, signed } of binaries) {
      progress(`${binary === 'compare' ? `${compareKind(bin) === 'original' ? 'original' : 'compare'} ` : ''}${spec.label} slot(s)${spec.pools > 1 ? ` (${spec.pools} pools)` : ''}${signed ? ', signing on' : ''}`);
      const dir = join(tmp, `${binary}-${spec.label}${signed ? SIGNED_SUFFIX : ''}`);
      mkdirSync(dir, { recursive: true });
      const result = await runScenario({ options, spec, binary, bin, dir, signed });
      result.ceiling = ceiling;
      scenarios.push(result);
      const q = result.runs.queue ?? result.runs.cold;
      const lat = result.runs.latency;
      progress(
        `  ${result.error ? `ERROR ${result.error.split('\n')[0]}` : ''}` +
          (q?.kind === 'throughput' ? `queue ${fmt.int(q.rate)} jobs/s, ${fmt.f1(q.cpuUsPerJob.workers)} µs CPU/job` : '') +
          (lat?.kind === 'latency' ? `, fg p50 ${fmt.int(lat.p50Us)} µs` : ''),
      );
    }
  }

  meta['loadEnd'] = loadAverage();
  meta['uptimeEnd'] = commandOutput('uptime', []);
  meta['durationS'] = (Date.now() - started) / 1000;
  const { text, targets } = report(options, meta, ceilings, scenarios);
  process.stdout.write(`${text}\n`);

  const outPath = options.out ?? join(REPO_ROOT, 'bench', 'results', `e2e-${date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(outPath, '..'), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify({ meta, ceiling: ceilingFigures(ceilings), ceilings, scenarios, targets }, null, 2)}\n`);
  process.stdout.write(`\nJSON: ${outPath}\n`);
  if (options.keepTmp || scenarios.some((s) => s.error !== undefined)) process.stdout.write(`temp dir kept: ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
  clearTimeout(watchdog);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:e2e failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  killEverything();
  process.exit(1);
});
