/**
 * Flow benchmark: adaptive concurrency against fixed worker_counts, on an endpoint whose latency rises
 * steeply past a concurrency knee (bench/flow/knee-endpoint.ts). A real gearmand with a full queue and
 * the real `driveshaft` CLI, one fresh pair per configuration, all in the same run: a sweep of fixed
 * worker_counts, fixed 200 slots for contrast, and worker_count 200 with `concurrency.mode` "adaptive".
 * Each is measured over the same window after the same warm-up. `npm run bench:flow -- --help`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startGearmand } from '../../test/helpers/gearmand.js';
import { OUR_BIN, startDaemon, waitRegistered } from '../e2e/daemon.js';
import { makeJobs, queueBackground } from '../e2e/gearman-client.js';
import { loadAverage } from '../e2e/proc-stats.js';
import { delay, errorText, installGuards, runMeta, table, writeResult } from '../faults/common.js';
import { latencyFor, startKneeEndpoint, type KneeModel } from './knee-endpoint.js';

const USAGE = `npm run bench:flow -- [options]

  --base-ms MS        the endpoint's latency up to the knee (default 100)
  --knee N            requests at once the endpoint serves at base latency (default 20)
  --per-extra-ms MS   latency added per request past the knee (default 50)
  --fixed LIST        fixed worker_counts to sweep (default 10,15,20,25,30; the knee is always one)
  --contrast N        a fixed worker_count shown for contrast (default 200)
  --ceiling N         the adaptive pool's worker_count (default 200)
  --min N             the adaptive pool's concurrency.min (default 2)
  --warmup S          seconds before the window (default 10)
  --measure S         seconds measured (default 30)
  --max-minutes M     stop everything after M minutes (default 20)
  --out PATH          JSON output (default bench/results/flow-<date>.json)
  --keep-tmp          keep the configs and the daemons' output
`;

interface Options {
  model: KneeModel;
  fixed: number[];
  contrast: number;
  ceiling: number;
  min: number;
  warmupS: number;
  measureS: number;
  maxMinutes: number;
  out: string | undefined;
  keepTmp: boolean;
}

function positive(name: string, text: string | undefined, fallback: number, integer = true): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} > 0, got ${JSON.stringify(text)}`);
  return value;
}

function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      'base-ms': { type: 'string' },
      knee: { type: 'string' },
      'per-extra-ms': { type: 'string' },
      fixed: { type: 'string' },
      contrast: { type: 'string' },
      ceiling: { type: 'string' },
      min: { type: 'string' },
      warmup: { type: 'string' },
      measure: { type: 'string' },
      'max-minutes': { type: 'string' },
      out: { type: 'string' },
      'keep-tmp': { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help === true) return null;
  const knee = positive('knee', values.knee, 20);
  const fixed = (values.fixed ?? '10,15,20,25,30').split(',').map((text) => positive('fixed', text, 0));
  if (!fixed.includes(knee)) fixed.push(knee);
  fixed.sort((a, b) => a - b);
  return {
    model: { baseMs: positive('base-ms', values['base-ms'], 100, false), knee, perExtraMs: positive('per-extra-ms', values['per-extra-ms'], 50, false) },
    fixed,
    contrast: positive('contrast', values.contrast, 200),
    ceiling: positive('ceiling', values.ceiling, 200),
    min: positive('min', values.min, 2),
    warmupS: positive('warmup', values.warmup, 10, false),
    measureS: positive('measure', values.measure, 30, false),
    maxMinutes: positive('max-minutes', values['max-minutes'], 20, false),
    out: values.out,
    keepTmp: values['keep-tmp'] === true,
  };
}

interface Config {
  label: string;
  slots: number;
  adaptive: boolean;
}

interface RunResult {
  label: string;
  slots: number;
  adaptive: boolean;
  answered: number;
  /** Jobs per second over the window. */
  rate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Most requests the endpoint served at once during the window. */
  peakAtEndpoint: number;
  /** The pool's concurrency_limit (gauges) over the window, polled every 250 ms. */
  limit: { mean: number; min: number; max: number } | null;
  /** Seconds from registration until the adaptive limit first reached the slot below the knee. */
  rampS: number | null;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

async function gaugeLimit(status: (command: string) => Promise<string>, pool: string): Promise<number | null> {
  const reply = await status('gauges').catch(() => '');
  const match = new RegExp(`^${pool}\\.concurrency_limit: (\\d+)\\r?$`, 'm').exec(reply);
  return match === null ? null : Number(match[1]);
}

async function runOne(config: Config, options: Options, dir: string, index: number): Promise<RunResult> {
  // Fresh peers per configuration: the last one's requests (9 s each at 200 slots) must not count here.
  const gearmand = await startGearmand();
  const endpoint = await startKneeEndpoint(options.model);
  try {
    const fn = `Knee${index}`;
    const best = (options.model.knee / options.model.baseMs) * 1000;
    // A queue that stays full past the window even at the best rate.
    const jobs = Math.ceil(best * (options.warmupS + options.measureS + 15) * 1.2);
    await queueBackground(gearmand.port, makeJobs(jobs, [fn], `flow${index}`), 4);
    const runDir = join(dir, config.label.replace(/\W+/g, '-'));
    const pools = [{ name: 'Flow', slots: config.slots, functionName: fn, extra: config.adaptive ? { concurrency: { mode: 'adaptive', min: options.min } } : {} }];
    mkdirSync(runDir, { recursive: true });
    const daemon = await startDaemon({ bin: OUR_BIN, flavour: 'ours', dir: runDir, gearmand, endpointUrl: endpoint.url, pools, logLevel: 'warn' });
    try {
      await waitRegistered(gearmand, daemon, pools, 30_000);
      const registered = performance.now();
      const from = registered + options.warmupS * 1000;
      const to = from + options.measureS * 1000;
      const limits: number[] = [];
      let rampS: number | null = null;
      while (performance.now() < to) {
        await delay(250);
        const limit = await gaugeLimit((c) => daemon.status(c), 'Flow');
        const now = performance.now();
        if (limit === null) continue;
        if (rampS === null && config.adaptive && limit >= options.model.knee - 1) rampS = (now - registered) / 1000;
        if (now >= from && now < to) limits.push(limit);
      }
      const { answered, latencies } = endpoint.window(from, to);
      return {
        label: config.label,
        slots: config.slots,
        adaptive: config.adaptive,
        answered,
        rate: answered / options.measureS,
        p50Ms: percentile(latencies, 0.5),
        p99Ms: percentile(latencies, 0.99),
        maxMs: latencies.length === 0 ? NaN : (latencies[latencies.length - 1] as number),
        peakAtEndpoint: endpoint.peak(from, to),
        limit: limits.length === 0 ? null : { mean: limits.reduce((a, b) => a + b, 0) / limits.length, min: Math.min(...limits), max: Math.max(...limits) },
        rampS,
      };
    } finally {
      await daemon.stop(5000);
    }
  } finally {
    await Promise.all([gearmand.stop(), endpoint.close()]);
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options === null) {
    process.stdout.write(USAGE);
    return;
  }
  installGuards('bench:flow', options.maxMinutes);
  const meta = runMeta('bench:flow', options);
  const dir = mkdtempSync(join(tmpdir(), 'driveshaft-flow-'));
  const configs: Config[] = [
    ...options.fixed.map((slots) => ({ label: `fixed ${slots}`, slots, adaptive: false })),
    { label: `fixed ${options.contrast}`, slots: options.contrast, adaptive: false },
    { label: `adaptive (worker_count ${options.ceiling}, min ${options.min})`, slots: options.ceiling, adaptive: true },
  ];
  const { model } = options;
  process.stdout.write(
    `driveshaft flow — ${String(meta['date'])}, commit ${String(meta['commit'])}, node ${String(meta['node'])}, ${String(meta['cpu'])} ×${String(meta['cores'])}\n` +
      `command: ${String(meta['command'])}\n` +
      `endpoint: ${model.baseMs} ms up to ${model.knee} at once, +${model.perExtraMs} ms per request past it ` +
      `(${latencyFor(model, model.knee + 1)} ms at ${model.knee + 1}, ${latencyFor(model, options.contrast)} ms at ${options.contrast}); ` +
      `warm-up ${options.warmupS} s, window ${options.measureS} s; full queue\n\n`,
  );
  const results: RunResult[] = [];
  try {
    for (const [index, config] of configs.entries()) {
      process.stdout.write(`${config.label} … `);
      const result = await runOne(config, options, dir, index);
      results.push(result);
      process.stdout.write(`${result.rate.toFixed(1)} jobs/s, p99 ${result.p99Ms.toFixed(0)} ms\n`);
    }
  } finally {
    if (!options.keepTmp) rmSync(dir, { recursive: true, force: true });
  }
  meta['loadEnd'] = loadAverage();

  const fixedRuns = results.filter((r) => !r.adaptive && options.fixed.includes(r.slots));
  const bestFixed = fixedRuns.reduce((a, b) => (b.rate > a.rate ? b : a));
  const atKnee = results.find((r) => !r.adaptive && r.slots === model.knee) as RunResult;
  const kneeLatency = atKnee.p50Ms;
  const adaptive = results.find((r) => r.adaptive) as RunResult;
  const rows = results.map((r) => [
    r.label,
    r.limit === null ? '—' : r.adaptive ? `${r.limit.mean.toFixed(1)} (${r.limit.min}–${r.limit.max})` : String(r.limit.mean),
    r.rate.toFixed(1),
    `${(r.rate / bestFixed.rate).toFixed(2)}×`,
    r.p50Ms.toFixed(0),
    r.p99Ms.toFixed(0),
    `${(r.p99Ms / kneeLatency).toFixed(2)}×`,
    String(r.peakAtEndpoint),
  ]);
  const throughputOk = adaptive.rate >= 0.9 * bestFixed.rate;
  const latencyOk = adaptive.p99Ms <= 2 * kneeLatency;
  process.stdout.write(
    `\n${table(['configuration', 'concurrency limit', 'jobs/s', 'vs best fixed', 'p50 ms', 'p99 ms', 'p99 / knee latency', 'peak at endpoint'], rows)}\n\n` +
      `best fixed: ${bestFixed.label} (${bestFixed.rate.toFixed(1)} jobs/s); latency at the knee (fixed ${model.knee}, p50): ${kneeLatency.toFixed(1)} ms\n` +
      `adaptive reached ${model.knee - 1}+ after ${adaptive.rampS === null ? 'never' : `${adaptive.rampS.toFixed(1)} s`}; load ${(meta['loadStart'] as number[]).join(' ')} → ${(meta['loadEnd'] as number[]).join(' ')}\n` +
      `targets:\n` +
      `  ${throughputOk ? 'PASS' : 'FAIL'} adaptive throughput ≥ 0.9× the best fixed worker_count: ${(adaptive.rate / bestFixed.rate).toFixed(3)}×\n` +
      `  ${latencyOk ? 'PASS' : 'FAIL'} adaptive p99 ≤ 2× the latency at the knee: ${(adaptive.p99Ms / kneeLatency).toFixed(2)}×\n`,
  );
  const path = writeResult('flow', String(meta['date']), { meta, model, results, bestFixed: bestFixed.label, kneeLatencyMs: kneeLatency, targets: { throughputOk, latencyOk } }, options.out);
  process.stdout.write(`results: ${path}\n`);
  if (!throughputOk || !latencyOk) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:flow: ${errorText(error)}\n`);
  process.exit(2);
});
