/**
 * Chaos benchmark ("Process faults"): a steady stream of background jobs through a real gearmand
 * with a persistent queue, the real `driveshaft` CLI and a Node endpoint, while the harness, one
 * fault at a time, SIGKILLs gearmand, a pool child and the master, freezes a child, reloads the
 * daemon every second and takes the endpoint down. Per fault: jobs lost, jobs answered twice (and
 * why), recovery time, and the daemon's RSS and open fds. Then the liveness faults (liveness.ts),
 * each a run of its own. `npm run bench:chaos -- --help`.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGearmand, type Gearmand } from '../../test/helpers/gearmand.js';
import { OUR_BIN, jobsConfig, startDaemon, waitRegistered, type Daemon, type DaemonOptions, type PoolSpec } from '../e2e/daemon.js';
import { processTree, signalAll } from '../e2e/proc-stats.js';
import { BenchCli } from '../faults/bench-cli.js';
import {
  Sampler,
  countersAt,
  daemonProcesses,
  delay,
  drainMs,
  errorText,
  fmt,
  linesBetween,
  livePids,
  minus,
  peakBacklog,
  rateBeforeFault,
  rateRecoveryMs,
  settleRun,
  steadyBacklog,
  stopRun,
  waitUntil,
  type DaemonLog,
  type Sample,
} from '../faults/common.js';
import { FaultEndpoint, type EndpointReport } from '../faults/endpoint-control.js';
import { Feeder } from '../faults/feeder.js';
import {
  LIVENESS_FAULTS,
  LIVENESS_USAGE,
  livenessOptionEntries,
  parseLivenessOptions,
  runLiveness,
  type LivenessFault,
} from './liveness.js';
import { report } from './report.js';
import { FAULTS, HUP_CHANGES } from './chaos-types.js';
import type { FaultName, FaultResult, HupChange, Options, RunResult } from './chaos-types.js';

export type { FaultName, FaultResult, Options, RunResult } from './chaos-types.js';


const FAULT_TITLES: Record<FaultName, string> = {
  gearmand: 'SIGKILL gearmand, restart it',
  child: 'SIGKILL the pool child',
  master: 'SIGKILL the master, restart the daemon',
  sigstop: 'SIGSTOP the pool child, then SIGCONT',
  hup: 'SIGHUP (reload) every second',
  endpoint: 'endpoint down (nothing listens)',
};


const ALL_FAULTS: readonly string[] = [...FAULTS, ...LIVENESS_FAULTS];

const USAGE = `npm run bench:chaos -- [options]

  --jobs N                 background jobs (default 200000)
  --slots N                the pool's worker_count (default 10)
  --rate R                 jobs queued per second, steadily (default 1500); 0 queues all at once
  --faults LIST            the process faults in this order, then the liveness faults below
                           (default ${ALL_FAULTS.join(',')})
  --lead-seconds S         steady flow before the first fault (default 5)
  --pause-seconds S        after a fault has recovered, before the next one (default 3)
  --recovery-timeout S     go on to the next fault after S seconds even if not recovered (default 30)
  --gearmand-down-seconds S  gearmand stays dead this long before its restart (default 1)
  --sigstop-seconds S      how long the child stays frozen (default 3)
  --hup-seconds S          how long SIGHUP is sent, once a second (default 10)
  --hup-change C           what each reload changes: mixed (default: nothing, a header, worker_count
                           in turn), none, header (replaces the HTTP side), workers (one slot less/more)
  --outage-seconds S       endpoint downtime (default 5)
  --queue-dir DIR          where gearmand's SQLite queue lives (default /dev/shm, else the temp dir)
  --fail-fast              the pool's delivery.mode "fail_fast"
  --delivery JSON          more keys of the pool's "delivery" object
  --log-level L            the daemon's log level: info (default) or warn
  --drain-timeout S        give up waiting for the queue to empty after S seconds (default 120)
  --max-minutes M          stop everything after M minutes (default 10)
  --out PATH               JSON output (default bench/results/chaos-<date>.json)
  --keep-tmp               keep the configs, the daemon's output and the queue database
${LIVENESS_USAGE}`;

// At least two slots: the "workers" reload runs the pool with one slot less.
const cli = new BenchCli({ kind: 'chaos', usage: USAGE, defaultJobs: '200000', defaultRate: '1500', minSlots: 2 });


function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...cli.optionEntries(),
      ...livenessOptionEntries(),
      faults: { type: 'string', default: ALL_FAULTS.join(',') },
      'lead-seconds': { type: 'string', default: '5' },
      'pause-seconds': { type: 'string', default: '3' },
      'recovery-timeout': { type: 'string', default: '30' },
      'gearmand-down-seconds': { type: 'string', default: '1' },
      'sigstop-seconds': { type: 'string', default: '3' },
      'hup-seconds': { type: 'string', default: '10' },
      'hup-change': { type: 'string', default: 'mixed' },
      'queue-dir': { type: 'string' },
    },
    strict: true,
  });
  cli.exitOnHelp(values);
  const faults = (values.faults ?? '').split(',').map((f) => f.trim()).filter((f) => f !== '');
  for (const fault of faults) if (!ALL_FAULTS.includes(fault)) cli.fail(`--faults: expected some of ${ALL_FAULTS.join(', ')}, got ${JSON.stringify(fault)}`);
  const hupChange = values['hup-change'] as HupChange;
  if (!HUP_CHANGES.includes(hupChange)) cli.fail(`--hup-change: expected one of ${HUP_CHANGES.join(', ')}, got ${JSON.stringify(hupChange)}`);
  const { jobs, slots, rate, outageSeconds, ...rest } = cli.commonOptions(values);
  // In the order the JSON result has always listed them.
  return {
    jobs,
    slots,
    rate,
    faults: faults.filter((f): f is FaultName => (FAULTS as readonly string[]).includes(f)),
    liveness: faults.filter((f): f is LivenessFault => (LIVENESS_FAULTS as readonly string[]).includes(f)),
    livenessOptions: parseLivenessOptions(cli, values, rest),
    compareBin: values['compare-bin'] ?? (process.env['DRIVESHAFT_COMPARE_BIN'] || undefined),
    leadSeconds: cli.number('lead-seconds', values['lead-seconds'], 0),
    pauseSeconds: cli.number('pause-seconds', values['pause-seconds'], 0),
    recoveryTimeoutS: cli.number('recovery-timeout', values['recovery-timeout'], 1),
    gearmandDownSeconds: cli.number('gearmand-down-seconds', values['gearmand-down-seconds'], 0),
    sigstopSeconds: cli.number('sigstop-seconds', values['sigstop-seconds'], 0.1),
    hupSeconds: cli.number('hup-seconds', values['hup-seconds'], 1),
    hupChange,
    outageSeconds,
    queueDir: values['queue-dir'],
    ...rest,
  };
}



const FUNCTION_NAME = 'bench_chaos';

/** Everything a fault may need to reach, and the daemon it may replace. */
interface Rig {
  options: Options;
  gearmand: Gearmand;
  endpoint: FaultEndpoint;
  daemon: Daemon;
  daemonOptions: DaemonOptions;
}

function childPids(daemon: Daemon): number[] {
  return daemon.pids().filter((pid) => pid !== daemon.pid);
}

async function injectGearmand(rig: Rig, notes: string[]): Promise<void> {
  await rig.gearmand.kill('SIGKILL');
  await delay(rig.options.gearmandDownSeconds * 1000);
  const restartAt = Date.now();
  await rig.gearmand.restart();
  livePids.add(rig.gearmand.pid);
  const status = await rig.gearmand.status().catch(() => []);
  const line = status.find((s) => s.function === FUNCTION_NAME);
  notes.push(`restarted in ${Date.now() - restartAt} ms with ${fmt.int(line?.total ?? 0)} jobs reloaded from its queue`);
}

function injectChild(rig: Rig, notes: string[]): void {
  const [child] = childPids(rig.daemon);
  if (child === undefined) throw new Error('no pool child to kill');
  process.kill(child, 'SIGKILL');
  notes.push(`killed child ${child}`);
}

async function injectMaster(rig: Rig, notes: string[]): Promise<void> {
  const old = rig.daemon;
  const children = childPids(old);
  for (const child of children) livePids.add(child); // orphans from now on: the harness must still clean them up
  process.kill(old.pid, 'SIGKILL');
  livePids.delete(old.pid);
  const killedAt = Date.now();
  // A supervisor restarts the daemon; the orphaned children, having lost the master's IPC channel,
  // are expected to finish or give back what they hold and exit on their own first.
  const gone = await waitUntil(() => children.every((pid) => processTree(pid).length === 0), 15_000, 20);
  if (!gone) {
    const left = children.filter((pid) => processTree(pid).length > 0);
    signalAll(left, 'SIGKILL');
    notes.push(`orphaned children ${left.join(', ')} still ran 15 s after the master's death: SIGKILLed`);
  } else {
    notes.push(`orphaned child${children.length === 1 ? '' : 'ren'} exited ${Date.now() - killedAt} ms after the master's death`);
  }
  for (const child of children) livePids.delete(child);
  const restartAt = Date.now();
  rig.daemon = await startDaemon(rig.daemonOptions);
  livePids.add(rig.daemon.pid);
  await waitRegistered(rig.gearmand, rig.daemon, rig.daemonOptions.pools, 30_000);
  notes.push(`new daemon (pid ${rig.daemon.pid}) registered ${Date.now() - restartAt} ms after its start`);
}

async function injectSigstop(rig: Rig, notes: string[]): Promise<void> {
  const [child] = childPids(rig.daemon);
  if (child === undefined) throw new Error('no pool child to freeze');
  process.kill(child, 'SIGSTOP');
  await delay(rig.options.sigstopSeconds * 1000);
  process.kill(child, 'SIGCONT');
  notes.push(`child ${child} frozen ${rig.options.sigstopSeconds} s`);
}

/** The pool as the i-th reload writes it: unchanged, a new header, one slot less, in turn (mixed). */
function reloadedPool(base: PoolSpec, change: HupChange, i: number, slots: number): PoolSpec {
  const kind = change === 'mixed' ? (['none', 'header', 'workers'] as const)[i % 3] : change;
  if (kind === 'header') return { ...base, extra: { ...base.extra, headers: { 'x-bench-reload': String(i) } } };
  if (kind === 'workers') return { ...base, slots: slots - 1 };
  return base;
}

async function injectHup(rig: Rig, notes: string[]): Promise<void> {
  const { options, daemonOptions } = rig;
  const base = daemonOptions.pools[0] as PoolSpec;
  const write = (pool: PoolSpec): void => {
    writeFileSync(rig.daemon.jobsPath, `${JSON.stringify(jobsConfig({ ...daemonOptions, pools: [pool] }), null, 2)}\n`);
  };
  const count = Math.max(1, Math.round(options.hupSeconds));
  for (let i = 0; i < count; i++) {
    // The last reload goes back to the original config.
    write(i === count - 1 ? base : reloadedPool(base, options.hupChange, i, options.slots));
    process.kill(rig.daemon.pid, 'SIGHUP');
    await delay(1000);
  }
  notes.push(`${count} reloads (${options.hupChange}), the last one back to the original config`);
}

async function injectEndpoint(rig: Rig, notes: string[]): Promise<void> {
  await rig.endpoint.down('stop');
  await delay(rig.options.outageSeconds * 1000);
  const record = await rig.endpoint.up();
  notes.push(`down ${((record.upAtMs - record.downAtMs) / 1000).toFixed(1)} s`);
}

async function inject(name: FaultName, rig: Rig, notes: string[]): Promise<void> {
  switch (name) {
    case 'gearmand':
      return injectGearmand(rig, notes);
    case 'child':
      return injectChild(rig, notes);
    case 'master':
      return injectMaster(rig, notes);
    case 'sigstop':
      return injectSigstop(rig, notes);
    case 'hup':
      return injectHup(rig, notes);
    case 'endpoint':
      return injectEndpoint(rig, notes);
  }
}

/** A kill's damage starts at once; the restart that follows is part of the recovery. */
function endsAtInjection(name: FaultName): boolean {
  return name === 'gearmand' || name === 'child' || name === 'master';
}

/** Waits (live) until gearmand's queue has no backlog left, or the timeout. */
async function waitRecovered(rig: Rig, sampler: Sampler, fromMs: number): Promise<void> {
  const { options } = rig;
  const steady = steadyBacklog(options.rate, options.slots);
  await waitUntil(() => {
    const last = sampler.last();
    if (last === undefined || last.atMs < fromMs + 500 || last.total === null) return false;
    if (options.rate === 0) return Date.now() - fromMs >= 3_000;
    return last.total <= steady;
  }, options.recoveryTimeoutS * 1000, 100);
}

function attribute(run: RunResult, report: EndpointReport, log: DaemonLog, samples: readonly Sample[], options: Options, endMs: number): void {
  const faults = run.faults;
  const windowOf = (atMs: number): FaultResult | undefined => {
    let found: FaultResult | undefined;
    for (const f of faults) if (f.startAtMs <= atMs) found = f;
    return found;
  };
  // Losses: the last WORK_FAIL the daemon logged for the id says when it was given up on.
  const lastFail = new Map<string, number>();
  for (const line of log.lines) if (line.msg === 'job failed' && line.unique !== undefined) lastFail.set(line.unique, line.atMs);
  const stillQueued = run.stillQueued;
  run.lostUnattributed = 0;
  for (const id of report.missing) {
    const at = lastFail.get(id);
    const fault = at === undefined ? undefined : windowOf(at);
    if (fault === undefined) {
      run.lostUnattributed++;
      continue;
    }
    fault.lost++;
    if (fault.lostSample.length < 10) fault.lostSample.push(id);
  }
  // Still-queued ids are missing but not lost; they have no WORK_FAIL and landed in "unattributed".
  run.lostUnattributed = Math.max(0, run.lostUnattributed - stillQueued);
  // Duplicates: the second 200 marks the fault that made the job run again.
  for (const dup of report.duplicates) {
    const fault = windowOf(dup.atMs[1] as number);
    if (fault === undefined) {
      run.duplicatesBeforeFaults++;
      continue;
    }
    fault.duplicates++;
    if (fault.duplicateSample.length < 10) fault.duplicateSample.push(dup);
  }
  faults.forEach((f, k) => {
    f.windowEndMs = faults[k + 1]?.startAtMs ?? endMs;
    f.rateBefore = rateBeforeFault(report, f.startAtMs, options.rate);
    f.rateBackMs = rateRecoveryMs(report, f.rateBefore, f.endAtMs, f.windowEndMs);
    f.backlogDrainedMs = options.rate > 0 ? drainMs(samples, f.endAtMs, f.windowEndMs, steadyBacklog(options.rate, options.slots)) : undefined;
    f.peakBacklog = peakBacklog(samples, f.startAtMs, f.windowEndMs);
    f.counters = minus(countersAt(samples, f.windowEndMs), countersAt(samples, f.startAtMs));
    f.logLines = linesBetween(log, f.startAtMs, f.windowEndMs);
  });
}

async function run(options: Options, tmp: string, progress: (text: string) => void, { binary, bin }: Binary): Promise<RunResult> {
  const started = Date.now();
  const prefix = `chaos-${Date.now().toString(36)}`;
  const delivery = { ...(options.failFast ? { mode: 'fail_fast' } : {}), ...options.delivery };
  const queueDir = options.queueDir ?? (existsSync('/dev/shm') ? '/dev/shm' : tmp);
  mkdirSync(queueDir, { recursive: true });
  const queueDb = join(queueDir, `driveshaft-chaos-${process.pid}-${Date.now().toString(36)}.sqlite`);
  const result: RunResult = {
    binary, bin, prefix, delivery: Object.keys(delivery).length > 0 ? delivery : null, queueDb,
    queued: 0, completed: 0, lost: 0, lostUnattributed: 0, stillQueued: 0, duplicateIds: 0, duplicatesBeforeFaults: 0, extraOk: 0, unexpectedIds: 0,
    feederReconnects: 0, feederInDoubt: 0, counters: {}, workFail: 0,
    logLines: { total: 0, nonJson: 0, byLevel: {}, top: [] },
    faults: [], processesStart: [], processesEnd: [], rateSteady: 0, finalDrainMs: undefined, feedSeconds: 0, wallMs: 0,
  };
  const endpoint = await FaultEndpoint.start();
  livePids.add(endpoint.pid);
  let gearmand: Gearmand | undefined;
  let rig: Rig | undefined;
  let feeder: Feeder | undefined;
  let sampler: Sampler | undefined;
  try {
    // A persistent queue: a gearmand killed with SIGKILL must come back with every job it acknowledged.
    gearmand = await startGearmand({ extraArgs: ['--queue-type=libsqlite3', `--libsqlite3-db=${queueDb}`] });
    livePids.add(gearmand.pid);
    const g = gearmand;
    const extra: Record<string, unknown> = Object.keys(delivery).length > 0 ? { delivery } : {};
    const dir = join(tmp, `daemon-${binary}`);
    mkdirSync(dir, { recursive: true });
    const daemonOptions: DaemonOptions = {
      bin, flavour: 'ours', dir, gearmand: g, endpointUrl: endpoint.url, logLevel: options.logLevel, logTo: 'stdout',
      pools: [{ name: 'bench', slots: options.slots, functionName: FUNCTION_NAME, extra }],
    };
    const daemon = await startDaemon(daemonOptions);
    livePids.add(daemon.pid);
    await waitRegistered(g, daemon, daemonOptions.pools, 30_000);
    await delay(500);
    result.processesStart = daemonProcesses(daemon);

    feeder = new Feeder({ port: () => g.port, functionName: FUNCTION_NAME, prefix, total: options.jobs, rate: options.rate });
    const f = feeder;
    const r: Rig = { options, gearmand: g, endpoint, daemon, daemonOptions };
    rig = r;
    sampler = new Sampler({ gearmand: () => g, daemon: () => r.daemon, endpoint, feeder: () => f, functionName: FUNCTION_NAME });
    const s = sampler;
    await s.sample(true);
    s.start();
    await delay(options.leadSeconds * 1000);
    // A cold daemon on a busy machine may start behind the feed: faults start from a steady state.
    await waitRecovered(r, s, Date.now() - 500);

    for (const name of options.faults) {
      const before = await s.sample(true);
      const fault: FaultResult = {
        name, title: FAULT_TITLES[name], startAtMs: Date.now(), endAtMs: 0, windowEndMs: 0, notes: [],
        backlogAtStart: before.total, peakBacklog: undefined, rateBefore: 0, rateBackMs: undefined, backlogDrainedMs: undefined,
        lost: 0, lostSample: [], duplicates: 0, duplicateSample: [], counters: {}, logLines: 0, processesAfter: [],
        hadTraffic: !(f.finishedAtMs !== 0 && before.total === 0),
      };
      result.faults.push(fault);
      progress(`fault ${name}: ${fault.title}; queue ${fmt.int(before.total)}${fault.hadTraffic ? '' : ' (no traffic left: raise --jobs)'}`);
      const injectedAt = Date.now();
      try {
        await inject(name, r, fault.notes);
      } catch (error) {
        fault.notes.push(`injection failed: ${errorText(error)}`);
      }
      fault.endAtMs = endsAtInjection(name) ? injectedAt : Date.now();
      await waitRecovered(r, s, fault.endAtMs);
      progress(`  ${fault.notes.join('; ')}`);
      await delay(options.pauseSeconds * 1000);
      fault.processesAfter = daemonProcesses(r.daemon);
    }

    const { report, log, drainedAtMs } = await settleRun(result, {
      options, prefix, feeder: f, sampler: s, endpoint, daemon: r.daemon, topMessages: 10,
      firstFaultAtMs: result.faults[0]?.startAtMs,
      lastFaultEndMs: result.faults[result.faults.length - 1]?.endAtMs,
    });
    result.feederInDoubt = f.inDoubt;
    attribute(result, report, log, s.samples, options, drainedAtMs);
  } catch (error) {
    result.error = errorText(error);
    if (rig !== undefined) result.error += `\ndaemon output:\n${rig.daemon.output()}`;
  } finally {
    await stopRun({ sampler, feeder, daemon: rig?.daemon, gearmand, endpoint });
    if (!options.keepTmp) rmSync(queueDb, { force: true });
    result.wallMs = Date.now() - started;
  }
  return result;
}

export type Binary = { binary: string; bin: string };

cli.run(parseOptions, async (options, tmp, progress) => {
  const binaries: Binary[] = [{ binary: 'ours', bin: OUR_BIN }];
  if (options.compareBin !== undefined) binaries.push({ binary: 'compare', bin: options.compareBin });
  const classic: RunResult[] = [];
  if (options.faults.length > 0) {
    for (const binary of binaries) {
      if (binaries.length > 1) progress(`process faults, ${binary.binary} daemon`);
      classic.push(await run(options, tmp, progress, binary));
    }
  }
  const liveness = await runLiveness(options.liveness, options.livenessOptions, binaries, tmp, progress);
  return {
    // `result`: the process faults' run of our build, as before the compare build and the liveness runs.
    results: { result: classic[0] ?? null, compareResult: classic[1] ?? null, liveness },
    report: (meta) => report(options, meta, classic, liveness),
    failed: [...classic, ...liveness].some((r) => r.error !== undefined),
  };
});
