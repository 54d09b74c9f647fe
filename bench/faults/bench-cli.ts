/**
 * The command line of the fault benchmarks (`bench/delivery`, `bench/chaos`): the options both take,
 * their checks and error messages, and the frame of a run (guards, temp dir, progress lines, the
 * text report and the JSON result). Each benchmark adds its own options and its own run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAverage } from '../e2e/proc-stats.js';
import { errorText, installGuards, runMeta, writeResult } from './common.js';

/** The options every fault benchmark takes, checked. */
export interface CommonOptions {
  jobs: number;
  slots: number;
  rate: number;
  outageSeconds: number;
  failFast: boolean;
  delivery: Record<string, unknown>;
  logLevel: 'info' | 'warn';
  drainTimeoutS: number;
  maxMinutes: number;
  out: string | undefined;
  keepTmp: boolean;
}

/** What parseArgs gives for the entries of BenchCli.optionEntries. */
export interface CommonValues {
  jobs?: string;
  slots?: string;
  rate?: string;
  'outage-seconds'?: string;
  'fail-fast'?: boolean;
  delivery?: string;
  'log-level'?: string;
  'drain-timeout'?: string;
  'max-minutes'?: string;
  out?: string;
  'keep-tmp'?: boolean;
  help?: boolean;
}

export interface BenchCliSpec {
  /** Names the npm script (`bench:<kind>`), the temp dir and the JSON result. */
  kind: 'delivery' | 'chaos';
  /** The --help text, also printed after every error in an option. */
  usage: string;
  defaultJobs: string;
  defaultRate: string;
  /** The fewest --slots the benchmark can run with. */
  minSlots: number;
}

/** What a run hands back to BenchCli.run for the report and the JSON result. */
export interface BenchOutcome {
  /** The JSON result's fields beside `meta`. */
  results: Record<string, unknown>;
  /** The text report, from the run's metadata (its load at the end included). */
  report: (meta: Record<string, unknown>) => string;
  /** A failed run keeps its temp dir, for a look at the configs and the daemon's output. */
  failed: boolean;
}

export class BenchCli {
  readonly #spec: BenchCliSpec;

  constructor(spec: BenchCliSpec) {
    this.#spec = spec;
  }

  /** `bench:<kind>`: the npm script, and the prefix of every message. */
  get name(): string {
    return `bench:${this.#spec.kind}`;
  }

  /** The parseArgs entries of the common options, to spread beside the benchmark's own. */
  optionEntries() {
    return {
      jobs: { type: 'string', default: this.#spec.defaultJobs },
      slots: { type: 'string', default: '10' },
      rate: { type: 'string', default: this.#spec.defaultRate },
      'outage-seconds': { type: 'string', default: '5' },
      'fail-fast': { type: 'boolean', default: false },
      delivery: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'drain-timeout': { type: 'string', default: '120' },
      'max-minutes': { type: 'string', default: '10' },
      out: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    } as const;
  }

  /** An option's value is wrong: says which and why, then the usage, and exits 2. */
  fail(message: string): never {
    process.stderr.write(`${this.name}: ${message}\n\n${this.#spec.usage}`);
    process.exit(2);
  }

  number(name: string, value: string | undefined, min: number): number {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < min) this.fail(`--${name}: expected a number ≥ ${min}, got ${JSON.stringify(value)}`);
    return n;
  }

  /** --help prints the usage and exits, before any option is checked. */
  exitOnHelp(values: CommonValues): void {
    if (values.help) {
      process.stdout.write(this.#spec.usage);
      process.exit(0);
    }
  }

  commonOptions(values: CommonValues): CommonOptions {
    let delivery: Record<string, unknown> = {};
    if (values.delivery !== undefined) {
      try {
        delivery = JSON.parse(values.delivery) as Record<string, unknown>;
      } catch (error) {
        this.fail(`--delivery: not JSON (${errorText(error)})`);
      }
      if (typeof delivery !== 'object' || delivery === null || Array.isArray(delivery)) this.fail('--delivery: expected a JSON object');
    }
    const logLevel = values['log-level'];
    if (logLevel !== 'info' && logLevel !== 'warn') this.fail(`--log-level: expected info or warn, got ${JSON.stringify(logLevel)}`);
    return {
      jobs: this.number('jobs', values.jobs, 1),
      slots: this.number('slots', values.slots, this.#spec.minSlots),
      rate: this.number('rate', values.rate, 0),
      outageSeconds: this.number('outage-seconds', values['outage-seconds'], 0.1),
      failFast: values['fail-fast'] ?? false,
      delivery,
      logLevel,
      drainTimeoutS: this.number('drain-timeout', values['drain-timeout'], 1),
      maxMinutes: this.number('max-minutes', values['max-minutes'], 0.5),
      out: values.out,
      keepTmp: values['keep-tmp'] ?? false,
    };
  }

  /**
   * Parses the command line, runs the benchmark in a fresh temp dir under the guards (nothing it
   * started outlives it), prints the report and writes the JSON result. Any error ends the process
   * with status 1 and the stack.
   */
  run<O extends CommonOptions>(
    parseOptions: (argv: string[]) => O,
    body: (options: O, tmp: string, progress: (text: string) => void) => Promise<BenchOutcome>,
  ): void {
    const main = async (): Promise<void> => {
      const options = parseOptions(process.argv.slice(2));
      const watchdog = installGuards(this.name, options.maxMinutes);
      const meta = runMeta(this.name, options);
      const started = Date.now();
      const tmp = mkdtempSync(join(tmpdir(), `driveshaft-${this.#spec.kind}-`));
      const progress = (text: string): void => {
        process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
      };
      process.stdout.write(`${this.name}: ${meta['command'] as string}; temp ${tmp}\n`);
      const outcome = await body(options, tmp, progress);
      meta['loadEnd'] = loadAverage();
      meta['durationS'] = (Date.now() - started) / 1000;
      process.stdout.write(`\n${outcome.report(meta)}\n`);
      const path = writeResult(this.#spec.kind, meta['date'] as string, { meta, ...outcome.results }, options.out);
      process.stdout.write(`\nJSON: ${path}\n`);
      if (options.keepTmp || outcome.failed) process.stdout.write(`temp dir kept: ${tmp}\n`);
      else rmSync(tmp, { recursive: true, force: true });
      clearTimeout(watchdog);
    };
    main().catch((error: unknown) => {
      process.stderr.write(`${this.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    });
  }
}
