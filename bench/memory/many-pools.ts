/**
 * Many pools, little work (`npm run bench:memory -- --help`): what a site that gives each job family
 * its own pool pays in memory, idle, after a few jobs per pool, and after a quiet period, beside the
 * original C++ daemon and the floors of one Node process (floors.ts), all in the same run.
 * bench/README.md ("Many pools") says what each figure is.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OUR_BIN, REPO_ROOT, originalBinary } from '../e2e/daemon.js';
import { killEverything } from '../e2e/live-pids.js';
import { runMeta } from '../faults/common.js';
import { loadAverage } from '../e2e/proc-stats.js';
import { measureFloors, type Floors } from './floors.js';
import { runPools, type Options, type PoolsRun, type Variant } from './pools-run.js';
import { report } from './report.js';

const HELP = `npm run bench:memory -- [options]

  --pools N            pools (default 30)
  --slots N            worker_count of each pool (default 2)
  --jobs N             background jobs per pool after the idle sample (default 5)
  --idle-seconds N     wait after every slot registered before the idle sample (default 5)
  --quiet-seconds N    quiet period sampled once a second after the jobs (default 30)
  --original           also run the original C++ daemon (../shared/reference/original/driveshaft)
  --variant SPEC       also run our daemon as SPEC = "label=TOKEN …": a TOKEN starting with -- is a
                       Node flag for the master (it reaches every child), NAME=VALUE an environment
                       variable, bin:PATH another build's bin/driveshaft.js. Repeatable; each runs
                       after the plain build, so every ratio is from the same run.
  --rounds N           run the whole list N times, interleaved (default 1)
  --no-floors          skip the floor processes
  --out FILE           JSON result (default bench/results/many-pools-<date>.json)
  --keep-tmp           keep the configs and logs
  --help
`;

function positiveInt(name: string, text: string | undefined, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got ${JSON.stringify(text)}`);
  return value;
}

/** "label=--flag NAME=value bin:/path" → a variant of our daemon. */
export function parseVariant(spec: string): Variant {
  const eq = spec.indexOf('=');
  const label = eq < 0 ? '' : spec.slice(0, eq).trim();
  if (!/^[\w.+-]+$/.test(label)) throw new Error(`--variant: expected "label=TOKEN …" with a label of letters, digits, . + - _, got ${JSON.stringify(spec)}`);
  const variant: Variant = { label, flavour: 'ours', bin: OUR_BIN, nodeArgs: [], env: {} };
  for (const token of spec.slice(eq + 1).split(/\s+/).filter(Boolean)) {
    if (token.startsWith('--')) variant.nodeArgs.push(token);
    else if (token.startsWith('bin:')) variant.bin = token.slice(4);
    else if (/^[A-Za-z_]\w*=/.test(token)) variant.env[token.slice(0, token.indexOf('='))] = token.slice(token.indexOf('=') + 1);
    else throw new Error(`--variant ${label}: cannot read ${JSON.stringify(token)} (a --flag, NAME=VALUE or bin:PATH)`);
  }
  return variant;
}

export function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      pools: { type: 'string' },
      slots: { type: 'string' },
      jobs: { type: 'string' },
      'idle-seconds': { type: 'string' },
      'quiet-seconds': { type: 'string' },
      original: { type: 'boolean', default: false },
      variant: { type: 'string', multiple: true, default: [] },
      rounds: { type: 'string' },
      'no-floors': { type: 'boolean', default: false },
      out: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return 'help';
  return {
    pools: positiveInt('pools', values.pools, 30),
    slots: positiveInt('slots', values.slots, 2),
    jobsPerPool: positiveInt('jobs', values.jobs, 5),
    idleS: positiveInt('idle-seconds', values['idle-seconds'], 5),
    quietS: positiveInt('quiet-seconds', values['quiet-seconds'], 30, 0),
    original: values.original,
    variants: [{ label: 'ours', flavour: 'ours', bin: OUR_BIN, nodeArgs: [], env: {} }, ...values.variant.map(parseVariant)],
    rounds: positiveInt('rounds', values.rounds, 1),
    floors: !values['no-floors'],
    out: values.out,
    keepTmp: values['keep-tmp'],
  };
}

/** The original, when its binary and runtime libraries are there; else why not. */
function originalVariant(): Variant | string {
  let bin: string;
  try {
    bin = originalBinary();
  } catch (error) {
    return (error as Error).message;
  }
  try {
    execFileSync(bin, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 });
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer };
    // It exits 1 after printing its version; a missing library fails before that.
    if (!/version/i.test(e.stdout?.toString() ?? '')) return `${bin} does not start: ${(e.stderr?.toString() ?? '').trim().split('\n')[0] ?? ''} (see its README for the runtime libraries)`;
  }
  return { label: 'original', flavour: 'original', bin, nodeArgs: [], env: {} };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options === 'help') {
    process.stdout.write(HELP);
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'driveshaft-many-pools-'));
  const started = Date.now();
  const progress = (text: string): void => void process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
  const variants = [...options.variants];
  if (options.original) {
    const original = originalVariant();
    if (typeof original === 'string') progress(`NOTE: the original is left out: ${original}`);
    else variants.push(original);
  }
  // The options are written beside the meta, not inside it.
  const meta = runMeta('bench:memory', undefined);
  const date = String(meta['date']);
  progress(`many pools: ${options.pools} pools × ${options.slots} slots, ${options.jobsPerPool} jobs per pool, quiet ${options.quietS} s; ${variants.map((v) => v.label).join(', ')} × ${options.rounds}; temp ${tmp}`);

  let floors: Floors | undefined;
  if (options.floors) {
    progress("floors: a bare Node process, and one with the pool child's HTTP adapter loaded (idle, after work, quiet, GC)");
    floors = await measureFloors({ dir: join(tmp, 'floors'), slots: options.slots, jobs: options.jobsPerPool, idleS: options.idleS, quietS: options.quietS });
  }
  const runs: PoolsRun[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const variant of variants) {
      progress(`${variant.label}${options.rounds > 1 ? ` (round ${round})` : ''}`);
      const dir = join(tmp, `${variant.label}-${round}`);
      mkdirSync(dir, { recursive: true });
      try {
        const run = await runPools(variant, options, dir);
        runs.push(run);
        progress(`  USS idle ${(run.idle.total.ussKiB / 1024).toFixed(1)} → after work ${(run.afterWork.total.ussKiB / 1024).toFixed(1)} → quiet ${((run.quiet.at(-1)?.total.ussKiB ?? NaN) / 1024).toFixed(1)} MiB`);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        progress(`  ERROR ${message.split('\n')[0] ?? ''}`);
        runs.push({ variant, error: message } as PoolsRun);
      }
    }
  }
  meta['loadEnd'] = loadAverage();
  meta['durationS'] = (Date.now() - started) / 1000;
  const text = report(options, meta, floors, runs);
  process.stdout.write(`\n${text}\n`);
  const outPath = options.out ?? join(REPO_ROOT, 'bench', 'results', `many-pools-${date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(outPath, '..'), { recursive: true });
  writeFileSync(outPath, `${JSON.stringify({ meta, options, floors, runs }, null, 2)}\n`);
  process.stdout.write(`\nJSON: ${outPath}\n`);
  if (options.keepTmp || runs.some((run) => run.error !== undefined)) process.stdout.write(`temp dir kept: ${tmp}\n`);
  else rmSync(tmp, { recursive: true, force: true });
}

process.on('exit', killEverything);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killEverything();
    process.exit(130);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:memory failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  killEverything();
  process.exit(1);
});
