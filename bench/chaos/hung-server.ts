/**
 * Liveness fault "hung-server" (issue 19, case 1): one pool on two real gearmands G1 and G2, a
 * steady stream of background jobs into G1 (and a thinner one into G2), then G2 is SIGSTOPped: it
 * keeps its sockets open and answers nothing, as a hung server does. G1's jobs must keep their rate.
 * Measured: G1's completion rate before, during and after the stop; the latency of a foreground job
 * submitted to G1 every second; G2's jobs, which can only run after the SIGCONT; lost and twice-run jobs.
 */
import { join } from 'node:path';
import type { Gearmand } from '../../test/helpers/gearmand.js';
import { GearmanClient } from '../e2e/gearman-client.js';
import { delay, errorText, fmt, table } from '../faults/common.js';
import type { Feeder } from '../faults/feeder.js';
import {
  BEFORE_WINDOW_MS,
  collectStream,
  emptyLiveness,
  feederStream,
  fillTally,
  healthyPath,
  longestGap,
  show,
  type LivenessResult,
} from './liveness-figures.js';
import { LivenessRig } from './liveness-rig.js';
import type { LivenessRun } from './liveness-run.js';

const FUNCTION_NAME = 'bench_hung';
const PROBE_EVERY_MS = 1_000;

interface Probe {
  startedAtMs: number;
  endedAtMs?: number;
  ok?: boolean;
  error?: string;
}

/** One foreground job every `everyMs`, each on its own connection, so a slow one delays no other. */
class Prober {
  readonly prefix: string;
  readonly probes: Probe[] = [];
  readonly #pending = new Set<Promise<void>>();
  readonly #clients = new Set<GearmanClient>();
  readonly #timer: NodeJS.Timeout;

  constructor(server: Gearmand, functionName: string, prefix: string, everyMs: number) {
    this.prefix = prefix;
    this.#timer = setInterval(() => {
      const probe: Probe = { startedAtMs: Date.now() };
      const id = `${prefix}-${this.probes.length}`;
      this.probes.push(probe);
      const run = (async () => {
        const client = await GearmanClient.connect(server.port);
        this.#clients.add(client);
        try {
          probe.ok = (await client.submitForeground({ functionName, unique: id, workload: Buffer.from(id) })).ok;
          probe.endedAtMs = Date.now();
        } finally {
          this.#clients.delete(client);
          client.close();
        }
      })().catch((error: unknown) => {
        probe.error = errorText(error);
      });
      this.#pending.add(run);
      void run.finally(() => this.#pending.delete(run));
    }, everyMs);
  }

  /** Starts no more probes, waits up to `timeoutMs` for those out, then abandons the rest. */
  async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.#timer);
    await Promise.race([Promise.allSettled([...this.#pending]), delay(timeoutMs)]);
    for (const client of this.#clients) client.close();
  }
}

export interface ProbeFigures {
  started: number;
  /** Round trip (SUBMIT_JOB → WORK_COMPLETE), ms, of those that completed. */
  p50: number | undefined;
  max: number | undefined;
  /** Got no WORK_COMPLETE (failed, or still waiting when the run ended). */
  unfinished: number;
}

function probeFigures(probes: readonly Probe[], fromMs: number, toMs: number): ProbeFigures {
  const inWindow = probes.filter((p) => p.startedAtMs >= fromMs && p.startedAtMs < toMs);
  const done = inWindow.filter((p) => p.ok === true && p.endedAtMs !== undefined).map((p) => (p.endedAtMs as number) - p.startedAtMs).sort((a, b) => a - b);
  return { started: inWindow.length, p50: done[Math.floor((done.length - 1) / 2)], max: done[done.length - 1], unfinished: inWindow.length - done.length };
}

export interface HungServerFigures {
  stopMs: number;
  /** The longest stretch of the stop without a G1 job answered, and when in the stop it began (its rates are the run's `healthy`). */
  g1LongestGapMs: number;
  g1LongestGapFromMs: number;
  probes: { before: ProbeFigures; during: ProbeFigures; after: ProbeFigures };
  /**
   * G2's jobs: queued in it when it was stopped (its status), due from the feed during the stop (their
   * submissions wait for the SIGCONT, as a real client's would), and of those, answered after the
   * SIGCONT and the last one's delay.
   */
  g2: { submitted: number; queuedAtStop: number | undefined; dueDuringStop: number; completedAfterCont: number; lastAfterContMs: number | undefined };
  handedBackDuring: number;
}

export type HungServerResult = LivenessResult & { figures?: HungServerFigures };

export async function runHungServer(run: LivenessRun): Promise<HungServerResult> {
  const { options, progress } = run;
  const result: HungServerResult = emptyLiveness('hung-server', undefined, run.binary, run.bin, options.delivery);
  const dir = join(run.dir, 'hung-server');
  // Letters (none expected) stay in the temp dir, not in the daemon's default folder.
  const pool = { name: 'bench', slots: options.slots, functionName: FUNCTION_NAME, extra: run.poolExtra({ delivery: { dead_letter_file: join(dir, 'dead-letters.jsonl') } }) };
  const rig = new LivenessRig({ dir, bin: run.bin, servers: 2, pools: [pool], logLevel: options.logLevel, loopTimeoutS: options.loopTimeoutS });
  const started = Date.now();
  let prober: Prober | undefined;
  try {
    await rig.boot();
    const [server1, server2] = rig.gearmands as [Gearmand, Gearmand];
    const tag = Date.now().toString(36);
    const seconds = options.leadSeconds + options.hungSeconds + options.afterSeconds;
    const f1 = rig.feed(server1, FUNCTION_NAME, `g1-${tag}`, Math.ceil(options.rate * seconds), options.rate);
    const f2 = options.hungG2Rate > 0 ? rig.feed(server2, FUNCTION_NAME, `g2-${tag}`, Math.ceil(options.hungG2Rate * seconds), options.hungG2Rate) : undefined;
    prober = new Prober(server1, FUNCTION_NAME, `fg-${tag}`, PROBE_EVERY_MS);
    await delay(options.leadSeconds * 1000);

    const queuedAtStop = (await server2.status().catch(() => [])).find((s) => s.function === FUNCTION_NAME)?.total;
    const before = await rig.counters();
    result.faultStartMs = Date.now();
    await server2.kill('SIGSTOP');
    progress(`  G2 (${server2.label}) stopped for ${options.hungSeconds} s; G1 fed at ${options.rate}/s`);
    await delay(options.hungSeconds * 1000);
    await server2.kill('SIGCONT');
    result.faultEndMs = Date.now();
    const during = await rig.counters();
    await delay(options.afterSeconds * 1000);
    await prober.stop(options.drainTimeoutS * 1000);

    const drained = await rig.drain([FUNCTION_NAME], options.drainTimeoutS * 1000);
    const drainedAtMs = drained ? Date.now() : undefined;
    if (!drained) result.error = `queues not empty ${options.drainTimeoutS} s after the feed ended`;
    await delay(500);
    const stillQueued = drained ? 0 : await rig.queued([FUNCTION_NAME]);
    const counters = await rig.counters();
    const probes = prober.probes;
    const streams = [
      await feederStream(rig.endpoint, f1, `g1-${tag}`),
      ...(f2 === undefined ? [] : [await feederStream(rig.endpoint, f2, `g2-${tag}`)]),
      await collectStream(rig.endpoint, prober.prefix, probes.length, (i) => probes[i]?.startedAtMs),
    ];
    const { log, processesEnd } = await rig.finish();
    result.processesStart = rig.processesStart;

    const { faultStartMs: stopAt, faultEndMs: contAt } = result;
    const g1 = streams[0] as (typeof streams)[number];
    const beforeFrom = stopAt - Math.min(BEFORE_WINDOW_MS, options.leadSeconds * 1000 - 1000);
    result.healthy = healthyPath('G1 jobs/s', { stream: g1, fromMs: beforeFrom, toMs: stopAt }, { stream: g1, fromMs: stopAt, toMs: contAt }, options.rate, options.afterSeconds * 1000);
    // The feed's job i is due at start + i / rate: those due during the stop are G2's held jobs.
    const g2Stream = f2 === undefined ? undefined : streams[1];
    const held = (g2Stream?.firstOkAtMs ?? []).filter((_, i) => {
      const dueAt = (f2 as Feeder).startedAtMs + (i * 1000) / options.hungG2Rate;
      return dueAt >= stopAt && dueAt < contAt;
    });
    const heldDone = held.filter((t) => t >= contAt);
    const gap = longestGap(g1, stopAt, contAt);
    result.figures = {
      stopMs: contAt - stopAt,
      g1LongestGapMs: gap.ms,
      g1LongestGapFromMs: gap.startMs - stopAt,
      probes: { before: probeFigures(probes, 0, stopAt), during: probeFigures(probes, stopAt, contAt), after: probeFigures(probes, contAt, Infinity) },
      g2: {
        submitted: g2Stream?.count ?? 0,
        queuedAtStop,
        dueDuringStop: held.length,
        completedAfterCont: heldDone.length,
        lastAfterContMs: heldDone.length === 0 ? undefined : Math.max(...heldDone) - contAt,
      },
      handedBackDuring: (during['jobs_handed_back'] ?? 0) - (before['jobs_handed_back'] ?? 0),
    };
    fillTally(result, { streams, letters: new Map(), counters, log, processesEnd, feeders: rig.feeders, stillQueued, drainedAtMs });
  } catch (error) {
    result.error = `${errorText(error)}\ndaemon output:\n${rig.output()}`;
  } finally {
    await prober?.stop(0);
    await rig.stop();
    result.wallMs = Date.now() - started;
  }
  return result;
}

export function hungServerTable(results: readonly HungServerResult[]): string {
  const rows = results.flatMap((r) => {
    const f = r.figures;
    if (f === undefined) return [];
    const p = f.probes;
    const h = r.healthy;
    const probe = (x: ProbeFigures): string => `${show.ms(x.p50)} / ${show.ms(x.max)}${x.unfinished > 0 ? ` (${x.unfinished} of ${x.started} unfinished)` : ''}`;
    return [[
      r.binary,
      fmt.s(f.stopMs),
      `${show.rate(h.before)} / ${show.rate(h.during)} / ${show.rate(h.after)}`,
      show.pct(h.ratio),
      show.pct(h.worstRatio),
      `${show.ms(f.g1LongestGapMs)} from +${fmt.s(f.g1LongestGapFromMs)}`,
      `${show.ms(h.p99Before)} → ${show.ms(h.p99During)}`,
      probe(p.before),
      probe(p.during),
      `${fmt.int(f.g2.queuedAtStop)} / ${fmt.int(f.g2.dueDuringStop)} / ${fmt.int(f.g2.completedAfterCont)}${f.g2.lastAfterContMs === undefined ? '' : ` (last +${fmt.s(f.g2.lastAfterContMs)})`}`,
      fmt.int(f.handedBackDuring),
      fmt.int(r.lost),
      fmt.int(r.duplicateIds),
      fmt.int(r.faultLog.total),
    ]];
  });
  return table(
    [
      'hung-server', 'stopped', 'G1 jobs/s before / during / after', 'during ÷ before (≥ 90 %)', 'worst 5 s', 'longest G1 stall', 'G1 p99 before → during',
      'G1 foreground p50 / max before', 'during', 'G2 jobs: queued at stop / due during it / done after SIGCONT', 'handed back', 'LOST', 'run twice', 'log lines',
    ],
    rows,
  );
}
