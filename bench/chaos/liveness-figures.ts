/**
 * The figures of the chaos benchmark's liveness runs: per job stream (one prefix of ids), when each
 * job was submitted and first answered 200, from which come the completion rate of a window, the
 * latency of the jobs submitted in it and its longest stall; dead letters; log lines of a window;
 * and the result every liveness run shares (its tally row, the healthy path's rate before and during
 * the fault, the verdict against the targets of issue 19).
 */
import { readFileSync } from 'node:fs';
import type { DaemonLog, ProcessFigures, RunTally } from '../faults/common.js';
import type { FaultEndpoint, IdTimes } from '../faults/endpoint-control.js';
import type { Feeder } from '../faults/feeder.js';

/** Issue 19: the healthy path keeps ≥ 90 % of its rate during each fault, and its p99 within 2×. */
export const HEALTHY_RATE_TARGET = 0.9;
export const HEALTHY_P99_TARGET = 2;
/**
 * The p99 target is judged against at least this baseline: on loopback the p99 before a fault is a
 * few ms, and a scheduling hiccup on a shared 2-core machine alone moves it by tens of ms.
 */
export const P99_BASELINE_FLOOR_MS = 50;
/** The "before" rate is measured over at most this long before the fault. */
export const BEFORE_WINDOW_MS = 5_000;
/**
 * A fault's average rate hides a stall whose backlog is worked off before the fault ends (a stream
 * below capacity catches up), so the lowest rate over any window this long is reported beside it.
 */
export const WORST_WINDOW_MS = 5_000;

export const LIVENESS_FAULTS = ['hung-server', 'poison-job', 'function-outage'] as const;
export type LivenessFault = (typeof LIVENESS_FAULTS)[number];

/** Jobs `${prefix}-0 …` of one stream: when each was submitted and first answered 200 (0: never). */
export interface Stream {
  prefix: string;
  count: number;
  submittedAtMs: number[];
  firstOkAtMs: number[];
  repeats: IdTimes['repeats'];
}

export async function collectStream(endpoint: FaultEndpoint, prefix: string, count: number, submittedAt: (i: number) => number | undefined): Promise<Stream> {
  const times = await endpoint.idTimes(prefix, count);
  return { prefix, count, submittedAtMs: Array.from({ length: count }, (_, i) => submittedAt(i) ?? 0), firstOkAtMs: times.firstOkAtMs, repeats: times.repeats };
}

export function feederStream(endpoint: FaultEndpoint, feeder: Feeder, prefix: string): Promise<Stream> {
  return collectStream(endpoint, prefix, feeder.queued, (i) => feeder.submittedAtMs(i));
}

/** Distinct completions per second in [fromMs, toMs). */
export function completionRate(stream: Stream, fromMs: number, toMs: number): number {
  if (toMs <= fromMs) return 0;
  const n = stream.firstOkAtMs.filter((t) => t !== 0 && t >= fromMs && t < toMs).length;
  return (n * 1000) / (toMs - fromMs);
}

export interface Latency {
  /** Jobs submitted in the window. */
  jobs: number;
  /** Submission → first 200, ms; undefined without jobs. */
  p50: number | undefined;
  p99: number | undefined;
  max: number | undefined;
  /** Of those, never answered 200 (left out of the percentiles). */
  unanswered: number;
}

/** The lowest completion rate over any WORST_WINDOW_MS of [fromMs, toMs) (sliding by 100 ms). */
export function worstRate(stream: Stream, fromMs: number, toMs: number): number {
  if (toMs - fromMs <= WORST_WINDOW_MS) return completionRate(stream, fromMs, toMs);
  const times = stream.firstOkAtMs.filter((t) => t !== 0 && t >= fromMs && t < toMs).sort((a, b) => a - b);
  let lowest = Infinity;
  let first = 0;
  let end = 0;
  for (let start = fromMs; start + WORST_WINDOW_MS <= toMs; start += 100) {
    while (first < times.length && (times[first] as number) < start) first++;
    while (end < times.length && (times[end] as number) < start + WORST_WINDOW_MS) end++;
    lowest = Math.min(lowest, end - first);
  }
  return (lowest * 1000) / WORST_WINDOW_MS;
}

/** Latency (submission → first 200) of the stream's jobs submitted in [fromMs, toMs). */
export function latencyOf(stream: Stream, fromMs: number, toMs: number): Latency {
  const values: number[] = [];
  let jobs = 0;
  let unanswered = 0;
  stream.submittedAtMs.forEach((at, i) => {
    if (at === 0 || at < fromMs || at >= toMs) return;
    jobs++;
    const ok = stream.firstOkAtMs[i] as number;
    if (ok === 0) unanswered++;
    else values.push(Math.max(0, ok - at));
  });
  values.sort((a, b) => a - b);
  return { jobs, p50: percentile(values, 0.5), p99: percentile(values, 0.99), max: values[values.length - 1], unanswered };
}

function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

/** The longest stretch of [fromMs, toMs) in which no job of the stream was answered 200, and its start. */
export function longestGap(stream: Stream, fromMs: number, toMs: number): { ms: number; startMs: number } {
  const times = stream.firstOkAtMs.filter((t) => t !== 0 && t >= fromMs && t < toMs).sort((a, b) => a - b);
  let previous = fromMs;
  const longest = { ms: 0, startMs: fromMs };
  for (const t of [...times, toMs]) {
    if (t - previous > longest.ms) Object.assign(longest, { ms: t - previous, startMs: previous });
    previous = t;
  }
  return longest;
}

export function longestGapMs(stream: Stream, fromMs: number, toMs: number): number {
  return longestGap(stream, fromMs, toMs).ms;
}

export interface Letter {
  atMs: number;
  attempts: number | undefined;
  reason: string | undefined;
}

/** The dead-letter file's letters by unique (a missing file: none). A torn last line is skipped. */
export function readDeadLetters(path: string): Map<string, Letter> {
  const letters = new Map<string, Letter>();
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return letters;
  }
  for (const line of text.split('\n')) {
    try {
      const letter = JSON.parse(line) as { unique?: unknown; time?: unknown; attempts?: unknown; reason?: unknown };
      if (typeof letter.unique !== 'string') continue;
      letters.set(letter.unique, {
        atMs: typeof letter.time === 'string' ? Date.parse(letter.time) : NaN,
        attempts: typeof letter.attempts === 'number' ? letter.attempts : undefined,
        reason: typeof letter.reason === 'string' ? letter.reason : undefined,
      });
    } catch {
      // blank or torn line
    }
  }
  return letters;
}

export interface MessageCount {
  msg: string;
  count: number;
}

/** The daemon's log lines in [fromMs, toMs): their number and their count per message, most first. */
export function logBetween(log: DaemonLog, fromMs: number, toMs: number): { total: number; byMessage: MessageCount[] } {
  const counts = new Map<string, number>();
  let total = 0;
  for (const line of log.lines) {
    if (!(line.atMs >= fromMs && line.atMs < toMs)) continue;
    total++;
    counts.set(line.msg, (counts.get(line.msg) ?? 0) + 1);
  }
  return { total, byMessage: [...counts].map(([msg, count]) => ({ msg, count })).sort((a, b) => b.count - a.count) };
}

/**
 * The healthy path (what must keep moving) in completions/s: before the fault, during it (its average
 * and its worst 5 s) and after; the ratios are during ÷ before; its p99 latency before and during.
 */
export interface Healthy {
  label: string;
  before: number;
  during: number;
  worst: number;
  after: number | undefined;
  ratio: number | undefined;
  worstRatio: number | undefined;
  p99Before: number | undefined;
  p99During: number | undefined;
  p99Ratio: number | undefined;
}

/** A stream's jobs in [fromMs, toMs). */
export interface StreamWindow {
  stream: Stream;
  fromMs: number;
  toMs: number;
}

/**
 * The healthy path's figures from the window before the fault and the fault's window (usually the
 * same stream; the poison job's run uses one stream before and another beside the poison job), and
 * `afterMs` after the fault's window.
 */
export function healthyPath(label: string, before: StreamWindow, during: StreamWindow, arrivalRate: number, afterMs?: number): Healthy {
  // A backlog still being worked off before the fault must not raise the bar above the arrivals.
  const rateBefore = Math.min(arrivalRate, completionRate(before.stream, before.fromMs, before.toMs));
  const rateDuring = completionRate(during.stream, during.fromMs, during.toMs);
  const worst = worstRate(during.stream, during.fromMs, during.toMs);
  const p99Before = latencyOf(before.stream, before.fromMs, before.toMs).p99;
  const p99During = latencyOf(during.stream, during.fromMs, during.toMs).p99;
  return {
    label,
    before: rateBefore,
    during: rateDuring,
    worst,
    after: afterMs === undefined ? undefined : completionRate(during.stream, during.toMs, during.toMs + afterMs),
    ratio: ratioOf(rateDuring, rateBefore),
    worstRatio: ratioOf(worst, rateBefore),
    p99Before,
    p99During,
    p99Ratio: ratioOf(p99During, p99Before),
  };
}

/**
 * "circuit breaker opened…" lines in [fromMs, toMs): the pool's breaker and, on builds that have
 * them, a function's (whose openings the `breaker_opened` counter does not include).
 */
export function breakerOpenings(log: DaemonLog, fromMs: number, toMs: number): number {
  return log.lines.filter((line) => line.atMs >= fromMs && line.atMs < toMs && line.msg.startsWith('circuit breaker opened')).length;
}

/** What every liveness run reports, beside its fault's own figures. */
export interface LivenessResult extends RunTally {
  fault: LivenessFault;
  /** The poison job's kind; undefined for the other faults. */
  variant: string | undefined;
  binary: string;
  bin: string;
  delivery: Record<string, unknown>;
  healthy: Healthy;
  faultStartMs: number;
  faultEndMs: number;
  /** Ids neither answered 200 nor in the dead-letter file (the tally's LOST) and how many were dead-lettered. */
  deadLettered: number;
  lostSample: string[];
  /** The daemon's log lines during the fault. */
  faultLog: { total: number; byMessage: MessageCount[] };
  notes: string[];
}

export function emptyLiveness(fault: LivenessFault, variant: string | undefined, binary: string, bin: string, delivery: Record<string, unknown>): LivenessResult {
  return {
    fault, variant, binary, bin, delivery,
    queued: 0, completed: 0, lost: 0, stillQueued: 0, duplicateIds: 0, extraOk: 0, unexpectedIds: 0, feederReconnects: 0,
    counters: {}, workFail: 0, logLines: { total: 0, nonJson: 0, byLevel: {}, top: [] }, processesStart: [], processesEnd: [],
    rateSteady: 0, finalDrainMs: undefined, feedSeconds: 0, wallMs: 0,
    healthy: { label: '', before: 0, during: 0, worst: 0, after: undefined, ratio: undefined, worstRatio: undefined, p99Before: undefined, p99During: undefined, p99Ratio: undefined },
    faultStartMs: 0, faultEndMs: 0, deadLettered: 0, lostSample: [], faultLog: { total: 0, byMessage: [] }, notes: [],
  };
}

export interface TallyParts {
  streams: readonly Stream[];
  letters: ReadonlyMap<string, Letter>;
  counters: Record<string, number>;
  log: DaemonLog;
  processesEnd: ProcessFigures[];
  feeders: readonly Feeder[];
  /** Jobs still in gearmand when the drain gave up (0 when it did not). */
  stillQueued: number;
  /** When the queues were empty; undefined when the drain gave up. */
  drainedAtMs: number | undefined;
}

/**
 * Fills the run's tally row: an id is completed when answered 200, dead-lettered when its letter is
 * in the file, LOST when neither (once the queues are empty), run twice when answered 200 again.
 */
export function fillTally(result: LivenessResult, parts: TallyParts): void {
  for (const stream of parts.streams) {
    result.queued += stream.count;
    stream.firstOkAtMs.forEach((at, i) => {
      const id = `${stream.prefix}-${i}`;
      if (at !== 0) result.completed++;
      else if (parts.letters.has(id)) result.deadLettered++;
      else {
        result.lost++;
        if (result.lostSample.length < 10) result.lostSample.push(id);
      }
    });
    result.duplicateIds += stream.repeats.length;
    result.extraOk += stream.repeats.reduce((sum, r) => sum + r.atMs.length - 1, 0);
  }
  result.stillQueued = parts.stillQueued;
  result.lost = Math.max(0, result.lost - parts.stillQueued);
  result.counters = parts.counters;
  result.workFail = parts.counters['jobs_failed'] ?? 0;
  result.feederReconnects = parts.feeders.reduce((sum, f) => sum + f.reconnects, 0);
  const feedStart = Math.min(...parts.feeders.map((f) => f.startedAtMs));
  const feedEnd = Math.max(...parts.feeders.map((f) => f.finishedAtMs));
  result.feedSeconds = parts.feeders.length === 0 ? 0 : (feedEnd - feedStart) / 1000;
  result.finalDrainMs = parts.drainedAtMs === undefined ? undefined : parts.drainedAtMs - Math.max(result.faultEndMs, feedEnd);
  result.rateSteady = result.healthy.before;
  result.processesEnd = parts.processesEnd;
  const { log } = parts;
  result.logLines = { total: log.total, nonJson: log.nonJson, byLevel: log.byLevel, top: log.byMessage.slice(0, 10) };
  result.faultLog = logBetween(log, result.faultStartMs, result.faultEndMs);
}

export function ratioOf(during: number | undefined, before: number | undefined): number | undefined {
  return during === undefined || before === undefined || before <= 0 ? undefined : during / before;
}

export const show = {
  pct: (ratio: number | undefined): string => (ratio === undefined ? '—' : `${Math.round(ratio * 100)} %`),
  times: (ratio: number | undefined): string => (ratio === undefined ? '—' : `${ratio < 10 ? ratio.toFixed(1) : Math.round(ratio)}×`),
  ms: (ms: number | undefined): string => (ms === undefined ? '—' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`),
  rate: (perS: number | undefined): string => (perS === undefined ? '—' : perS.toFixed(1)),
  pass: (ok: boolean): string => (ok ? 'PASS' : 'FAIL'),
};

/**
 * `LOST 0 (target 0: PASS); G1 jobs/s during ÷ before 97 % (target ≥ 90 %: PASS), worst 5 s 91 %;
 * p99 latency 6 ms → 51 ms, 8.5× (target ≤ 2 × max(before, 50 ms) = 100 ms: PASS)`: the targets of
 * issue 19 with the figures they judge.
 */
export function verdict(r: LivenessResult): string {
  const h = r.healthy;
  const p99Limit = h.p99Before === undefined ? undefined : HEALTHY_P99_TARGET * Math.max(h.p99Before, P99_BASELINE_FLOOR_MS);
  return (
    `LOST ${r.lost} (target 0: ${show.pass(r.lost === 0 && r.stillQueued === 0 && r.error === undefined)}); ` +
    `${h.label} during ÷ before ${show.pct(h.ratio)} (target ≥ ${HEALTHY_RATE_TARGET * 100} %: ${show.pass(h.ratio !== undefined && h.ratio >= HEALTHY_RATE_TARGET)}), ` +
    `worst ${WORST_WINDOW_MS / 1000} s ${show.pct(h.worstRatio)}; ` +
    `p99 latency ${show.ms(h.p99Before)} → ${show.ms(h.p99During)}, ${show.times(h.p99Ratio)} ` +
    `(target ≤ ${HEALTHY_P99_TARGET} × max(before, ${P99_BASELINE_FLOOR_MS} ms) = ${show.ms(p99Limit)}: ${show.pass(p99Limit !== undefined && h.p99During !== undefined && h.p99During <= p99Limit)})`
  );
}
