/**
 * Liveness fault "function-outage" (issue 19, case 6): one pool with functions A and B, a steady
 * stream of each, then the endpoint answers 503 to A's jobs only for --function-outage-seconds. B
 * must not notice: its rate, p50 and p99 latency before and during the outage; how often the pool's
 * breaker opened; and A's jobs, every one of which must complete after the outage or be dead-lettered.
 */
import { join } from 'node:path';
import type { Gearmand } from '../../test/helpers/gearmand.js';
import { delay, errorText, fmt, table } from '../faults/common.js';
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
  type LivenessResult,
} from './liveness-figures.js';
import { LivenessRig } from './liveness-rig.js';
import type { LivenessRun } from './liveness-run.js';

const FAILING_FUNCTION = 'bench_outage_a';
const HEALTHY_FUNCTION = 'bench_outage_b';

export interface FunctionOutageFigures {
  outageMs: number;
  /** B, the function that is not down: latency (submission → 200) before and during (its rates are the run's `healthy`). */
  b: { before: Latency; during: Latency; longestGapMs: number };
  /**
   * The breakers during the outage: the pool's `breaker_opened` counter; "circuit breaker opened"
   * log lines (the pool's or a function's); the time some breaker was not closed (`gauges`).
   */
  breaker: { opened: number; openedLogLines: number; notClosedMs: number };
  /** A, the function that is down. */
  a: { submitted: number; answered503: number; completedBefore: number; completedAfter: number; deadLettered: number; lost: number };
}

export type FunctionOutageResult = LivenessResult & { figures?: FunctionOutageFigures };

export async function runFunctionOutage(run: LivenessRun): Promise<FunctionOutageResult> {
  const { options, progress } = run;
  const result: FunctionOutageResult = emptyLiveness('function-outage', undefined, run.binary, run.bin, options.delivery);
  const dir = join(run.dir, 'function-outage');
  const lettersPath = join(dir, 'dead-letters.jsonl');
  const extra = run.poolExtra({ jobs_list: [FAILING_FUNCTION, HEALTHY_FUNCTION], delivery: { dead_letter_file: lettersPath } });
  const rig = new LivenessRig({ dir, bin: run.bin, servers: 1, pools: [{ name: 'bench', slots: options.slots, functionName: FAILING_FUNCTION, extra }], logLevel: options.logLevel, loopTimeoutS: options.loopTimeoutS });
  const started = Date.now();
  try {
    await rig.boot();
    const g = rig.gearmands[0] as Gearmand;
    const tag = Date.now().toString(36);
    const seconds = options.leadSeconds + options.functionOutageSeconds + options.afterSeconds;
    const total = Math.ceil(options.rate * seconds);
    const fa = rig.feed(g, FAILING_FUNCTION, `a-${tag}`, total, options.rate);
    const fb = rig.feed(g, HEALTHY_FUNCTION, `b-${tag}`, total, options.rate);
    await delay(options.leadSeconds * 1000);

    const before = await rig.counters();
    result.faultStartMs = Date.now();
    await rig.endpoint.functionDown(FAILING_FUNCTION);
    progress(`  ${FAILING_FUNCTION} answered 503 for ${options.functionOutageSeconds} s; both fed at ${options.rate}/s`);
    await delay(options.functionOutageSeconds * 1000);
    const answered503 = await rig.endpoint.functionUp(FAILING_FUNCTION);
    result.faultEndMs = Date.now();
    const during = await rig.counters();
    await delay(options.afterSeconds * 1000);

    const drained = await rig.drain([FAILING_FUNCTION, HEALTHY_FUNCTION], options.drainTimeoutS * 1000);
    const drainedAtMs = drained ? Date.now() : undefined;
    if (!drained) result.error = `queues not empty ${options.drainTimeoutS} s after the feed ended`;
    await delay(500);
    const stillQueued = drained ? 0 : await rig.queued([FAILING_FUNCTION, HEALTHY_FUNCTION]);
    const counters = await rig.counters();
    const a = await feederStream(rig.endpoint, fa, `a-${tag}`);
    const b = await feederStream(rig.endpoint, fb, `b-${tag}`);
    const { log, processesEnd } = await rig.finish();
    result.processesStart = rig.processesStart;
    const letters = readDeadLetters(lettersPath);

    const { faultStartMs: downAt, faultEndMs: upAt } = result;
    const beforeFrom = downAt - Math.min(BEFORE_WINDOW_MS, options.leadSeconds * 1000 - 1000);
    result.healthy = healthyPath('B jobs/s', { stream: b, fromMs: beforeFrom, toMs: downAt }, { stream: b, fromMs: downAt, toMs: upAt }, options.rate, options.afterSeconds * 1000);
    const aDone = a.firstOkAtMs.filter((t) => t !== 0);
    const aLettered = a.firstOkAtMs.filter((t, i) => t === 0 && letters.has(`${a.prefix}-${i}`)).length;
    result.figures = {
      outageMs: upAt - downAt,
      b: { before: latencyOf(b, beforeFrom, downAt), during: latencyOf(b, downAt, upAt), longestGapMs: longestGapMs(b, downAt, upAt) },
      breaker: {
        opened: (during['breaker_opened'] ?? 0) - (before['breaker_opened'] ?? 0),
        openedLogLines: breakerOpenings(log, downAt, upAt),
        notClosedMs: rig.breaker.notClosedMs(downAt, upAt),
      },
      a: {
        submitted: a.count,
        answered503,
        completedBefore: aDone.filter((t) => t < upAt).length,
        completedAfter: aDone.filter((t) => t >= upAt).length,
        deadLettered: aLettered,
        lost: a.count - aDone.length - aLettered,
      },
    };
    fillTally(result, { streams: [a, b], letters, counters, log, processesEnd, feeders: rig.feeders, stillQueued, drainedAtMs });
  } catch (error) {
    result.error = `${errorText(error)}\ndaemon output:\n${rig.output()}`;
  } finally {
    await rig.stop();
    result.wallMs = Date.now() - started;
  }
  return result;
}

export function functionOutageTable(results: readonly FunctionOutageResult[]): string {
  const rows = results.flatMap((r) => {
    const f = r.figures;
    if (f === undefined) return [];
    const h = r.healthy;
    return [[
      r.binary,
      fmt.s(f.outageMs),
      `${show.rate(h.before)} / ${show.rate(h.during)} / ${show.rate(h.after)}`,
      show.pct(h.ratio),
      show.pct(h.worstRatio),
      `${show.ms(f.b.before.p50)} → ${show.ms(f.b.during.p50)}`,
      `${show.ms(f.b.before.p99)} → ${show.ms(f.b.during.p99)}`,
      show.times(h.p99Ratio),
      show.ms(f.b.longestGapMs),
      `${fmt.int(f.breaker.opened)} / ${fmt.int(f.breaker.openedLogLines)} / ${fmt.s(f.breaker.notClosedMs)}`,
      `${fmt.int(f.a.submitted)} / ${fmt.int(f.a.answered503)} / ${fmt.int(f.a.completedAfter)} / ${fmt.int(f.a.deadLettered)} / ${fmt.int(f.a.lost)}`,
      fmt.int(r.lost),
      fmt.int(r.faultLog.total),
    ]];
  });
  return table(
    ['function-outage', 'A down', 'B jobs/s before / during / after', 'during ÷ before (≥ 90 %)', 'worst 5 s', 'B p50', 'B p99', 'p99 ratio', 'longest B stall', 'breakers: pool opened / "opened" lines / not closed', 'A: jobs / 503s / done after / dead-lettered / lost', 'LOST', 'log lines'],
    rows,
  );
}
