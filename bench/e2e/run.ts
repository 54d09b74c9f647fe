/**
 * End-to-end benchmark: real gearmand, a fast HTTP endpoint nobody here wrote (nginx), and the real
 * `driveshaft` CLI, beside the gearmand ceiling measured in the same run. `npm run bench:e2e -- --help`.
 *
 * Every figure that matters is a ratio to something measured seconds apart on the same machine: the
 * machine has 2 shared cores, so absolute numbers drift from run to run while ratios hold.
 *
 * This file runs it: options.ts reads the command line, measure.ts and scenarios.ts measure,
 * targets.ts judges, report.ts writes the text; the JSON result file is written here.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUR_BIN, REPO_ROOT } from './daemon.js';
import { startEndpoint, type EndpointKind } from './endpoint.js';
import { killEverything } from './live-pids.js';
import { measureCeiling } from './measure.js';
import { measureMemoryFloor } from './memory-floor.js';
import { compareKind, parseOptions } from './options.js';
import { loadAverage } from './proc-stats.js';
import { ceilingFigures, fmt, report } from './report.js';
import { SIGNED_SUFFIX, type CeilingResult, type MemoryFloor, type ScenarioResult } from './results.js';
import { runScenario } from './scenarios.js';
import { evaluateTargets } from './targets.js';

// ── Bookkeeping: everything started is stopped, whatever happens ─────────────────────────────────

/** Configs and logs of this run; kept when the run is interrupted, for a look at what happened. */
let tempDir: string | undefined;

process.on('exit', killEverything);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping every process the benchmark started${tempDir ? `; temp dir kept: ${tempDir}` : ''}\n`);
    killEverything();
    process.exit(130);
  });
}

// ── Main ──────────────────────────────────────────────────────────────────────────────────────────

function commandOutput(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Undefined when `bin` starts, else why not. Ours answers --help with status 0; the original exits 1
 * on both --help and --version, so it counts as runnable when --version printed its version (a
 * missing shared library fails before that, in the loader's words on stderr).
 */
function daemonRunnable(bin: string): string | undefined {
  const js = bin.endsWith('.js');
  const flag = js ? '--help' : '--version';
  try {
    execFileSync(js ? process.execPath : bin, js ? [bin, flag] : [flag], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
    return undefined;
  } catch (error) {
    const e = error as { status?: number; stdout?: Buffer; stderr?: Buffer; message: string };
    if (!js && /version/i.test(e.stdout?.toString() ?? '')) return undefined;
    return `${bin} ${flag} failed (status ${e.status ?? '?'}): ${(e.stderr?.toString() || e.message).trim().split('\n')[0]}`;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const watchdog = setTimeout(() => {
    process.stderr.write(`\nbench:e2e: over --max-minutes ${options.maxMinutes}; stopping everything\n`);
    killEverything();
    process.exit(3);
  }, options.maxMinutes * 60_000);
  watchdog.unref();

  const tmp = mkdtempSync(join(tmpdir(), 'driveshaft-e2e-'));
  tempDir = tmp;
  const date = new Date().toISOString();
  const dirty = (commandOutput('git', ['status', '--porcelain']) ?? '') !== '';
  const meta: Record<string, unknown> = {
    date,
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    commit: `${commandOutput('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown'}${dirty ? '-dirty' : ''}`,
    gearmand: commandOutput(process.env['GEARMAND_BIN'] ?? '/usr/sbin/gearmand', ['--version'])?.split('\n')[0],
    nginx: commandOutput(process.env['NGINX_BIN'] ?? '/usr/sbin/nginx', ['-v']) ?? undefined,
    uptimeStart: commandOutput('uptime', []),
    loadStart: loadAverage(),
    options: { ...options, scenarios: options.scenarios.map((s) => s.label) },
  };
  process.stdout.write(`bench:e2e: ${options.jobs} jobs, scenarios ${options.scenarios.map((s) => s.label).join(' ')}, modes ${options.modes.join(',')}; temp ${tmp}\n`);
  process.stdout.write(`load: ${String(meta['uptimeStart'])}\n`);
  if (options.profile) process.stdout.write('--profile: the daemon runs with --cpu-prof; its figures are slower than a normal run\n');

  // nginx or its stand-in, decided once and stated up front.
  const probe = await startEndpoint({ dir: join(tmp, 'probe'), forceNode: options.endpoint === 'node' });
  const endpointKind: EndpointKind = probe.kind;
  meta['endpoint'] = probe.kind === 'nginx' ? 'nginx' : `Node stand-in (${probe.fallbackReason ?? ''})`;
  await probe.stop();
  if (endpointKind === 'node') {
    process.stdout.write(`NOTE: ${probe.fallbackReason}. Using the minimal Node endpoint instead; it costs more CPU than nginx, so ratios are pessimistic.\n`);
  }

  const ceilings: CeilingResult[] = [];
  const scenarios: ScenarioResult[] = [];
  const progress = (text: string): void => {
    process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
  };

  const ceilingLine = (c: CeilingResult): string =>
    `  ceiling: gearman -w ${fmt.int(c.libgearman?.rate)} jobs/s, codec echo ${fmt.int(c.node?.rate)} jobs/s, echo fg p50 ${fmt.int(c.latencyNode?.p50Us)} µs` +
    (c.latencyNodeHerd ? `, echo ×${c.latencyNodeHerd.connections} fg p50 ${fmt.int(c.latencyNodeHerd.p50Us)} µs` : '') +
    (c.errors.length ? `; ${c.errors.join('; ')}` : '');
  const measure = async (at: string, herdSlots: number): Promise<CeilingResult> => {
    progress(`ceiling (${at})`);
    const c = await measureCeiling(options, at, herdSlots);
    ceilings.push(c);
    progress(ceilingLine(c));
    return c;
  };

  const problem = daemonRunnable(OUR_BIN);
  const binaries: Array<{ binary: 'ours' | 'compare'; bin: string; signed: boolean }> = [];
  if (problem === undefined) binaries.push({ binary: 'ours', bin: OUR_BIN, signed: false });
  if (problem === undefined && options.signing) binaries.push({ binary: 'ours', bin: OUR_BIN, signed: true });
  if (problem !== undefined) process.stdout.write(`NOTE: the daemon is not runnable yet, scenarios skipped: ${problem}\n`);
  if (options.compareBin !== undefined) {
    const compareProblem = daemonRunnable(options.compareBin);
    if (compareProblem === undefined) binaries.push({ binary: 'compare', bin: options.compareBin, signed: false });
    else process.stdout.write(`NOTE: DRIVESHAFT_COMPARE_BIN not runnable: ${compareProblem}\n`);
  }

  // The machine is shared: a ceiling measured minutes away from a scenario can be off by half. With
  // --ceiling each, every scenario is measured right after a ceiling of its own.
  let memoryFloor: MemoryFloor | undefined;
  if (binaries.length > 0) {
    progress('memory floor (a cluster primary and one child with undici loaded)');
    memoryFloor = await measureMemoryFloor(options.settleMs);
    progress(`  memory floor: ${fmt.mib(memoryFloor.aloneKiB)} MiB PSS alone, RSS ${fmt.mib(memoryFloor.rssKiB)} MiB`);
  }
  let once: CeilingResult | undefined;
  if (options.ceiling === 'once' || binaries.length === 0) once = await measure('start', 1);
  for (const spec of options.scenarios) {
    if (binaries.length === 0) break;
    // Behind a slow endpoint the rate is judged against Little's law, not gearmand's ceiling.
    const ceiling = spec.delayMs > 0 ? undefined : (once ?? (await measure(`before ${spec.label}`, spec.slots)));
    for (const { binary, bin, signed } of binaries) {
      progress(
        `${binary === 'compare' ? `${compareKind(bin) === 'original' ? 'original' : 'compare'} ` : ''}${spec.label} slot(s)${spec.pools > 1 ? ` (${spec.pools} pools)` : ''}` +
          `${spec.delayMs > 0 ? `, endpoint answering after ${spec.delayMs} ms` : ''}${signed ? ', signing on' : ''}`,
      );
      const dir = join(tmp, `${binary}-${spec.label}${signed ? SIGNED_SUFFIX : ''}`);
      mkdirSync(dir, { recursive: true });
      const result = await runScenario({ options, spec, binary, bin, dir, signed });
      if (ceiling !== undefined) result.ceiling = ceiling;
      scenarios.push(result);
      const q = result.runs.queue ?? result.runs.cold;
      const lat = result.runs.latency;
      progress(
        `  ${result.error ? `ERROR ${result.error.split('\n')[0]}` : ''}` +
          (q?.kind === 'throughput' ? `queue ${fmt.int(q.rate)} jobs/s, ${fmt.f1(q.cpuUsPerJob.workers)} µs CPU/job` : '') +
          (q?.kind === 'throughput' && q.fdsPeak !== undefined && spec.delayMs > 0 ? `, ${fmt.int(q.fdsPeak.daemon)} fds` : '') +
          (lat?.kind === 'latency' ? `, fg p50 ${fmt.int(lat.p50Us)} µs` : ''),
      );
    }
  }

  meta['loadEnd'] = loadAverage();
  meta['uptimeEnd'] = commandOutput('uptime', []);
  meta['durationS'] = (Date.now() - started) / 1000;
  const targets = evaluateTargets(options, scenarios, memoryFloor);
  const text = report(options, meta, ceilings, scenarios, targets, memoryFloor);
  process.stdout.write(`${text}\n`);

  const outPath = options.out ?? join(REPO_ROOT, 'bench', 'results', `e2e-${date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(outPath, '..'), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify({ meta, ceiling: ceilingFigures(ceilings), ceilings, memoryFloor, scenarios, targets }, null, 2)}\n`);
  process.stdout.write(`\nJSON: ${outPath}\n`);
  if (options.keepTmp || scenarios.some((s) => s.error !== undefined)) process.stdout.write(`temp dir kept: ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
  clearTimeout(watchdog);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:e2e failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  killEverything();
  process.exit(1);
});
