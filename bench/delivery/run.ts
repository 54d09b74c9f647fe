/**
 * Delivery benchmark: what happens to background jobs while the endpoint is down. A real gearmand,
 * the real `driveshaft` CLI and a Node endpoint (bench/faults/fault-endpoint.ts) that the harness
 * takes down several times during the run. Reports jobs lost, jobs answered twice, WORK_FAILs,
 * requests sent into the outage, log volume and how fast the daemon gets back to work.
 * `npm run bench:delivery -- --help`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGearmand, type Gearmand } from '../../test/helpers/gearmand.js';
import { OUR_BIN, startDaemon, waitRegistered, type Daemon } from '../e2e/daemon.js';
import { loadAverage } from '../e2e/proc-stats.js';
import {
  Sampler,
  daemonProcesses,
  delay,
  describeProcesses,
  drainMs,
  errorText,
  firstOkAfterMs,
  fmt,
  installGuards,
  linesBetween,
  livePids,
  minus,
  peakBacklog,
  rateBeforeFault,
  rateIn,
  rateRecoveryMs,
  readDaemonLog,
  runMeta,
  steadyBacklog,
  table,
  waitUntil,
  writeResult,
  type Counters,
  type ProcessFigures,
} from '../faults/common.js';
import { FaultEndpoint, type OutageMode } from '../faults/endpoint-control.js';
import { Feeder } from '../faults/feeder.js';

const USAGE = `npm run bench:delivery -- [options]

  --jobs N                  background jobs to queue (default 100000)
  --slots N                 the pool's worker_count (default 10)
  --rate R                  jobs queued per second, steadily (default 2500); 0 queues all at once
  --outage MODES            comma list of stop, 503, hang: one full run per mode (default stop)
                              stop: nothing listens (connections refused); 503: answers 503;
                              hang: holds requests past max_running_time
  --outages N               outages per run (default 3)
  --outage-seconds S        length of each outage (default 5)
  --min-gap-seconds S       at least this long between an outage's end and the next (default 3)
  --hang-max-running-time S the pool's max_running_time in the hang run (default 2)
  --fail-fast               the pool's delivery.mode "fail_fast" (the original's behaviour)
  --delivery JSON           more keys of the pool's "delivery" object, e.g. '{"breaker_threshold":3}'
  --compare-bin PATH        also run every mode with another build's bin/driveshaft.js
  --log-level L             the daemon's log level: info (default) or warn
  --drain-timeout S         give up waiting for the queue to empty after S seconds (default 120)
  --max-minutes M           stop everything after M minutes (default 10)
  --out PATH                JSON output (default bench/results/delivery-<date>.json)
  --keep-tmp                keep the configs and the daemon's output
`;

interface Options {
  jobs: number;
  slots: number;
  rate: number;
  modes: OutageMode[];
  outages: number;
  outageSeconds: number;
  minGapSeconds: number;
  hangMaxRunningTime: number;
  failFast: boolean;
  delivery: Record<string, unknown>;
  compareBin: string | undefined;
  logLevel: 'info' | 'warn';
  drainTimeoutS: number;
  maxMinutes: number;
  out: string | undefined;
  keepTmp: boolean;
}

function fail(message: string): never {
  process.stderr.write(`bench:delivery: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function number(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n < min) fail(`--${name}: expected a number ≥ ${min}, got ${JSON.stringify(value)}`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string', default: '100000' },
      slots: { type: 'string', default: '10' },
      rate: { type: 'string', default: '2500' },
      outage: { type: 'string', default: 'stop' },
      outages: { type: 'string', default: '3' },
      'outage-seconds': { type: 'string', default: '5' },
      'min-gap-seconds': { type: 'string', default: '3' },
      'hang-max-running-time': { type: 'string', default: '2' },
      'fail-fast': { type: 'boolean', default: false },
      delivery: { type: 'string' },
      'compare-bin': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'drain-timeout': { type: 'string', default: '120' },
      'max-minutes': { type: 'string', default: '10' },
      out: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const modes = (values.outage ?? '').split(',').map((m) => m.trim());
  for (const mode of modes) if (!['stop', '503', 'hang'].includes(mode)) fail(`--outage: expected stop, 503 or hang, got ${JSON.stringify(mode)}`);
  let delivery: Record<string, unknown> = {};
  if (values.delivery !== undefined) {
    try {
      delivery = JSON.parse(values.delivery) as Record<string, unknown>;
    } catch (error) {
      fail(`--delivery: not JSON (${errorText(error)})`);
    }
    if (typeof delivery !== 'object' || delivery === null || Array.isArray(delivery)) fail('--delivery: expected a JSON object');
  }
  const logLevel = values['log-level'];
  if (logLevel !== 'info' && logLevel !== 'warn') fail(`--log-level: expected info or warn, got ${JSON.stringify(logLevel)}`);
  return {
    jobs: number('jobs', values.jobs, 1),
    slots: number('slots', values.slots, 1),
    rate: number('rate', values.rate, 0),
    modes: modes as OutageMode[],
    outages: number('outages', values.outages, 0),
    outageSeconds: number('outage-seconds', values['outage-seconds'], 0.1),
    minGapSeconds: number('min-gap-seconds', values['min-gap-seconds'], 0),
    hangMaxRunningTime: number('hang-max-running-time', values['hang-max-running-time'], 0.1),
    failFast: values['fail-fast'] ?? false,
    delivery,
    compareBin: values['compare-bin'],
    logLevel,
    drainTimeoutS: number('drain-timeout', values['drain-timeout'], 1),
    maxMinutes: number('max-minutes', values['max-minutes'], 0.5),
    out: values.out,
    keepTmp: values['keep-tmp'] ?? false,
  };
}

interface OutageResult {
  index: number;
  downAtMs: number;
  upAtMs: number;
  /** false when the feed had ended and the queue was empty at down: nothing to disturb. */
  hadTraffic: boolean;
  /** gearmand's queue (queued + running) when the endpoint went down. */
  backlogAtDown: number | null;
  peakBacklog: number | undefined;
  /** Distinct completions per second over the 2 s before the outage. */
  rateBefore: number;
  /** Requests that reached the endpoint while down (503 and hang; none can reach a stopped one). */
  endpointRequests: number;
  answeredHeld: number;
  abandonedHeld: number;
  /** The daemon's counters grew by this between down and up (its own view of the outage). */
  daemonDuring: Counters;
  firstOkAfterUpMs: number | undefined;
  rateBackAfterUpMs: number | undefined;
  backlogDrainedAfterUpMs: number | undefined;
  /** Lines the daemon wrote from the outage's start to 5 s after its end (or the next outage). */
  logLines: number;
}

interface RunResult {
  mode: OutageMode;
  binary: string;
  bin: string;
  delivery: Record<string, unknown> | null;
  prefix: string;
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
  counters: Counters;
  workFail: number;
  endpointDownRequests: number;
  httpConnections: number;
  logLines: { total: number; nonJson: number; byLevel: Record<string, number>; top: Array<{ msg: string; count: number }> };
  outages: OutageResult[];
  /** From the last outage's end (or the feed's end if later) to the queue being empty. */
  finalDrainMs: number | undefined;
  wallMs: number;
  feedSeconds: number;
  feederReconnects: number;
  rateSteady: number;
  processesStart: ProcessFigures[];
  processesEnd: ProcessFigures[];
  lostSample: string[];
  duplicateSample: Array<{ id: string; atMs: number[] }>;
}

const FUNCTION_NAME = 'bench_delivery';
const LOG_AFTER_UP_MS = 5_000;

function deliveryFor(options: Options): Record<string, unknown> | null {
  const delivery = { ...(options.failFast ? { mode: 'fail_fast' } : {}), ...options.delivery };
  return Object.keys(delivery).length > 0 ? delivery : null;
}

async function runOne(options: Options, mode: OutageMode, binary: string, bin: string, dir: string, progress: (text: string) => void): Promise<RunResult> {
  mkdirSync(dir, { recursive: true });
  const prefix = `${mode}-${Date.now().toString(36)}`;
  const delivery = deliveryFor(options);
  const result: RunResult = {
    mode, binary, bin, delivery, prefix,
    queued: 0, completed: 0, lost: 0, stillQueued: 0, duplicateIds: 0, extraOk: 0, unexpectedIds: 0,
    counters: {}, workFail: 0, endpointDownRequests: 0, httpConnections: 0,
    logLines: { total: 0, nonJson: 0, byLevel: {}, top: [] },
    outages: [], finalDrainMs: undefined, wallMs: 0, feedSeconds: 0, feederReconnects: 0, rateSteady: 0,
    processesStart: [], processesEnd: [], lostSample: [], duplicateSample: [],
  };
  const endpoint = await FaultEndpoint.start();
  livePids.add(endpoint.pid);
  let gearmand: Gearmand | undefined;
  let daemon: Daemon | undefined;
  let feeder: Feeder | undefined;
  let sampler: Sampler | undefined;
  const started = Date.now();
  try {
    gearmand = await startGearmand();
    livePids.add(gearmand.pid);
    const g = gearmand;
    const extra: Record<string, unknown> = {};
    if (delivery !== null) extra['delivery'] = delivery;
    if (mode === 'hang') extra['max_running_time'] = options.hangMaxRunningTime;
    const pools = [{ name: 'bench', slots: options.slots, functionName: FUNCTION_NAME, extra }];
    daemon = await startDaemon({ bin, flavour: 'ours', dir, gearmand: g, endpointUrl: endpoint.url, pools, logLevel: options.logLevel, logTo: 'stdout' });
    livePids.add(daemon.pid);
    await waitRegistered(g, daemon, pools, 30_000);
    const d = daemon;
    await delay(500);
    result.processesStart = daemonProcesses(d);

    feeder = new Feeder({ port: () => g.port, functionName: FUNCTION_NAME, prefix, total: options.jobs, rate: options.rate });
    const f = feeder;
    sampler = new Sampler({ gearmand: () => g, daemon: () => d, endpoint, feeder: () => f, functionName: FUNCTION_NAME });
    const s = sampler;
    await s.sample(true);
    s.start();

    let lastUp = Date.now();
    const steady = steadyBacklog(options.rate, options.slots);
    for (let i = 1; i <= options.outages; i++) {
      // Outage i starts once i/(outages+1) of the jobs are resolved (completed or failed), so every
      // outage falls inside the run whatever the daemon's speed; never sooner than the gap, and with
      // a steady feed only once the queue has no backlog left (from start-up or the last outage).
      const target = (options.jobs * i) / (options.outages + 1);
      await waitUntil(() => {
        const last = s.last();
        const resolved = last === undefined || last.total === null ? 0 : f.queued - last.total;
        const queueDry = f.finishedAtMs !== 0 && last?.total === 0;
        const noBacklog = options.rate === 0 || (last?.total ?? Infinity) <= steady;
        return (resolved >= target || queueDry) && noBacklog && Date.now() - lastUp >= options.minGapSeconds * 1000;
      }, options.drainTimeoutS * 1000);
      const before = await s.sample(true);
      const downAtMs = Date.now();
      await endpoint.down(mode);
      progress(`  outage ${i} (${mode}) at ${((downAtMs - started) / 1000).toFixed(1)} s, queue ${fmt.int(before.total)}`);
      await delay(options.outageSeconds * 1000);
      const atUp = await s.sample(true);
      const record = await endpoint.up();
      lastUp = Date.now();
      result.outages.push({
        index: i,
        hadTraffic: !(f.finishedAtMs !== 0 && before.total === 0),
        downAtMs,
        upAtMs: record.upAtMs,
        backlogAtDown: before.total,
        peakBacklog: undefined,
        rateBefore: 0,
        endpointRequests: record.requests,
        answeredHeld: record.answeredHeld,
        abandonedHeld: record.abandonedHeld,
        daemonDuring: minus(atUp.counters, before.counters),
        firstOkAfterUpMs: undefined,
        rateBackAfterUpMs: undefined,
        backlogDrainedAfterUpMs: undefined,
        logLines: 0,
      });
    }

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
    result.processesEnd = daemonProcesses(d);
    result.stillQueued = final.total ?? 0;
    result.queued = f.queued;
    result.feederReconnects = f.reconnects;
    result.feedSeconds = (f.finishedAtMs - f.startedAtMs) / 1000;
    result.counters = final.counters;
    result.workFail = final.counters['jobs_failed'] ?? 0;

    const report = await endpoint.report(prefix, f.queued);
    result.completed = f.queued - report.missing.length;
    result.lost = Math.max(0, report.missing.length - result.stillQueued);
    result.lostSample = report.missing.slice(0, 20);
    result.duplicateIds = report.duplicates.length;
    result.duplicateSample = report.duplicates.slice(0, 20);
    result.extraOk = report.extraOk;
    result.unexpectedIds = report.unexpected;
    result.endpointDownRequests = report.downRequests;
    result.httpConnections = report.connections;
    const firstDown = result.outages[0]?.downAtMs ?? drainedAtMs;
    result.rateSteady = rateIn(report, Math.max(f.startedAtMs + 1000, firstDown - 5000), firstDown);

    await d.stop();
    livePids.delete(d.pid);
    const log = readDaemonLog(d.outPath);
    result.logLines = { total: log.total, nonJson: log.nonJson, byLevel: log.byLevel, top: log.byMessage.slice(0, 8) };
    result.outages.forEach((o, k) => {
      const next = result.outages[k + 1]?.downAtMs ?? drainedAtMs;
      o.rateBefore = rateBeforeFault(report, o.downAtMs, options.rate);
      o.peakBacklog = peakBacklog(s.samples, o.downAtMs, next);
      o.firstOkAfterUpMs = firstOkAfterMs(report, o.upAtMs, next);
      o.rateBackAfterUpMs = rateRecoveryMs(report, o.rateBefore, o.upAtMs, next);
      o.backlogDrainedAfterUpMs = options.rate > 0 ? drainMs(s.samples, o.upAtMs, next, steady) : undefined;
      o.logLines = linesBetween(log, o.downAtMs, Math.min(next, o.upAtMs + LOG_AFTER_UP_MS));
    });
    const lastUpAtMs = result.outages[result.outages.length - 1]?.upAtMs ?? f.startedAtMs;
    result.finalDrainMs = drained ? drainedAtMs - Math.max(lastUpAtMs, f.finishedAtMs) : undefined;
  } catch (error) {
    result.error = errorText(error);
    if (daemon !== undefined) result.error += `\ndaemon output:\n${daemon.output()}`;
  } finally {
    sampler?.stop();
    feeder?.stop();
    if (daemon !== undefined) {
      await daemon.stop();
      livePids.delete(daemon.pid);
    }
    if (gearmand !== undefined) {
      await gearmand.stop();
      livePids.delete(gearmand.pid);
    }
    await endpoint.stop();
    livePids.delete(endpoint.pid);
    result.wallMs = Date.now() - started;
  }
  return result;
}

function report(options: Options, meta: Record<string, unknown>, runs: readonly RunResult[]): string {
  const out: string[] = [];
  out.push(`driveshaft delivery — ${String(meta['date'])}, commit ${String(meta['commit'])}, node ${String(meta['node'])}, ${String(meta['cpu'])} ×${String(meta['cores'])}`);
  out.push(`command: ${String(meta['command'])}`);
  out.push(
    `${fmt.int(options.jobs)} jobs at ${options.rate > 0 ? `${fmt.int(options.rate)}/s` : 'once'}, ${options.slots} slots, ` +
      `${options.outages} outages of ${options.outageSeconds} s; load ${(meta['loadStart'] as number[]).join(' ')} → ${(meta['loadEnd'] as number[]).join(' ')}`,
  );
  out.push('');
  out.push(
    table(
      ['outage', 'daemon', 'delivery', 'queued', 'completed', 'LOST', 'dup ids', 'WORK_FAIL', 'http_errors', 'retried', 'handed back', 'log lines', 'steady/s', 'final drain', 'wall'],
      runs.map((r) => [
        r.mode,
        r.binary,
        r.delivery === null ? 'default' : JSON.stringify(r.delivery),
        fmt.int(r.queued),
        fmt.int(r.completed),
        `${fmt.int(r.lost)}${r.stillQueued > 0 ? ` (+${fmt.int(r.stillQueued)} still queued)` : ''}`,
        `${fmt.int(r.duplicateIds)}${r.extraOk > r.duplicateIds ? ` (${fmt.int(r.extraOk)} extra 200s)` : ''}`,
        fmt.int(r.workFail),
        fmt.int(r.counters['http_errors']),
        fmt.int(r.counters['jobs_retried']),
        fmt.int(r.counters['jobs_handed_back']),
        fmt.int(r.logLines.total),
        fmt.int(r.rateSteady),
        fmt.s(r.finalDrainMs),
        fmt.s(r.wallMs),
      ]),
    ),
  );
  out.push('');
  out.push(
    table(
      ['outage', 'daemon', '#', 'queue at down', 'peak queue', 'rate before/s', 'reqs at endpoint', 'daemon http_errors', 'timed out', 'daemon WORK_FAIL', 'retried', 'handed back', 'first 200 after up', 'rate ≥50% after up', 'backlog drained', 'log lines'],
      runs.flatMap((r) =>
        r.outages.map((o) => [
          r.mode,
          r.binary,
          `${o.index}${o.hadTraffic ? '' : ' (no traffic: raise --jobs)'}`,
          fmt.int(o.backlogAtDown),
          fmt.int(o.peakBacklog),
          fmt.int(o.rateBefore),
          r.mode === 'stop' ? 'n/a (refused)' : `${fmt.int(o.endpointRequests)}${r.mode === 'hang' ? ` (${o.answeredHeld} answered late)` : ''}`,
          fmt.int(o.daemonDuring['http_errors']),
          fmt.int(o.daemonDuring['jobs_timed_out']),
          fmt.int(o.daemonDuring['jobs_failed']),
          fmt.int(o.daemonDuring['jobs_retried']),
          fmt.int(o.daemonDuring['jobs_handed_back']),
          fmt.s(o.firstOkAfterUpMs),
          fmt.s(o.rateBackAfterUpMs),
          fmt.s(o.backlogDrainedAfterUpMs),
          fmt.int(o.logLines),
        ]),
      ),
    ),
  );
  for (const r of runs) {
    out.push('');
    out.push(`${r.mode}/${r.binary}: daemon log ${JSON.stringify(r.logLines.byLevel)}${r.logLines.nonJson > 0 ? `, ${r.logLines.nonJson} non-JSON` : ''}; top: ${r.logLines.top.slice(0, 4).map((t) => `${t.count}× "${t.msg}"`).join(', ')}`);
    out.push(`  processes start: ${describeProcesses(r.processesStart)}`);
    out.push(`  processes end:   ${describeProcesses(r.processesEnd)}`);
    if (r.lost > 0) out.push(`  lost e.g. ${r.lostSample.slice(0, 5).join(', ')}`);
    if (r.duplicateIds > 0) out.push(`  answered twice e.g. ${r.duplicateSample.slice(0, 3).map((dup) => `${dup.id} at ${dup.atMs.map((t) => new Date(t).toISOString().slice(11, 23)).join(' and ')}`).join('; ')}`);
    if (r.unexpectedIds > 0) out.push(`  ${r.unexpectedIds} ids answered that were never queued`);
    if (r.feederReconnects > 0) out.push(`  the feeder reconnected to gearmand ${r.feederReconnects}×`);
    if (r.error !== undefined) out.push(`  ERROR: ${r.error}`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const watchdog = installGuards('bench:delivery', options.maxMinutes);
  const meta = runMeta('bench:delivery', options);
  const started = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'driveshaft-delivery-'));
  const progress = (text: string): void => {
    process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
  };
  process.stdout.write(`bench:delivery: ${meta['command'] as string}; temp ${tmp}\n`);
  const binaries = [{ binary: 'ours', bin: OUR_BIN }];
  if (options.compareBin !== undefined) binaries.push({ binary: 'compare', bin: options.compareBin });
  const runs: RunResult[] = [];
  for (const mode of options.modes) {
    for (const { binary, bin } of binaries) {
      progress(`${mode} outages, ${binary} daemon`);
      const run = await runOne(options, mode, binary, bin, join(tmp, `${mode}-${binary}`), progress);
      runs.push(run);
      progress(`  queued ${fmt.int(run.queued)}, completed ${fmt.int(run.completed)}, lost ${fmt.int(run.lost)}, duplicates ${fmt.int(run.duplicateIds)}, WORK_FAIL ${fmt.int(run.workFail)}${run.error ? `; ERROR ${run.error.split('\n')[0]}` : ''}`);
    }
  }
  meta['loadEnd'] = loadAverage();
  meta['durationS'] = (Date.now() - started) / 1000;
  const text = report(options, meta, runs);
  process.stdout.write(`\n${text}\n`);
  const path = writeResult('delivery', meta['date'] as string, { meta, runs }, options.out);
  process.stdout.write(`\nJSON: ${path}\n`);
  if (options.keepTmp || runs.some((r) => r.error !== undefined)) process.stdout.write(`temp dir kept: ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
  clearTimeout(watchdog);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:delivery failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
