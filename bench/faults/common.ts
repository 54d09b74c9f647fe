/**
 * Pieces shared by the fault benchmarks (`bench/delivery`, `bench/chaos`): process bookkeeping so a
 * run never leaves anything behind, a sampler of gearmand's queue, the endpoint and the daemon's
 * counters, the recovery arithmetic, the daemon's log, the report's table and JSON file, and the
 * end of a run (the drain, the count of lost and repeated jobs, stopping everything).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { COUNTER_NAMES } from '../../src/ipc/counters.js';
import type { Gearmand } from '../../test/helpers/gearmand.js';
import { REPO_ROOT, sumCounters, type Daemon } from '../e2e/daemon.js';
import { killEverything, livePids } from '../e2e/live-pids.js';
import { loadAverage, openFds, sampleProcesses } from '../e2e/proc-stats.js';
import type { EndpointReport, EndpointStats, FaultEndpoint } from './endpoint-control.js';
import type { Feeder } from './feeder.js';

export { REPO_ROOT, killEverything, livePids };

// ── Bookkeeping: everything started is stopped, whatever happens ─────────────────────────────────

/** Kills everything on exit, Ctrl-C and after `maxMinutes`. */
export function installGuards(name: string, maxMinutes: number): NodeJS.Timeout {
  process.on('exit', killEverything);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: stopping every process the benchmark started\n`);
      killEverything();
      process.exit(130);
    });
  }
  const watchdog = setTimeout(() => {
    process.stderr.write(`\n${name}: over --max-minutes ${maxMinutes}; stopping everything\n`);
    killEverything();
    process.exit(3);
  }, maxMinutes * 60_000);
  watchdog.unref();
  return watchdog;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Polls `condition` every `everyMs` until it holds (true) or `timeoutMs` passed (false). */
export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await delay(everyMs);
  }
}

// ── Run metadata and output ──────────────────────────────────────────────────────────────────────

function commandOutput(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT }).trim();
  } catch {
    return undefined;
  }
}

/** Shell-quotes one argument when it needs it, so the printed command can be pasted back. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

export function runMeta(script: string, options: unknown): Record<string, unknown> {
  const dirty = (commandOutput('git', ['status', '--porcelain']) ?? '') !== '';
  const args = process.argv.slice(2);
  return {
    date: new Date().toISOString(),
    command: `npm run ${script}${args.length > 0 ? ` -- ${args.map(quote).join(' ')}` : ''}`,
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    commit: `${commandOutput('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown'}${dirty ? '-dirty' : ''}`,
    gearmand: commandOutput(process.env['GEARMAND_BIN'] ?? '/usr/sbin/gearmand', ['--version'])?.split('\n')[0],
    loadStart: loadAverage(),
    options,
  };
}

export function writeResult(name: string, date: string, data: unknown, out?: string): string {
  const path = out ?? join(REPO_ROOT, 'bench', 'results', `${name}-${date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export const fmt = {
  int: (n: number | undefined | null): string => (n === undefined || n === null || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US')),
  s: (ms: number | undefined | null): string => (ms === undefined || ms === null || !Number.isFinite(ms) ? '—' : `${(ms / 1000).toFixed(1)} s`),
};

/**
 * The report's first lines: which benchmark, when, on what and by which command; then the feed (when
 * `options` says it), the benchmark's own `setup` and the machine's load average at the start and the end (a busy shared
 * machine skews every figure).
 */
export function reportHeading(kind: string, meta: Record<string, unknown>, options: { jobs: number; rate: number; slots: number } | undefined, setup: string): string[] {
  const feed = options === undefined ? '' : `${fmt.int(options.jobs)} jobs at ${options.rate > 0 ? `${fmt.int(options.rate)}/s` : 'once'}, ${options.slots} slots, `;
  return [
    `driveshaft ${kind} — ${String(meta['date'])}, commit ${String(meta['commit'])}, node ${String(meta['node'])}, ${String(meta['cpu'])} ×${String(meta['cores'])}`,
    `command: ${String(meta['command'])}`,
    `${feed}${setup}; load ${(meta['loadStart'] as number[]).join(' ')} → ${(meta['loadEnd'] as number[]).join(' ')}`,
  ];
}

/** A daemon counter shown as a column of the run table: its header and the counter's name. */
export type CounterColumn = readonly [header: string, counter: string];

/** The run table's columns every fault benchmark shows, `counters` between http_errors and the log lines. */
export function tallyHeader(counters: readonly CounterColumn[]): string[] {
  return ['queued', 'completed', 'LOST', 'dup ids', 'WORK_FAIL', 'http_errors', ...counters.map(([header]) => header), 'log lines', 'steady/s', 'final drain', 'wall'];
}

/** A run's cells under tallyHeader(counters). */
export function tallyCells(run: RunTally, counters: readonly CounterColumn[]): string[] {
  return [
    fmt.int(run.queued),
    fmt.int(run.completed),
    `${fmt.int(run.lost)}${run.stillQueued > 0 ? ` (+${fmt.int(run.stillQueued)} still queued)` : ''}`,
    `${fmt.int(run.duplicateIds)}${run.extraOk > run.duplicateIds ? ` (${fmt.int(run.extraOk)} extra 200s)` : ''}`,
    fmt.int(run.workFail),
    fmt.int(run.counters['http_errors']),
    ...counters.map(([, counter]) => fmt.int(run.counters[counter])),
    fmt.int(run.logLines.total),
    fmt.int(run.rateSteady),
    fmt.s(run.finalDrainMs),
    fmt.s(run.wallMs),
  ];
}

/** The daemon's log lines by level and its `top` most frequent messages. */
export function logSummaryText(lines: LogSummary, top: number): string {
  return `daemon log ${JSON.stringify(lines.byLevel)}${lines.nonJson > 0 ? `, ${lines.nonJson} non-JSON` : ''}; top: ${lines.top.slice(0, top).map((t) => `${t.count}× "${t.msg}"`).join(', ')}`;
}

// ── The daemon's counters, across restarts of the daemon ─────────────────────────────────────────

export type Counters = Record<string, number>;

export function zero(): Counters {
  return Object.fromEntries(COUNTER_NAMES.map((name) => [name, 0]));
}

export function minus(a: Counters, b: Counters): Counters {
  return Object.fromEntries(COUNTER_NAMES.map((name) => [name, (a[name] ?? 0) - (b[name] ?? 0)]));
}

/**
 * Sums the status port's `counters` over the daemon's incarnations: a restarted daemon starts from
 * zero, so the last value read from the previous one is carried over. Whatever the previous one
 * counted between its last read and its death is not in the sum (reads are at most `everyMs` apart).
 */
export class CounterTracker {
  #port = 0;
  #carried = zero();
  #last = zero();

  async read(daemon: Daemon): Promise<Counters | undefined> {
    let reply: string;
    try {
      reply = await daemon.status('counters');
    } catch {
      return undefined; // the master is being killed or restarted
    }
    const now = { ...zero(), ...sumCounters(reply) };
    if (daemon.statusPort !== this.#port) {
      if (this.#port !== 0) this.#carried = this.total();
      this.#port = daemon.statusPort;
    }
    this.#last = now;
    return this.total();
  }

  total(): Counters {
    return Object.fromEntries(COUNTER_NAMES.map((name) => [name, (this.#carried[name] ?? 0) + (this.#last[name] ?? 0)]));
  }
}

// ── Sampling ─────────────────────────────────────────────────────────────────────────────────────

export interface Sample {
  atMs: number;
  /** Jobs acknowledged by gearmand so far. */
  queued: number;
  /** gearmand `status` for the bench function: queued + running; null while gearmand is down. */
  total: number | null;
  running: number | null;
  /** From the endpoint. */
  ok: number;
  distinct: number;
  downRequests: number;
  /** Cumulative daemon counters (every `countersEvery` samples; the last read otherwise). */
  counters: Counters;
}

/**
 * Reads gearmand's queue, the endpoint's counts and the daemon's counters every `everyMs`, and keeps
 * every sample (a few thousand per run).
 */
export interface SampleSources {
  gearmand: () => Gearmand;
  daemon: () => Daemon | undefined;
  endpoint: FaultEndpoint;
  feeder: () => Feeder | undefined;
  functionName: string;
}

export class Sampler {
  readonly samples: Sample[] = [];
  readonly counters = new CounterTracker();
  readonly #source: SampleSources;
  readonly #everyMs: number;
  readonly #countersEvery: number;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #tick = 0;

  /** Counters are read every `countersEvery` samples: the master polls every child for them. */
  constructor(source: SampleSources, everyMs = 100, countersEvery = 5) {
    this.#source = source;
    this.#everyMs = everyMs;
    this.#countersEvery = countersEvery;
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      this.sample()
        .catch(() => undefined)
        .finally(() => {
          this.#busy = false;
        });
    }, this.#everyMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  last(): Sample | undefined {
    return this.samples[this.samples.length - 1];
  }

  async sample(withCounters = false): Promise<Sample> {
    const atMs = Date.now();
    const { functionName } = this.#source;
    const [status, stats] = await Promise.all([
      this.#source
        .gearmand()
        .status()
        .catch(() => undefined),
      this.#source.endpoint.stats().catch((): EndpointStats | undefined => undefined),
    ]);
    const daemon = this.#source.daemon();
    if (daemon !== undefined && (withCounters || this.#tick++ % this.#countersEvery === 0)) await this.counters.read(daemon);
    const line = status?.find((s) => s.function === functionName);
    const sample: Sample = {
      atMs,
      queued: this.#source.feeder()?.queued ?? 0,
      total: status === undefined ? null : (line?.total ?? 0),
      running: status === undefined ? null : (line?.running ?? 0),
      ok: stats?.ok ?? this.last()?.ok ?? 0,
      distinct: stats?.distinct ?? this.last()?.distinct ?? 0,
      downRequests: stats?.downRequests ?? this.last()?.downRequests ?? 0,
      counters: this.counters.total(),
    };
    this.samples.push(sample);
    return sample;
  }
}

// ── Recovery arithmetic ──────────────────────────────────────────────────────────────────────────

/** Distinct completions per second in [fromMs, toMs), from the endpoint's 100 ms buckets. */
export function rateIn(report: EndpointReport, fromMs: number, toMs: number): number {
  const first = Math.max(0, Math.floor((fromMs - report.startedAtMs) / report.bucketMs));
  const last = Math.floor((toMs - report.startedAtMs) / report.bucketMs);
  if (last <= first) return 0;
  let sum = 0;
  for (let i = first; i < last; i++) sum += report.firstOkBuckets[i] ?? 0;
  return (sum * 1000) / ((last - first) * report.bucketMs);
}

export const PRE_FAULT_WINDOW_MS = 2_000;
export const RECOVERY_WINDOW_MS = 500;
export const RECOVERY_FRACTION = 0.5;

/**
 * The completion rate a fault is measured against: the rate of the 2 s before it, but no more than
 * the feed's rate (`arrivalRate`, 0 = not capped), so a backlog still being worked off from an
 * earlier fault does not raise the bar.
 */
export function rateBeforeFault(report: EndpointReport, faultStartMs: number, arrivalRate: number): number {
  const measured = rateIn(report, faultStartMs - PRE_FAULT_WINDOW_MS, faultStartMs);
  return arrivalRate > 0 ? Math.min(measured, arrivalRate) : measured;
}

/**
 * Time from `fromMs` until the completion rate is back: the end of the first 500 ms window (sliding
 * by 100 ms) whose distinct-completion rate is at least half of `rateBefore`. Undefined when it
 * never comes back before `untilMs` or there was no flow before the fault.
 */
export function rateRecoveryMs(report: EndpointReport, rateBefore: number, fromMs: number, untilMs: number): number | undefined {
  if (rateBefore <= 0) return undefined;
  for (let end = fromMs + RECOVERY_WINDOW_MS; end <= untilMs; end += report.bucketMs) {
    if (rateIn(report, end - RECOVERY_WINDOW_MS, end) >= rateBefore * RECOVERY_FRACTION) return end - fromMs;
  }
  return undefined;
}

/** Time from `fromMs` until the first job is answered 200 again. */
export function firstOkAfterMs(report: EndpointReport, fromMs: number, untilMs: number): number | undefined {
  const first = Math.max(0, Math.floor((fromMs - report.startedAtMs) / report.bucketMs));
  const last = Math.floor((untilMs - report.startedAtMs) / report.bucketMs);
  for (let i = first; i <= last; i++) {
    if ((report.firstOkBuckets[i] ?? 0) > 0) return Math.max(0, report.startedAtMs + i * report.bucketMs - fromMs);
  }
  return undefined;
}

/**
 * gearmand's queue (queued + running) in steady state: the slots' jobs plus 100 ms of arrivals. A
 * queue at most this long has no backlog. Only meaningful with a steady feed (rate > 0).
 */
export function steadyBacklog(rate: number, slots: number): number {
  return Math.max(2 * slots, Math.ceil(rate / 10));
}

/**
 * Backlog drain: time from `fromMs` until gearmand's queue is back to `steady` (see steadyBacklog),
 * i.e. the jobs that piled up during a fault are worked off; undefined when not before `untilMs`.
 */
export function drainMs(samples: readonly Sample[], fromMs: number, untilMs: number, steady: number): number | undefined {
  for (const s of samples) {
    if (s.atMs < fromMs || s.atMs > untilMs || s.total === null) continue;
    if (s.total <= steady) return s.atMs - fromMs;
  }
  return undefined;
}

/** The largest gearmand queue seen in [fromMs, toMs]. */
export function peakBacklog(samples: readonly Sample[], fromMs: number, toMs: number): number | undefined {
  let peak: number | undefined;
  for (const s of samples) if (s.atMs >= fromMs && s.atMs <= toMs && s.total !== null) peak = Math.max(peak ?? 0, s.total);
  return peak;
}

/** The counters of the sample nearest `atMs` (the read before it). */
export function countersAt(samples: readonly Sample[], atMs: number): Counters {
  let found = samples[0]?.counters ?? zero();
  for (const s of samples) {
    if (s.atMs > atMs) break;
    found = s.counters;
  }
  return found;
}

// ── The daemon's log ─────────────────────────────────────────────────────────────────────────────

export interface DaemonLogLine {
  atMs: number;
  level: number;
  msg: string;
  unique?: string;
  cause?: string;
}

export interface DaemonLog {
  /** Every line of the daemon's stdout and stderr. */
  total: number;
  /** Lines that are not bunyan JSON (stack traces, Node warnings). */
  nonJson: number;
  byLevel: Record<string, number>;
  /** Lines per message text, most frequent first. */
  byMessage: Array<{ msg: string; count: number }>;
  lines: DaemonLogLine[];
}

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export function readDaemonLog(path: string): DaemonLog {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // no output at all
  }
  const rows = text.split('\n');
  if (rows[rows.length - 1] === '') rows.pop();
  const log: DaemonLog = { total: rows.length, nonJson: 0, byLevel: {}, byMessage: [], lines: [] };
  const messages = new Map<string, number>();
  for (const row of rows) {
    let parsed: { time?: unknown; level?: unknown; msg?: unknown; unique?: unknown; cause?: unknown };
    try {
      parsed = JSON.parse(row) as typeof parsed;
    } catch {
      log.nonJson++;
      continue;
    }
    const level = typeof parsed.level === 'number' ? parsed.level : 0;
    const name = LEVEL_NAMES[level] ?? String(level);
    log.byLevel[name] = (log.byLevel[name] ?? 0) + 1;
    const msg = typeof parsed.msg === 'string' ? parsed.msg : '';
    messages.set(msg, (messages.get(msg) ?? 0) + 1);
    const line: DaemonLogLine = { atMs: typeof parsed.time === 'string' ? Date.parse(parsed.time) : NaN, level, msg };
    if (typeof parsed.unique === 'string') line.unique = parsed.unique;
    if (typeof parsed.cause === 'string') line.cause = parsed.cause;
    log.lines.push(line);
  }
  log.byMessage = [...messages].map(([msg, count]) => ({ msg, count })).sort((a, b) => b.count - a.count);
  return log;
}

export function linesBetween(log: DaemonLog, fromMs: number, toMs: number): number {
  return log.lines.filter((l) => l.atMs >= fromMs && l.atMs < toMs).length;
}

// ── Processes ────────────────────────────────────────────────────────────────────────────────────

export interface ProcessFigures {
  role: 'master' | 'child';
  pid: number;
  rssKiB: number;
  fds: number;
}

/** RSS and open fds of the daemon's master and each child right now. */
export function daemonProcesses(daemon: Daemon): ProcessFigures[] {
  const pids = daemon.pids();
  const sample = sampleProcesses(pids);
  return sample.processes.map((p) => ({ role: p.pid === daemon.pid ? 'master' : 'child', pid: p.pid, rssKiB: p.rssKiB, fds: openFds(p.pid) }));
}

export function describeProcesses(list: readonly ProcessFigures[]): string {
  return list.map((p) => `${p.role} ${p.pid}: ${(p.rssKiB / 1024).toFixed(1)} MiB RSS, ${p.fds} fds`).join('; ');
}

// ── A run's outcome ──────────────────────────────────────────────────────────────────────────────

/** The daemon's log as the JSON result keeps it. */
export interface LogSummary {
  total: number;
  nonJson: number;
  byLevel: Record<string, number>;
  top: Array<{ msg: string; count: number }>;
}

/** What every fault benchmark counts for a run, whatever its faults. */
export interface RunTally {
  error?: string;
  queued: number;
  completed: number;
  /** Queued ids never answered 200, gearmand's queue empty. */
  lost: number;
  /** Still in gearmand when the drain timed out (neither lost nor completed yet). */
  stillQueued: number;
  /** Ids answered 200 more than once, and the 200s beyond the first. */
  duplicateIds: number;
  extraOk: number;
  unexpectedIds: number;
  feederReconnects: number;
  counters: Counters;
  workFail: number;
  logLines: LogSummary;
  processesStart: ProcessFigures[];
  processesEnd: ProcessFigures[];
  /** Distinct completions per second over the 5 s before the first fault. */
  rateSteady: number;
  /** From the last fault's end (or the feed's end if later) to the queue being empty. */
  finalDrainMs: number | undefined;
  feedSeconds: number;
  wallMs: number;
}

export interface SettleParts {
  options: { jobs: number; drainTimeoutS: number };
  prefix: string;
  feeder: Feeder;
  sampler: Sampler;
  endpoint: FaultEndpoint;
  /** The daemon running now (after any restart). */
  daemon: Daemon;
  /** The first fault's start and the last one's end; undefined when there was none. */
  firstFaultAtMs: number | undefined;
  lastFaultEndMs: number | undefined;
  /** How many of the daemon's most frequent log messages the result keeps. */
  topMessages: number;
}

/**
 * The end of a run: waits for the feed to end and gearmand's queue to empty, asks the endpoint which
 * ids were answered, stops the daemon, reads its log, and counts it all into `result`. Returns what
 * the per-fault figures come from: the endpoint's report, the log and when the queue was empty.
 */
export async function settleRun(result: RunTally, parts: SettleParts): Promise<{ report: EndpointReport; log: DaemonLog; drainedAtMs: number }> {
  const { options, feeder: f, sampler: s, daemon } = parts;
  await f.done;
  const drained = await waitUntil(async () => {
    const last = await s.sample();
    return last.total === 0 && last.queued === options.jobs;
  }, options.drainTimeoutS * 1000, 100);
  const drainedAtMs = Date.now();
  if (!drained) result.error = `queue not empty ${options.drainTimeoutS} s after the feed ended`;
  // Answers in flight when gearmand's queue emptied reach the endpoint within a moment.
  await delay(500);
  s.stop();
  const final = await s.sample(true);
  result.processesEnd = daemonProcesses(daemon);
  result.stillQueued = final.total ?? 0;
  result.queued = f.queued;
  result.feederReconnects = f.reconnects;
  result.feedSeconds = (f.finishedAtMs - f.startedAtMs) / 1000;
  result.counters = final.counters;
  result.workFail = final.counters['jobs_failed'] ?? 0;
  result.finalDrainMs = drained ? drainedAtMs - Math.max(parts.lastFaultEndMs ?? 0, f.finishedAtMs) : undefined;

  const report = await parts.endpoint.report(parts.prefix, f.queued);
  result.completed = f.queued - report.missing.length;
  result.lost = Math.max(0, report.missing.length - result.stillQueued);
  result.duplicateIds = report.duplicates.length;
  result.extraOk = report.extraOk;
  result.unexpectedIds = report.unexpected;
  const firstFault = parts.firstFaultAtMs ?? drainedAtMs;
  result.rateSteady = rateIn(report, Math.max(f.startedAtMs + 1000, firstFault - 5000), firstFault);

  await daemon.stop();
  livePids.delete(daemon.pid);
  const log = readDaemonLog(daemon.outPath);
  result.logLines = { total: log.total, nonJson: log.nonJson, byLevel: log.byLevel, top: log.byMessage.slice(0, parts.topMessages) };
  return { report, log, drainedAtMs };
}

/** Stops whatever of a run was started, whatever happened: the daemon first, the endpoint last. */
export async function stopRun(parts: { sampler: Sampler | undefined; feeder: Feeder | undefined; daemon: Daemon | undefined; gearmand: Gearmand | undefined; endpoint: FaultEndpoint }): Promise<void> {
  parts.sampler?.stop();
  parts.feeder?.stop();
  if (parts.daemon !== undefined) {
    await parts.daemon.stop();
    livePids.delete(parts.daemon.pid);
  }
  if (parts.gearmand !== undefined) {
    await parts.gearmand.stop();
    livePids.delete(parts.gearmand.pid);
  }
  await parts.endpoint.stop();
  livePids.delete(parts.endpoint.pid);
}
