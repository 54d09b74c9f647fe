/**
 * Liveness fault "poison-job" (issue 19, case 5): one background job (a known unique) whose every
 * POST fails the same transient way (503, no answer within max_running_time, or an ndjson answer
 * that never ends). First the other function's traffic alone (its rate and latency unharmed), then
 * the poison job alone in the queue for --poison-seconds (default 60 s, the default
 * max_retry_duration, within which it must be dead-lettered) or until it is, then the
 * other function's traffic again beside it (the same job, if it is still around), for
 * --poison-traffic-seconds. A poison job still not dead-lettered after that is cured (answered 200
 * from then on) so that the run ends with every job accounted for.
 */
import { join } from 'node:path';
import type { Gearmand } from '../../test/helpers/gearmand.js';
import { errorText, fmt, table, waitUntil } from '../faults/common.js';
import type { PoisonKind, PoisonRequest } from '../faults/endpoint-control.js';
import {
  BEFORE_WINDOW_MS,
  breakerOpenings,
  emptyLiveness,
  feederStream,
  fillTally,
  healthyPath,
  latencyOf,
  longestGapMs,
  readDeadLetters,
  show,
  type Latency,
  type Letter,
  type LivenessResult,
} from './liveness-figures.js';
import { LivenessRig } from './liveness-rig.js';
import type { LivenessRun } from './liveness-run.js';

const POISON_FUNCTION = 'bench_poison';
const OTHER_FUNCTION = 'bench_poison_other';
/** After the cure, a job handed back waits for the breaker's next probe: up to breaker_max_cooloff (30 s). */
const CURE_TIMEOUT_MS = 45_000;
const LETTER_POLL_MS = 200;

type Phase = 'alone' | 'with traffic' | 'after the cure';

export interface PoisonJobFigures {
  id: string;
  /** The poison job's POSTs per phase, and the highest Driveshaft-Attempt header it carried. */
  posts: Record<Phase, number> & { maxAttempt: number | undefined };
  /** How the poison job ended, when (ms after its submission) and in which phase. */
  outcome: 'dead-lettered' | 'completed after the cure' | 'failed without a letter' | 'unresolved';
  outcomeAfterMs: number | undefined;
  outcomePhase: Phase | undefined;
  letter: Letter | undefined;
  /** Counter deltas (the pool's; in the alone phase they are the poison job's own). */
  handedBack: { alone: number; traffic: number };
  /** The pool's breaker_opened counter; "circuit breaker opened" log lines (the pool's or a function's). */
  breakerOpened: { alone: number; traffic: number };
  breakerOpenedLines: { alone: number; traffic: number };
  /** Some breaker (the pool's or a function's) not closed, from `gauges`. */
  breakerNotClosedMs: { alone: number; traffic: number };
  /** The other function's latency without the poison job, then beside it (its rates are the run's `healthy`). */
  other: { before: Latency; during: Latency; longestGapMs: number };
  phaseMs: { alone: number; traffic: number };
}

export type PoisonJobResult = LivenessResult & { figures?: PoisonJobFigures };

function phaseOf(atMs: number, trafficAt: number, curedAt: number | undefined): Phase {
  if (curedAt !== undefined && atMs >= curedAt) return 'after the cure';
  return atMs >= trafficAt ? 'with traffic' : 'alone';
}

function postsByPhase(requests: readonly PoisonRequest[], trafficAt: number, curedAt: number | undefined): PoisonJobFigures['posts'] {
  const posts = { alone: 0, 'with traffic': 0, 'after the cure': 0, maxAttempt: undefined as number | undefined };
  for (const request of requests) {
    posts[phaseOf(request.atMs, trafficAt, curedAt)]++;
    if (request.attempt !== undefined) posts.maxAttempt = Math.max(posts.maxAttempt ?? 0, request.attempt);
  }
  return posts;
}

const delta = (a: Record<string, number>, b: Record<string, number>, name: string): number => (a[name] ?? 0) - (b[name] ?? 0);

export async function runPoisonJob(run: LivenessRun, kind: PoisonKind): Promise<PoisonJobResult> {
  const { options, progress } = run;
  const result: PoisonJobResult = emptyLiveness('poison-job', kind, run.binary, run.bin, options.delivery);
  const dir = join(run.dir, `poison-job-${kind}`);
  const lettersPath = join(dir, 'dead-letters.jsonl');
  const extra = run.poolExtra({
    jobs_list: [POISON_FUNCTION, OTHER_FUNCTION],
    delivery: { dead_letter_file: lettersPath },
    ...(kind === '503' ? {} : { max_running_time: options.poisonMaxRunningTime }),
  });
  const rig = new LivenessRig({ dir, bin: run.bin, servers: 1, pools: [{ name: 'bench', slots: options.slots, functionName: POISON_FUNCTION, extra }], logLevel: options.logLevel, loopTimeoutS: options.loopTimeoutS });
  const started = Date.now();
  try {
    await rig.boot();
    const g = rig.gearmands[0] as Gearmand;
    const tag = Date.now().toString(36);
    const { rate } = options;

    // The other function's traffic alone: its rate and latency unharmed.
    const quiet = rig.feed(g, OTHER_FUNCTION, `quiet-${tag}`, Math.ceil(rate * options.leadSeconds), rate);
    await quiet.done;
    await rig.drain([OTHER_FUNCTION], 30_000);

    // The poison job alone in the queue.
    const prefix = `poison-${tag}`;
    const id = `${prefix}-0`;
    await rig.endpoint.poison(id, kind);
    const atSubmit = await rig.counters();
    const poisonFeeder = rig.feed(g, POISON_FUNCTION, prefix, 1, 0);
    await poisonFeeder.done;
    const submitAt = poisonFeeder.submittedAtMs(0) ?? Date.now();
    result.faultStartMs = submitAt;
    progress(`  poison job ${id} (${kind}) alone for up to ${options.poisonSeconds} s`);
    const lettered = (): boolean => readDeadLetters(lettersPath).has(id);
    await waitUntil(lettered, options.poisonSeconds * 1000, LETTER_POLL_MS);
    const trafficAt = Date.now();
    const atTraffic = await rig.counters();

    // The other function's traffic beside it.
    progress(`  ${lettered() ? 'dead-lettered; ' : ''}the other function's traffic for ${options.poisonTrafficSeconds} s`);
    const busy = rig.feed(g, OTHER_FUNCTION, `busy-${tag}`, Math.ceil(rate * options.poisonTrafficSeconds), rate);
    await busy.done;
    const trafficEnd = Date.now();
    const atEnd = await rig.counters();
    result.faultEndMs = trafficEnd;

    let curedAt: number | undefined;
    if (!lettered()) {
      await rig.endpoint.cure(id);
      curedAt = Date.now();
      progress('  not dead-lettered: cured (answered 200 from now on)');
      await waitUntil(async () => lettered() || (await rig.endpoint.idTimes(prefix, 1)).firstOkAtMs[0] !== 0, CURE_TIMEOUT_MS, 250);
    }
    const drained = await rig.drain([POISON_FUNCTION, OTHER_FUNCTION], options.drainTimeoutS * 1000);
    const drainedAtMs = drained ? Date.now() : undefined;
    if (!drained) result.error = `queues not empty ${options.drainTimeoutS} s after the feed ended`;
    const stillQueued = drained ? 0 : await rig.queued([POISON_FUNCTION, OTHER_FUNCTION]);
    const counters = await rig.counters();
    const requests = await rig.endpoint.poisonRequests(id);
    const streams = [await feederStream(rig.endpoint, quiet, `quiet-${tag}`), await feederStream(rig.endpoint, busy, `busy-${tag}`), await feederStream(rig.endpoint, poisonFeeder, prefix)];
    const { log, processesEnd } = await rig.finish();
    result.processesStart = rig.processesStart;
    const letters = readDeadLetters(lettersPath);

    const [quietStream, busyStream, poisonStream] = streams as [(typeof streams)[0], (typeof streams)[0], (typeof streams)[0]];
    const beforeFrom = Math.max(quiet.startedAtMs + 1000, quiet.finishedAtMs - BEFORE_WINDOW_MS);
    result.healthy = healthyPath(
      'other function jobs/s',
      { stream: quietStream, fromMs: beforeFrom, toMs: quiet.finishedAtMs },
      { stream: busyStream, fromMs: trafficAt, toMs: trafficEnd },
      rate,
    );

    const letter = letters.get(id);
    const okAt = poisonStream.firstOkAtMs[0] ?? 0;
    const failed = log.lines.some((line) => line.msg === 'job failed' && line.unique === id);
    const endAt = letter !== undefined ? letter.atMs : okAt !== 0 ? okAt : undefined;
    // A letter is written after the POST that spent the job's budget: that POST's phase is the letter's.
    const decidedAt = letter === undefined ? endAt : Math.max(submitAt, ...requests.filter((r) => r.atMs <= letter.atMs).map((r) => r.atMs));
    result.figures = {
      id,
      posts: postsByPhase(requests, trafficAt, curedAt),
      outcome: letter !== undefined ? 'dead-lettered' : okAt !== 0 ? 'completed after the cure' : failed ? 'failed without a letter' : 'unresolved',
      outcomeAfterMs: endAt === undefined ? undefined : endAt - submitAt,
      outcomePhase: decidedAt === undefined ? undefined : phaseOf(decidedAt, trafficAt, curedAt),
      letter,
      handedBack: { alone: delta(atTraffic, atSubmit, 'jobs_handed_back'), traffic: delta(atEnd, atTraffic, 'jobs_handed_back') },
      breakerOpened: { alone: delta(atTraffic, atSubmit, 'breaker_opened'), traffic: delta(atEnd, atTraffic, 'breaker_opened') },
      breakerOpenedLines: { alone: breakerOpenings(log, submitAt, trafficAt), traffic: breakerOpenings(log, trafficAt, trafficEnd) },
      breakerNotClosedMs: { alone: rig.breaker.notClosedMs(submitAt, trafficAt), traffic: rig.breaker.notClosedMs(trafficAt, trafficEnd) },
      other: { before: latencyOf(quietStream, beforeFrom, quiet.finishedAtMs), during: latencyOf(busyStream, trafficAt, trafficEnd), longestGapMs: longestGapMs(busyStream, trafficAt, trafficEnd) },
      phaseMs: { alone: trafficAt - submitAt, traffic: trafficEnd - trafficAt },
    };
    if (curedAt !== undefined) result.notes.push(`the poison job was cured ${fmt.s(curedAt - submitAt)} after its submission (not dead-lettered by then)`);
    fillTally(result, { streams, letters, counters, log, processesEnd, feeders: rig.feeders, stillQueued, drainedAtMs });
  } catch (error) {
    result.error = `${errorText(error)}\ndaemon output:\n${rig.output()}`;
  } finally {
    await rig.stop();
    result.wallMs = Date.now() - started;
  }
  return result;
}

export function poisonJobTable(results: readonly PoisonJobResult[]): string {
  const rows = results.flatMap((r) => {
    const f = r.figures;
    if (f === undefined) return [];
    const h = r.healthy;
    const lat = (l: Latency): string => `${show.ms(l.p50)} / ${show.ms(l.p99)}`;
    return [[
      `${r.variant ?? ''} ${r.binary}`,
      `${fmt.s(f.phaseMs.alone)} + ${fmt.s(f.phaseMs.traffic)}`,
      `${f.posts.alone} / ${f.posts['with traffic']} / ${f.posts['after the cure']}${f.posts.maxAttempt === undefined ? '' : ` (attempt ≤ ${f.posts.maxAttempt})`}`,
      `${f.outcome}${f.outcomeAfterMs === undefined ? '' : ` at +${fmt.s(f.outcomeAfterMs)} (${f.outcomePhase})`}${f.letter?.attempts === undefined ? '' : `, letter says ${f.letter.attempts} attempts`}`,
      `${f.handedBack.alone} / ${f.handedBack.traffic}`,
      `${f.breakerOpened.alone} / ${f.breakerOpened.traffic} (lines ${f.breakerOpenedLines.alone} / ${f.breakerOpenedLines.traffic})`,
      `${fmt.s(f.breakerNotClosedMs.alone)} / ${fmt.s(f.breakerNotClosedMs.traffic)}`,
      `${show.rate(h.before)} / ${show.rate(h.during)}`,
      show.pct(h.ratio),
      show.pct(h.worstRatio),
      `${lat(f.other.before)} → ${lat(f.other.during)}`,
      show.times(h.p99Ratio),
      show.ms(f.other.longestGapMs),
      fmt.int(r.lost),
      fmt.int(r.faultLog.total),
    ]];
  });
  return table(
    ['poison-job', 'alone + with traffic', 'POSTs alone / with traffic / after cure', 'outcome', 'handed back alone / traffic', 'pool breaker opened alone / traffic ("opened" lines)', 'breaker not closed', 'other fn jobs/s before / during', 'during ÷ before (≥ 90 %)', 'worst 5 s', 'other fn p50 / p99', 'p99 ratio', 'longest stall', 'LOST', 'log lines'],
    rows,
  );
}
