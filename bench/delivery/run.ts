/**
 * Delivery benchmark: what happens to background jobs while the endpoint is down. A real gearmand,
 * the real `driveshaft` CLI and a Node endpoint (bench/faults/fault-endpoint.ts) that the harness
 * takes down several times during the run. Reports jobs lost, jobs answered twice, WORK_FAILs,
 * requests sent into the outage, log volume and how fast the daemon gets back to work.
 * `npm run bench:delivery -- --help`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGearmand, type Gearmand } from '../../test/helpers/gearmand.js';
import { OUR_BIN, startDaemon, waitRegistered, type Daemon } from '../e2e/daemon.js';
import { BenchCli, type CommonOptions } from '../faults/bench-cli.js';
import {
  Sampler,
  daemonProcesses,
  delay,
  describeProcesses,
  drainMs,
  errorText,
  firstOkAfterMs,
  fmt,
  linesBetween,
  livePids,
  logSummaryText,
  minus,
  peakBacklog,
  rateBeforeFault,
  rateRecoveryMs,
  reportHeading,
  settleRun,
  steadyBacklog,
  stopRun,
  table,
  tallyCells,
  tallyHeader,
  waitUntil,
  type CounterColumn,
  type Counters,
  type RunTally,
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

const cli = new BenchCli({ kind: 'delivery', usage: USAGE, defaultJobs: '100000', defaultRate: '2500', minSlots: 1 });

interface Options extends CommonOptions {
  modes: OutageMode[];
  outages: number;
  minGapSeconds: number;
  hangMaxRunningTime: number;
  compareBin: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...cli.optionEntries(),
      outage: { type: 'string', default: 'stop' },
      outages: { type: 'string', default: '3' },
      'min-gap-seconds': { type: 'string', default: '3' },
      'hang-max-running-time': { type: 'string', default: '2' },
      'compare-bin': { type: 'string' },
    },
    strict: true,
  });
  cli.exitOnHelp(values);
  const modes = (values.outage ?? '').split(',').map((m) => m.trim());
  for (const mode of modes) if (!['stop', '503', 'hang'].includes(mode)) cli.fail(`--outage: expected stop, 503 or hang, got ${JSON.stringify(mode)}`);
  const { jobs, slots, rate, outageSeconds, failFast, delivery, ...rest } = cli.commonOptions(values);
  // In the order the JSON result has always listed them.
  return {
    jobs,
    slots,
    rate,
    modes: modes as OutageMode[],
    outages: cli.number('outages', values.outages, 0),
    outageSeconds,
    minGapSeconds: cli.number('min-gap-seconds', values['min-gap-seconds'], 0),
    hangMaxRunningTime: cli.number('hang-max-running-time', values['hang-max-running-time'], 0.1),
    failFast,
    delivery,
    compareBin: values['compare-bin'],
    ...rest,
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

interface RunResult extends RunTally {
  mode: OutageMode;
  binary: string;
  bin: string;
  delivery: Record<string, unknown> | null;
  prefix: string;
  endpointDownRequests: number;
  httpConnections: number;
  outages: OutageResult[];
  lostSample: string[];
  duplicateSample: Array<{ id: string; atMs: number[] }>;
}

const FUNCTION_NAME = 'bench_delivery';
const RUN_COUNTERS: readonly CounterColumn[] = [['retried', 'jobs_retried'], ['handed back', 'jobs_handed_back']];
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

    const { report, log, drainedAtMs } = await settleRun(result, {
      options, prefix, feeder: f, sampler: s, endpoint, daemon: d, topMessages: 8,
      firstFaultAtMs: result.outages[0]?.downAtMs,
      lastFaultEndMs: result.outages[result.outages.length - 1]?.upAtMs,
    });
    result.lostSample = report.missing.slice(0, 20);
    result.duplicateSample = report.duplicates.slice(0, 20);
    result.endpointDownRequests = report.downRequests;
    result.httpConnections = report.connections;
    result.outages.forEach((o, k) => {
      const next = result.outages[k + 1]?.downAtMs ?? drainedAtMs;
      o.rateBefore = rateBeforeFault(report, o.downAtMs, options.rate);
      o.peakBacklog = peakBacklog(s.samples, o.downAtMs, next);
      o.firstOkAfterUpMs = firstOkAfterMs(report, o.upAtMs, next);
      o.rateBackAfterUpMs = rateRecoveryMs(report, o.rateBefore, o.upAtMs, next);
      o.backlogDrainedAfterUpMs = options.rate > 0 ? drainMs(s.samples, o.upAtMs, next, steady) : undefined;
      o.logLines = linesBetween(log, o.downAtMs, Math.min(next, o.upAtMs + LOG_AFTER_UP_MS));
    });
  } catch (error) {
    result.error = errorText(error);
    if (daemon !== undefined) result.error += `\ndaemon output:\n${daemon.output()}`;
  } finally {
    await stopRun({ sampler, feeder, daemon, gearmand, endpoint });
    result.wallMs = Date.now() - started;
  }
  return result;
}

function report(options: Options, meta: Record<string, unknown>, runs: readonly RunResult[]): string {
  const out = reportHeading('delivery', meta, options, `${options.outages} outages of ${options.outageSeconds} s`);
  out.push('');
  out.push(
    table(
      ['outage', 'daemon', 'delivery', ...tallyHeader(RUN_COUNTERS)],
      runs.map((r) => [r.mode, r.binary, r.delivery === null ? 'default' : JSON.stringify(r.delivery), ...tallyCells(r, RUN_COUNTERS)]),
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
    out.push(`${r.mode}/${r.binary}: ${logSummaryText(r.logLines, 4)}`);
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

cli.run(parseOptions, async (options, tmp, progress) => {
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
  return { results: { runs }, report: (meta) => report(options, meta, runs), failed: runs.some((r) => r.error !== undefined) };
});
