/**
 * The command line of `driveshaft pause`, `resume` and `drain`. Same conventions as the daemon's and
 * replay's options: `--name value` or `--name=value`, a value starting with `--` is a missing value, an
 * option given twice is an error, and every problem is one line naming the option. --status_port and
 * --status_host are the daemon's own options and default to the same environment variables, so a shell
 * with the service's environment needs neither.
 */
import { secondsProblem, secondsToMs } from '../config/seconds.js';
import { readOptionValue } from '../config/subcommand-argv.js';
import { OptionsError } from '../errors.js';

export const ControlCommand = {
  PAUSE: 'pause',
  RESUME: 'resume',
  DRAIN: 'drain',
} as const;
export type ControlCommand = (typeof ControlCommand)[keyof typeof ControlCommand];

export interface ControlOptions {
  command: ControlCommand;
  pool: string;
  /** One function of the pool; null: the whole pool. */
  functionName: string | null;
  host: string;
  port: number;
  /** How long to wait for the daemon's answer; null: as long as it takes (a drain's default). */
  timeoutMs: number | null;
}

export const DEFAULT_TIMEOUT_SECONDS = 30;

export type ControlCommandLine = { kind: 'help'; text: string } | { kind: 'run'; options: ControlOptions };

export function controlHelpText(): string {
  return [
    'Usage: driveshaft pause|resume|drain --pool NAME [--function NAME] [--status_port N] [--status_host H]',
    '                                     [--timeout S]',
    '',
    "Pauses or resumes a pool of the running daemon, or one of its functions, through the daemon's",
    'status port (which takes these commands from the same machine only).',
    '  pause    the pool takes no new job: running jobs finish and nothing fails; new jobs wait in',
    "           gearmand. With --function: no slot registers the function; the pool's other functions run",
    '  resume   the pool (or the function) takes jobs again at once',
    '  drain    pause, then wait until no job of the pool (or of the function) runs any more',
    'A pause survives a restart of the pool process and a reload that keeps the pool and the function;',
    'a restart of the daemon forgets it.',
    '',
    'Options:',
    '  --pool NAME         the pool, as named in the jobs config',
    '  --function NAME     one function of the pool (its jobs_list)',
    "  --status_port N     the daemon's --status_port (default: env DRIVESHAFT_STATUS_PORT)",
    "  --status_host H     the daemon's --status_host (default: env DRIVESHAFT_STATUS_HOST, else 127.0.0.1;",
    '                      0.0.0.0 and :: mean the loopback address)',
    `  --timeout S         seconds to wait for the answer (default ${DEFAULT_TIMEOUT_SECONDS}; drain: no limit, the daemon`,
    "                      gives up after the pool's max_running_time plus loop_timeout)",
    '  --help              this text',
    '',
    "Exit status: 0 done (the daemon's answer on stdout); 1 refused by the daemon (its answer on",
    'stderr: unknown pool or function, a pool that is not running, the daemon stopping, running jobs',
    'left after a drain); 2 bad options, or the status port unreachable or silent.',
    '',
  ].join('\n');
}

const VALUE_OPTIONS = ['pool', 'function', 'status_port', 'status_host', 'timeout'] as const;
const ALL_OPTIONS: readonly string[] = [...VALUE_OPTIONS, 'help'];

/** Wildcard binds are reached on the loopback address of their family. */
const WILDCARD_TO_LOOPBACK: Readonly<Record<string, string>> = { '0.0.0.0': '127.0.0.1', '::': '::1', '[::]': '::1' };

/**
 * Reads the arguments after the command word. Throws OptionsError with one line naming the option and
 * what was expected.
 */
export function parseControlCommandLine(command: ControlCommand, argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ControlCommandLine {
  if (argv.some((arg) => arg === '--help' || arg === '-h')) return { kind: 'help', text: controlHelpText() };
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new OptionsError(`${JSON.stringify(arg)}: unexpected argument (options start with --; see driveshaft ${command} --help)`);
    const equals = arg.indexOf('=');
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    if (!ALL_OPTIONS.includes(name)) throw new OptionsError(`--${name}: unknown option (${command} takes ${ALL_OPTIONS.map((o) => `--${o}`).join(', ')})`);
    const { value, last } = readOptionValue(argv, i, name, equals);
    i = last;
    if (values.has(name)) throw new OptionsError(`--${name}: given twice`);
    values.set(name, value);
  }

  const pool = values.get('pool');
  if (pool === undefined) throw new OptionsError(`--pool: is required (the pool to ${command})`);
  const functionName = values.get('function') ?? null;
  for (const [name, value] of [['pool', pool], ['function', functionName]] as const) {
    if (value !== null && /[\0\r\n]/.test(value)) throw new OptionsError(`--${name}: expected a name without NUL or line breaks`);
  }

  const portText = values.get('status_port') ?? env.DRIVESHAFT_STATUS_PORT;
  if (portText === undefined || portText === '') throw new OptionsError('--status_port: is required (the port the daemon was started with; or set DRIVESHAFT_STATUS_PORT)');
  const port = /^[0-9]+$/.test(portText) ? Number(portText) : Number.NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new OptionsError(`--status_port: expected a port number from 1 to 65535, got ${JSON.stringify(portText)}`);

  const hostText = values.get('status_host') ?? (env.DRIVESHAFT_STATUS_HOST === undefined || env.DRIVESHAFT_STATUS_HOST === '' ? '127.0.0.1' : env.DRIVESHAFT_STATUS_HOST);
  const host = WILDCARD_TO_LOOPBACK[hostText] ?? hostText.replace(/^\[(.*)\]$/, '$1');

  let timeoutMs: number | null = command === ControlCommand.DRAIN ? null : secondsToMs(DEFAULT_TIMEOUT_SECONDS);
  const timeoutText = values.get('timeout');
  if (timeoutText !== undefined) {
    const seconds = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(timeoutText) ? Number(timeoutText) : Number.NaN;
    const problem = secondsProblem(seconds);
    if (problem !== null) throw new OptionsError(`--timeout: expected ${problem}, got ${JSON.stringify(timeoutText)}`);
    timeoutMs = secondsToMs(seconds);
  }
  return { kind: 'run', options: { command, pool, functionName, host, port, timeoutMs } };
}
