/**
 * The e2e benchmark's command line: the options, their --help text and their validation.
 */
import { parseArgs } from 'node:util';
import { originalBinary } from './daemon.js';

export const MODES = ['queue', 'cold', 'concurrent', 'latency'] as const;
export type Mode = (typeof MODES)[number];

export interface ScenarioSpec {
  label: string;
  slots: number;
  pools: number;
  /**
   * 0: the endpoint answers at once. Else (`slowN` scenarios) it answers each request after this many ms,
   * `--slow-jobs` jobs are queued, and the rate is judged against Little's law: slots ÷ delay.
   */
  delayMs: number;
}

export interface Options {
  jobs: number;
  latencyJobs: number;
  latencyWarmup: number;
  scenarios: ScenarioSpec[];
  modes: Mode[];
  logLevel: 'warn' | 'info';
  verifyBodies: boolean;
  endpoint: 'auto' | 'node';
  submitConnections: number;
  concurrentWindow: number;
  settleMs: number;
  /** 'each': a ceiling measured right before every scenario (ratios use the adjacent one); 'once': at the start. */
  ceiling: 'each' | 'once';
  latencySeconds: number;
  repeat: number;
  /** Unmeasured queue runs before the measured ones (daemon and 1-slot floors). */
  warmup: number;
  /** Extra Node flags for the daemon (children inherit them), for experiments: "--max-semi-space-size=2". */
  daemonNodeArgs: string[];
  libgearman: boolean;
  ceilingConnections: number;
  profile: boolean;
  /** Profile only the measured queue runs, through the daemon's inspector (run-profiler.ts). */
  profileRuns: boolean;
  drainTimeoutS: number;
  maxMinutes: number;
  out: string | undefined;
  keepTmp: boolean;
  compareBin: string | undefined;
  /** Each scenario also runs with request signing on, right after the unsigned run. */
  signing: boolean;
  /** Secrets the signed run signs with (one HMAC each per request; 2 while a secret is rotated). */
  signingSecrets: number;
  /** `slowN` scenarios: how long the endpoint takes per request, and how many jobs a run queues. */
  slowDelayMs: number;
  slowJobs: number;
}

/** Jobs per throughput run of a scenario: --slow-jobs behind a slow endpoint, else --jobs. */
export function jobsFor(options: Pick<Options, 'jobs' | 'slowJobs'>, spec: Pick<ScenarioSpec, 'delayMs'>): number {
  return spec.delayMs > 0 ? options.slowJobs : options.jobs;
}

/** What a compare binary is: another build of ours (a `.js` file) or the original C++ daemon. */
export function compareKind(bin: string): 'build' | 'original' {
  return bin.endsWith('.js') ? 'build' : 'original';
}

const USAGE = `npm run bench:e2e -- [options]

  --jobs N               background jobs per throughput run (default 20000)
  --scenarios LIST       comma list of SLOTS, SLOTSxPOOLS or slowSLOTS (default 1,10,100,1000,10x3);
                         slowSLOTS (e.g. slow2000,slow5000): an endpoint that answers after --slow-delay-ms,
                         --slow-jobs jobs queued, the rate judged against Little's law (slots ÷ delay);
                         no ceiling is measured for it
  --slow-delay-ms MS     how long the slow endpoint takes per request (default 1000)
  --slow-jobs N          jobs per run of a slow scenario (default 30000)
  --modes LIST           queue,cold,concurrent,latency (default queue,concurrent,latency)
                           queue       jobs queued while the daemon is frozen (SIGSTOP), then released
                           cold        jobs queued first, then the daemon started (the original's method)
                           concurrent  jobs submitted while the daemon runs
                           latency     one client, foreground jobs one after another
  --latency-jobs N       foreground jobs timed per latency run (default 2000, after 200 warm-up)
  --latency-seconds S    stop a latency run after S seconds even if fewer jobs ran (default 8)
  --repeat N             measured queue-mode runs per scenario on the same daemon, and of each floor; the
                         median is reported (default 1)
  --warmup N             unmeasured queue-mode runs of the same size before them, on the daemon and on the
                         floors alike (default 0): a Node daemon's JIT keeps warming for several
                         20,000-job runs, the original does not warm; memory "after one run" is the first
  --log-level L          daemon log level: warn (default) or info (info logs every job? see docs/observability.md, Logs)
  --verify-bodies        log every request body and check each job's unique arrived exactly once
                         (nginx mirrors each request to read the body: costs endpoint CPU)
  --endpoint node        use the Node stand-in endpoint even if nginx is installed
  --submit-connections N client connections that queue jobs (default 4)
  --concurrent-window N  unacknowledged submissions in concurrent mode (default 1000)
  --ceiling each|once    measure the ceiling right before every scenario, each scenario's ratios
                         against its own (default each: the shared machine drifts), or once
  --no-libgearman        skip the \`gearman -w\` ceiling
  --daemon-node-args="F" extra Node flags for our daemon, children included (e.g. "--max-semi-space-size=2")
  --profile              run the daemon with --cpu-prof (slower; figures are not comparable) and
                         summarise where its CPU goes
  --profile-runs         profile only the measured queue runs (the daemon runs with --inspect and each of
                         its processes is profiled through it from its release to the last answer): what a
                         whole-life --profile of thousands of slots hides behind their connects and closes
  --drain-timeout S      give up on a run after S seconds (default 90)
  --max-minutes M        abort the whole benchmark after M minutes (default 15)
  --out PATH             JSON result path (default bench/results/e2e-<date>.json)
  --keep-tmp             keep the temporary directory (configs, logs, access logs)
  --signing              run each scenario twice on our binary, signing off then on, and report on ÷ off
  --signing-secrets N    secrets the signed run uses (default 1; 2 = during a rotation)
  --original             compare with the original C++ daemon at ../shared/reference/original/driveshaft
                         (relative to the repository, or to the main checkout from a git worktree):
                         the same as DRIVESHAFT_COMPARE_BIN=<that path>
Environment: DRIVESHAFT_COMPARE_BIN=/path/to/driveshaft runs another binary through the same scenarios
and modes, right after ours, and reports ours ÷ theirs; the targets' ratios to the original need it.
A .js file is taken to be another build of this daemon (an A/B of a change: JSON log config); anything
else is the original (log4cxx XML config, --loop_timeout 2). NGINX_BIN, GEARMAN_BIN, GEARMAND_BIN override paths.`;

function fail(message: string): never {
  throw new Error(message);
}

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      jobs: { type: 'string', default: '20000' },
      scenarios: { type: 'string', default: '1,10,100,1000,10x3' },
      modes: { type: 'string', default: 'queue,concurrent,latency' },
      'latency-jobs': { type: 'string', default: '2000' },
      'latency-warmup': { type: 'string', default: '200' },
      'log-level': { type: 'string', default: 'warn' },
      'verify-bodies': { type: 'boolean', default: false },
      endpoint: { type: 'string', default: 'auto' },
      'submit-connections': { type: 'string', default: '4' },
      'concurrent-window': { type: 'string', default: '1000' },
      'settle-ms': { type: 'string', default: '1000' },
      ceiling: { type: 'string', default: 'each' },
      'latency-seconds': { type: 'string', default: '8' },
      repeat: { type: 'string', default: '1' },
      warmup: { type: 'string', default: '0' },
      'daemon-node-args': { type: 'string', default: '' },
      'ceiling-connections': { type: 'string', default: '10' },
      'no-libgearman': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'profile-runs': { type: 'boolean', default: false },
      'drain-timeout': { type: 'string', default: '90' },
      'max-minutes': { type: 'string', default: '15' },
      out: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false },
      signing: { type: 'boolean', default: false },
      'signing-secrets': { type: 'string', default: '1' },
      'slow-delay-ms': { type: 'string', default: '1000' },
      'slow-jobs': { type: 'string', default: '30000' },
      original: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got ${JSON.stringify(text)}`);
    return n;
  };
  const slowDelayMs = int('slow-delay-ms', values['slow-delay-ms'], 1);
  const scenarios = values.scenarios.split(',').map((text): ScenarioSpec => {
    const match = /^(slow)?(\d+)(?:x(\d+))?$/.exec(text.trim());
    if (match === null) throw new Error(`--scenarios: ${JSON.stringify(text)} is not SLOTS, SLOTSxPOOLS or slowSLOTS`);
    const slow = match[1] !== undefined;
    const slots = Number(match[2]);
    const pools = match[3] === undefined ? 1 : Number(match[3]);
    if (slots < 1 || pools < 1) throw new Error(`--scenarios: ${text}: slots and pools must be ≥ 1`);
    const label = `${slow ? 'slow' : ''}${slots}${pools === 1 ? '' : `x${pools}`}`;
    return { label, slots, pools, delayMs: slow ? slowDelayMs : 0 };
  });
  const modes = values.modes.split(',').map((m) => m.trim());
  for (const mode of modes) if (!(MODES as readonly string[]).includes(mode)) throw new Error(`--modes: unknown mode ${mode}`);
  const logLevel = values['log-level'];
  if (logLevel !== 'warn' && logLevel !== 'info') throw new Error('--log-level: expected warn or info');
  if (values.endpoint !== 'auto' && values.endpoint !== 'node') throw new Error('--endpoint: expected auto or node');
  return {
    jobs: int('jobs', values.jobs, 1),
    latencyJobs: int('latency-jobs', values['latency-jobs'], 1),
    latencyWarmup: int('latency-warmup', values['latency-warmup'], 0),
    scenarios,
    modes: modes as Mode[],
    logLevel,
    verifyBodies: values['verify-bodies'],
    endpoint: values.endpoint,
    submitConnections: int('submit-connections', values['submit-connections'], 1),
    concurrentWindow: int('concurrent-window', values['concurrent-window'], 1),
    settleMs: int('settle-ms', values['settle-ms'], 0),
    ceiling: values.ceiling === 'once' ? 'once' : values.ceiling === 'each' ? 'each' : fail('--ceiling: expected each or once'),
    latencySeconds: int('latency-seconds', values['latency-seconds'], 1),
    repeat: int('repeat', values.repeat, 1),
    warmup: int('warmup', values.warmup, 0),
    daemonNodeArgs: values['daemon-node-args'].split(/\s+/).filter((arg) => arg !== ''),
    ceilingConnections: int('ceiling-connections', values['ceiling-connections'], 1),
    libgearman: !values['no-libgearman'],
    profile: values.profile,
    profileRuns: values['profile-runs'],
    drainTimeoutS: int('drain-timeout', values['drain-timeout'], 1),
    maxMinutes: int('max-minutes', values['max-minutes'], 1),
    out: values.out,
    keepTmp: values['keep-tmp'],
    compareBin: values.original ? originalBinary() : process.env['DRIVESHAFT_COMPARE_BIN'] || undefined,
    signing: values.signing,
    signingSecrets: int('signing-secrets', values['signing-secrets'], 1),
    slowDelayMs,
    slowJobs: int('slow-jobs', values['slow-jobs'], 1),
  };
}
