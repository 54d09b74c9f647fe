/**
 * What Prometheus scraping costs the job rate (issue #7: "a scrape during 10 slots of load costs the
 * job rate less than 5%"). `npm run bench:scrape`; not part of `npm test`.
 *
 * One gearmand, one endpoint (nginx when installed, else the Node stand-in, from bench/e2e), one
 * daemon started through its CLI with one pool of 10 slots and --exporter_addr. Then pairs of rounds
 * of N background jobs each: one without and one with a scraper that GETs /metrics every 100 ms while
 * the jobs drain. Each round: the daemon's processes are frozen (SIGSTOP), the N jobs queued, the
 * daemon released (SIGCONT); the rate is N ÷ (last − first request in the endpoint's access log), as
 * bench/e2e does. The same daemon serves both sides: the only difference is the scraping.
 *
 * Which side of a pair runs first is a coin flip (seeded, --seed): a fixed order (A B B A …) met a
 * slowdown of this machine that recurs every few rounds and always put it on the same side, which
 * made even an A/A run (--a-a: no scraping on either side) look 6% "slower".
 *
 * Reported: each round's rate and CPU (master, child, this harness with its scraper), the median rate
 * of each side and their ratio, the median of the per-pair ratios, the scrapes' latency, and the CPU
 * one scrape costs (master + scraper, from /proc and process.cpuUsage), which the machine's noise
 * does not blur.
 *
 *   npm run bench:scrape                       # 20,000 jobs, 8 pairs of rounds
 *   npm run bench:scrape -- --a-a              # calibration: neither side scrapes
 *   npm run bench:scrape -- --jobs 5000 --rounds 2 --interval-ms 100 --slots 10
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/free-port.js';
import { startGearmand } from '../test/helpers/gearmand.js';
import { REPO_ROOT, OUR_BIN } from './e2e/daemon.js';
import { startEndpoint } from './e2e/endpoint.js';
import { makeJobs, queueBackground } from './e2e/gearman-client.js';
import { processTree, sampleProcesses, signalAll } from './e2e/proc-stats.js';

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '8' },
    slots: { type: 'string', default: '10' },
    'interval-ms': { type: 'string', default: '100' },
    /** Another path isolates parts of the cost: /healthz is the HTTP exchange alone, no child poll, no formatting. */
    path: { type: 'string', default: '/metrics' },
    /** Calibration: the "with" rounds do not scrape either, so the ratio shows the machine's own noise. */
    'a-a': { type: 'boolean', default: false },
    seed: { type: 'string', default: '7' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write('usage: npm run bench:scrape -- [--jobs N] [--rounds R] [--slots S] [--interval-ms MS] [--path /metrics] [--out FILE]\n');
  process.exit(0);
}
const JOBS = Number(args.jobs);
const ROUNDS = Number(args.rounds);
const SLOTS = Number(args.slots);
const INTERVAL_MS = Number(args['interval-ms']);
const PATH = args.path;
const DRAIN_TIMEOUT_MS = 120_000;
const FUNCTION = 'ScrapeBench';

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** GETs /metrics every intervalMs (never two at once) until stopped; returns each scrape's latency. */
function scraper(url: string, intervalMs: number): { stop(): Promise<{ latencies: number[]; bytes: number; failures: number }> } {
  let running = true;
  const latencies: number[] = [];
  let bytes = 0;
  let failures = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      try {
        const response = await fetch(url);
        bytes = (await response.arrayBuffer()).byteLength;
        if (response.status !== 200) failures++;
      } catch {
        failures++;
      }
      const took = performance.now() - started;
      latencies.push(took);
      await delay(Math.max(0, intervalMs - took));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { latencies, bytes, failures };
    },
  };
}

interface Round {
  side: 'without' | 'with';
  rate: number;
  drainMs: number;
  /** CPU milliseconds while the jobs drained: the master, the pool child, this harness (scraper included). */
  masterCpuMs: number;
  childCpuMs: number;
  harnessCpuMs: number;
  scrapes?: number;
  scrapeP50Ms?: number;
  scrapeP99Ms?: number;
  scrapeBytes?: number;
  scrapeFailures?: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ds-bench-scrape-'));
  const cleanup: Array<() => unknown> = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    const gearmand = await startGearmand();
    cleanup.unshift(() => gearmand.stop());
    const endpoint = await startEndpoint({ dir: join(dir, 'endpoint') });
    cleanup.unshift(() => endpoint.stop());
    if (endpoint.fallbackReason !== undefined) process.stdout.write(`note: ${endpoint.fallbackReason}; using the Node endpoint\n`);

    const jobsPath = join(dir, 'jobs.json');
    writeFileSync(jobsPath, JSON.stringify({ gearman_servers_list: [gearmand.label], pools_list: { Bench: { job_processing_uri: endpoint.url, worker_count: SLOTS, jobs_list: [FUNCTION] } } }));
    const logPath = join(dir, 'log.json');
    writeFileSync(logPath, JSON.stringify({ name: 'driveshaft', level: 'warn', streams: [{ type: 'file', path: join(dir, 'daemon.log') }] }));
    const exporterPort = await freePort();
    const outFd = openSync(join(dir, 'daemon.out'), 'a');
    const daemon = spawn(process.execPath, [OUR_BIN, '--jobsconfig', jobsPath, '--logconfig', logPath, '--loop_timeout', '1', '--exporter_addr', String(exporterPort)], { stdio: ['ignore', outFd, outFd] });
    closeSync(outFd);
    const pid = daemon.pid as number;
    cleanup.unshift(async () => {
      const tree = processTree(pid);
      signalAll(tree, 'SIGCONT');
      daemon.kill('SIGTERM');
      await Promise.race([new Promise((resolve) => daemon.once('exit', resolve)), delay(10_000)]);
      signalAll(processTree(pid), 'SIGKILL');
    });
    const base = `http://127.0.0.1:${exporterPort}`;
    const readyBy = Date.now() + 20_000;
    for (;;) {
      const status = await fetch(`${base}/readyz`).then((r) => r.status).catch(() => 0);
      if (status === 200) break;
      if (Date.now() > readyBy) throw new Error('the daemon did not become ready within 20 s');
      await delay(100);
    }

    // Park–Miller: a seeded coin, so a run can be repeated with the same order.
    let state = Math.max(1, Number(args.seed) % 2147483647);
    const coin = (): boolean => {
      state = (state * 48271) % 2147483647;
      return state % 2 === 0;
    };
    const order: Array<'without' | 'with'> = [];
    for (let i = 0; i < ROUNDS; i++) order.push(...((coin() ? ['without', 'with'] : ['with', 'without']) as Array<'without' | 'with'>));
    const rounds: Round[] = [];
    // One warm-up round (not reported): the daemon's JIT is cold on the first jobs.
    for (const [index, side] of ['warmup' as const, ...order].entries()) {
      const from = endpoint.count();
      const tree = processTree(pid);
      signalAll(tree, 'SIGSTOP');
      try {
        await queueBackground(gearmand.port, makeJobs(JOBS, [FUNCTION], `r${index}`), 4);
      } finally {
        signalAll(tree, 'SIGCONT');
      }
      const cpuBefore = sampleProcesses(tree);
      const harnessBefore = process.cpuUsage();
      const load = side === 'with' && !args['a-a'] ? scraper(`${base}${PATH}`, INTERVAL_MS) : null;
      const started = Date.now();
      while (endpoint.count() < from + JOBS) {
        if (Date.now() - started > DRAIN_TIMEOUT_MS) throw new Error(`round ${index}: ${endpoint.count() - from} of ${JOBS} jobs after ${DRAIN_TIMEOUT_MS} ms`);
        await delay(20);
      }
      const scraped = await load?.stop();
      const harness = process.cpuUsage(harnessBefore);
      const cpuAfter = sampleProcesses(tree);
      const cpuMs = (which: (p: number) => boolean): number => {
        const before = new Map(cpuBefore.processes.map((p) => [p.pid, p.cpuUs]));
        return cpuAfter.processes.filter((p) => which(p.pid)).reduce((sum, p) => sum + p.cpuUs - (before.get(p.pid) ?? 0), 0) / 1000;
      };
      const lines = endpoint.lines(from);
      const first = lines[0]?.atMs ?? 0;
      const last = lines[lines.length - 1]?.atMs ?? 0;
      const rate = JOBS / Math.max(0.001, (last - first) / 1000);
      if (side === 'warmup') {
        process.stdout.write(`warm-up: ${Math.round(rate)} jobs/s\n`);
        continue;
      }
      const round: Round = {
        side,
        rate,
        drainMs: last - first,
        masterCpuMs: cpuMs((p) => p === pid),
        childCpuMs: cpuMs((p) => p !== pid),
        harnessCpuMs: (harness.user + harness.system) / 1000,
      };
      if (scraped !== undefined) {
        Object.assign(round, {
          scrapes: scraped.latencies.length,
          scrapeP50Ms: percentile(scraped.latencies, 50),
          scrapeP99Ms: percentile(scraped.latencies, 99),
          scrapeBytes: scraped.bytes,
          scrapeFailures: scraped.failures,
        });
      }
      rounds.push(round);
      process.stdout.write(
        `round ${index} ${side.padEnd(7)} ${Math.round(rate)} jobs/s, CPU ms master ${round.masterCpuMs.toFixed(0)} child ${round.childCpuMs.toFixed(0)} harness ${round.harnessCpuMs.toFixed(0)}` +
          (scraped === undefined ? '' : `, ${scraped.latencies.length} scrapes (p50 ${round.scrapeP50Ms?.toFixed(1)} ms, p99 ${round.scrapeP99Ms?.toFixed(1)} ms, ${scraped.bytes} bytes, ${scraped.failures} failed)`) +
          '\n',
      );
      await delay(500);
    }
    const pairRatios: number[] = [];
    for (let i = 0; i + 1 < rounds.length; i += 2) {
      const pair = rounds.slice(i, i + 2);
      const a = pair.find((r) => r.side === 'with');
      const b = pair.find((r) => r.side === 'without');
      if (a !== undefined && b !== undefined) pairRatios.push(a.rate / b.rate);
    }
    const scraping = rounds.filter((r) => r.side === 'with' && (r.scrapes ?? 0) > 0);
    const quiet = rounds.filter((r) => r.side === 'without');
    const overheadMs = (list: Round[]): number => list.reduce((sum, r) => sum + r.masterCpuMs + r.harnessCpuMs, 0);
    const perSecond = (list: Round[]): number => overheadMs(list) / (list.reduce((sum, r) => sum + r.drainMs, 0) / 1000);
    const scrapesPerSecond = scraping.reduce((sum, r) => sum + (r.scrapes ?? 0), 0) / (scraping.reduce((sum, r) => sum + r.drainMs, 0) / 1000);
    // Master + harness CPU per second of draining, minus the same without scraping, per scrape.
    const cpuPerScrapeMs = scraping.length > 0 && quiet.length > 0 ? (perSecond(scraping) - perSecond(quiet)) / scrapesPerSecond : Number.NaN;
    const without = median(rounds.filter((r) => r.side === 'without').map((r) => r.rate));
    const withScrape = median(rounds.filter((r) => r.side === 'with').map((r) => r.rate));
    const ratio = withScrape / without;
    const summary = `median without scraping ${Math.round(without)} jobs/s, with ${PATH} every ${INTERVAL_MS} ms ${Math.round(withScrape)} jobs/s: ratio ${ratio.toFixed(3)} (${(Math.abs(1 - ratio) * 100).toFixed(1)}% ${ratio <= 1 ? "slower" : "faster"}); target ≥ 0.95: ${ratio >= 0.95 ? 'met' : 'NOT met'}`;
    process.stdout.write(`${summary}\n`);
    process.stdout.write(`median of the ${pairRatios.length} per-pair ratios: ${median(pairRatios).toFixed(3)} (${pairRatios.map((r) => r.toFixed(2)).join(' ')})\n`);
    if (Number.isFinite(cpuPerScrapeMs)) {
      process.stdout.write(`CPU per scrape (master + scraper): ${cpuPerScrapeMs.toFixed(2)} ms; at ${scrapesPerSecond.toFixed(1)} scrapes/s that is ${((cpuPerScrapeMs * scrapesPerSecond) / 10).toFixed(1)}% of one core (of ${cpus().length})\n`);
    }
    const date = new Date().toISOString();
    const out = args.out ?? join(REPO_ROOT, 'bench', 'results', `scrape-overhead-${date.replace(/[:.]/g, '-')}.json`);
    mkdirSync(join(out, '..'), { recursive: true });
    const meta = { date, node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, jobs: JOBS, rounds: ROUNDS, slots: SLOTS, intervalMs: INTERVAL_MS, path: PATH, aa: args['a-a'], seed: Number(args.seed), endpoint: endpoint.kind };
    writeFileSync(out, `${JSON.stringify({ meta, rounds, medianWithout: without, medianWith: withScrape, ratio, pairRatios, medianPairRatio: median(pairRatios), cpuPerScrapeMs }, null, 2)}\n`);
    process.stdout.write(`results: ${out}\n`);
  } finally {
    for (const step of cleanup) {
      try {
        await step();
      } catch {
        // Best effort: every later step still runs.
      }
    }
  }
}

await main();
