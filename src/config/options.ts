/**
 * The command line (docs/configuration.md, Options): the original's option names, so init scripts keep working, each also
 * readable from DRIVESHAFT_<NAME>. convict owns the schema, defaults, environment and validation; we
 * tokenise argv ourselves because convict's yargs-parser accepts any unknown option silently.
 *
 * Decisions where the spec is silent:
 * - `--name value` and `--name=value`; `-h` is --help and `-v` is --version (as in nginx). --help or
 *   --version anywhere on the line wins over every other argument, even invalid ones.
 * - The boolean options take no separate value; `--daemonize=false` and DRIVESHAFT_DAEMONIZE=0 work
 *   (true/false, 1/0, yes/no, on/off).
 * - An option given twice is an error, as in the original (boost::program_options refuses it).
 * - A value is the next argument even when it starts with one dash (`--loop_timeout -1` must reach
 *   validation to be refused with a clear message); one starting with `--` is a missing value.
 * - Seconds may be fractional (tests and tight deployments want 0.5): at least 0.001 (1 ms); at most
 *   2147483 for max_running_time (the longest Node timer) and a quarter of that for loop_timeout (the
 *   graceful shutdown waits 4 × loop_timeout).
 * - An environment variable set to the empty string counts as unset (`DRIVESHAFT_USER= driveshaft …`
 *   is the shell idiom for "not this time"). Unknown DRIVESHAFT_* variables are ignored: the launcher
 *   or a test harness may set its own.
 * - --help and --version have no environment variable: they are actions, not settings.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import convict from 'convict';
import { ErrorCode, OptionsError } from '../errors.js';
import { DEFAULT_DEAD_LETTER_DIR_TEXT, defaultDeadLetterDir } from './dead-letter-location.js';
import { suggestKey } from './jobs-config.js';
import { parseAllowedHosts, parseListenAddress } from './listen-address.js';
import { redactUris } from './redact.js';
import { MAX_LOOP_TIMEOUT_SECONDS, MAX_TIMER_SECONDS, secondsProblem } from './seconds.js';
import { RequestFormat } from './types.js';
import type { DaemonOptions } from './types.js';

export type CommandLine = { kind: 'help'; text: string } | { kind: 'version'; text: string } | { kind: 'run'; options: DaemonOptions };

// ---------------------------------------------------------------------------------------------------
// convict formats. Each coerce is strict (convict's own turns "5abc" into 5 via parseFloat); whatever it
// cannot convert stays a string and fails validation with our wording.

const FLAG_VALUES: Record<string, boolean> = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false };
const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

/** One option's problem, thrown inside convict's validation (which keeps only its message). */
class FormatProblem extends Error {
  readonly code = ErrorCode.OPTIONS;
}

convict.addFormats({
  'driveshaft-flag': {
    validate(value: unknown) {
      if (typeof value !== 'boolean') throw new FormatProblem('expected no value, or one of true, false, 1, 0, yes, no, on, off');
    },
    coerce: (value: string) => FLAG_VALUES[value.toLowerCase()] ?? value,
  },
  'driveshaft-seconds': {
    validate(value: unknown, schema: convict.SchemaObj) {
      // `zeroMeans` names what 0 stands for where it is allowed ("never").
      const zero = typeof schema.zeroMeans === 'string' ? ` or 0 (${schema.zeroMeans})` : '';
      if (value === 0 && zero !== '') return;
      const problem = secondsProblem(value, schema.maxSeconds as number);
      if (problem !== null) throw new FormatProblem(`expected ${problem}${zero}`);
      const min = schema.minSeconds as number | undefined;
      if (min !== undefined && (value as number) < min) throw new FormatProblem(`expected at least ${min} seconds${zero} (${schema.minReason as string})`);
    },
    coerce: (value: string) => (DECIMAL.test(value) ? Number(value) : value),
  },
  'driveshaft-port': {
    validate(value: unknown) {
      if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535) {
        throw new FormatProblem('expected a TCP port number from 1 to 65535');
      }
    },
    coerce: (value: string) => (/^[0-9]{1,5}$/.test(value) ? Number(value) : value),
  },
  'driveshaft-path': {
    validate(value: unknown) {
      if (value === null) throw new FormatProblem('is required');
      if (typeof value !== 'string' || value === '' || value.includes('\0')) throw new FormatProblem('expected a file path');
    },
  },
  'driveshaft-name': {
    validate(value: unknown, schema: convict.SchemaObj) {
      if (typeof value !== 'string' || !/^[^\s\x00-\x1f\x7f]+$/.test(value)) {
        throw new FormatProblem(`expected ${schema.expected as string} (non-empty, no spaces)`);
      }
    },
  },
  'driveshaft-listen-address': {
    validate(value: unknown) {
      if (value === null) return;
      const parsed = typeof value === 'string' ? parseListenAddress(value) : 'expected HOST:PORT';
      if (typeof parsed === 'string') throw new FormatProblem(parsed);
    },
  },
  'driveshaft-host-list': {
    validate(value: unknown) {
      const parsed = typeof value === 'string' ? parseAllowedHosts(value) : 'expected host names separated by commas';
      if (typeof parsed === 'string') throw new FormatProblem(parsed);
    },
  },
  'driveshaft-request-format': {
    validate(value: unknown) {
      if (value !== RequestFormat.JSON && value !== RequestFormat.MULTIPART) throw new FormatProblem('expected "json" or "multipart"');
    },
  },
});

/**
 * What convict holds: DaemonOptions with --exporter_addr and --exporter_allowed_hosts still as typed
 * (parsed in toDaemonOptions) and --dead_letter_dir still possibly unset (resolved there too).
 */
interface OptionValues extends Omit<DaemonOptions, 'exporter_addr' | 'exporter_allowed_hosts' | 'dead_letter_dir'> {
  help: boolean;
  version: boolean;
  exporter_addr: string | null;
  exporter_allowed_hosts: string;
  dead_letter_dir: string | null;
}

/**
 * `placeholder` is the value's name in --help; options without one are flags. `defaultDoc` describes
 * a default that is resolved at startup rather than fixed.
 */
type OptionSchema = convict.SchemaObj & { doc: string; placeholder?: string; defaultDoc?: string };

const SCHEMA: { [K in keyof OptionValues]: OptionSchema } = {
  help: { doc: 'print this help and exit (also -h)', format: 'driveshaft-flag', default: false },
  version: { doc: 'print the version and exit (also -v)', format: 'driveshaft-flag', default: false },
  jobsconfig: {
    doc: 'the jobs config file (JSON: gearman_servers_list and pools_list)',
    placeholder: 'PATH',
    format: 'driveshaft-path',
    default: null,
    env: 'DRIVESHAFT_JOBSCONFIG',
  },
  logconfig: {
    doc: 'the log config file (JSON for bunyan); without it, JSON lines go to stdout at level info',
    placeholder: 'PATH',
    format: 'driveshaft-path',
    default: null,
    nullable: true,
    env: 'DRIVESHAFT_LOGCONFIG',
  },
  max_running_time: {
    doc: 'seconds a job may run before it is failed (a pool may set its own)',
    placeholder: 'S',
    format: 'driveshaft-seconds',
    maxSeconds: MAX_TIMER_SECONDS,
    default: 300,
    env: 'DRIVESHAFT_MAX_RUNNING_TIME',
  },
  loop_timeout: {
    doc: 'seconds to wait on gearmand before re-polling; shutdown waits 2x (hard) or 4x (graceful)',
    placeholder: 'S',
    format: 'driveshaft-seconds',
    maxSeconds: MAX_LOOP_TIMEOUT_SECONDS,
    default: 10,
    env: 'DRIVESHAFT_LOOP_TIMEOUT',
  },
  child_unresponsive_after: {
    doc: 'seconds without a heartbeat before a pool child is logged and shown as unresponsive (stopped, or its event loop blocked)',
    placeholder: 'S',
    format: 'driveshaft-seconds',
    maxSeconds: MAX_TIMER_SECONDS,
    minSeconds: 1,
    minReason: 'four heartbeats at the shortest heartbeat interval, 250 ms',
    default: 10,
    env: 'DRIVESHAFT_CHILD_UNRESPONSIVE_AFTER',
  },
  child_kill_after: {
    doc: 'seconds without a heartbeat before a pool child is killed (SIGKILL) and restarted; 0 never kills',
    placeholder: 'S',
    format: 'driveshaft-seconds',
    maxSeconds: MAX_TIMER_SECONDS,
    zeroMeans: 'never',
    default: 60,
    env: 'DRIVESHAFT_CHILD_KILL_AFTER',
  },
  status_port: {
    doc: 'TCP port of the status protocol (threads, counters, gauges); off when not given',
    placeholder: 'N',
    format: 'driveshaft-port',
    default: null,
    nullable: true,
    env: 'DRIVESHAFT_STATUS_PORT',
  },
  status_host: {
    doc: 'address the status port binds',
    placeholder: 'HOST',
    format: 'driveshaft-name',
    expected: 'a host name or IP address',
    default: '127.0.0.1',
    env: 'DRIVESHAFT_STATUS_HOST',
  },
  user: {
    doc: 'drop to this user (and its groups) after binding ports and opening files',
    placeholder: 'NAME',
    format: 'driveshaft-name',
    expected: 'a user name',
    default: null,
    nullable: true,
    env: 'DRIVESHAFT_USER',
  },
  pid_file: {
    doc: "write the master's pid here; refuse to start if it names a live process",
    placeholder: 'PATH',
    format: 'driveshaft-path',
    default: null,
    nullable: true,
    env: 'DRIVESHAFT_PID_FILE',
  },
  dead_letter_dir: {
    doc: 'folder of the dead-letter files of pools whose delivery sets no dead_letter_file (<pool>.jsonl); created 0700 at startup',
    placeholder: 'DIR',
    format: 'driveshaft-path',
    default: null,
    nullable: true,
    defaultDoc: DEFAULT_DEAD_LETTER_DIR_TEXT,
    env: 'DRIVESHAFT_DEAD_LETTER_DIR',
  },
  daemonize: {
    doc: 'detach and run in the background; exits 0 once the daemon is ready',
    format: 'driveshaft-flag',
    default: false,
    env: 'DRIVESHAFT_DAEMONIZE',
  },
  request_format: {
    doc: 'default request body for pools that set none: json or multipart',
    placeholder: 'F',
    format: 'driveshaft-request-format',
    default: RequestFormat.JSON,
    env: 'DRIVESHAFT_REQUEST_FORMAT',
  },
  check: {
    doc: 'validate the options and every config file (jobs, log, web), print the result, exit 0 or 2',
    format: 'driveshaft-flag',
    default: false,
    env: 'DRIVESHAFT_CHECK',
  },
  exporter_addr: {
    doc: 'HOST:PORT for /metrics (Prometheus), /status, /healthz, /readyz and a status page; a port alone binds 127.0.0.1; off when not given',
    placeholder: 'ADDR',
    format: 'driveshaft-listen-address',
    default: null,
    nullable: true,
    env: 'DRIVESHAFT_EXPORTER_ADDR',
  },
  exporter_allowed_hosts: {
    doc: 'host names the exporter answers besides its own address, localhost and IP addresses (comma-separated; .example.com = the domain and its subdomains); any other Host gets 421',
    placeholder: 'NAMES',
    format: 'driveshaft-host-list',
    default: '',
    env: 'DRIVESHAFT_EXPORTER_ALLOWED_HOSTS',
  },
  web_config_file: {
    doc: "the exporter's TLS and basic auth, in the Prometheus exporter-toolkit web config format (as node_exporter's --web.config.file)",
    placeholder: 'PATH',
    format: 'driveshaft-path',
    default: null,
    nullable: true,
    env: 'DRIVESHAFT_WEB_CONFIG_FILE',
  },
};

type OptionName = keyof OptionValues;
const OPTION_NAMES = Object.keys(SCHEMA) as OptionName[];
const SHORT_FLAGS: Record<string, OptionName> = { '-h': 'help', '-v': 'version' };
const PATH_OPTIONS = ['jobsconfig', 'logconfig', 'pid_file', 'dead_letter_dir', 'web_config_file'] as const;
/** Options that only mean something with --exporter_addr. */
const EXPORTER_OPTIONS = ['exporter_allowed_hosts', 'web_config_file'] as const;

function isOptionName(name: string): name is OptionName {
  return Object.hasOwn(SCHEMA, name);
}

function isFlag(name: OptionName): boolean {
  return SCHEMA[name].placeholder === undefined;
}

// ---------------------------------------------------------------------------------------------------
// argv

/** Where a value came from, so an error names what the operator actually typed or set. */
interface RawValue {
  source: string;
  text: string;
}

function unknownOption(token: string): OptionsError {
  const name = token.replace(/^-+/, '').split('=')[0] as string;
  const suggestion = suggestKey(name, OPTION_NAMES);
  const hint = suggestion === null ? '' : `; did you mean --${suggestion}?`;
  return new OptionsError(`${token.split('=')[0] as string}: unknown option${hint} (see --help)`);
}

/** Splits argv into option values. Throws OptionsError on the first malformed argument. */
function tokenize(argv: readonly string[]): Map<OptionName, RawValue> {
  const values = new Map<OptionName, RawValue>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    const short = SHORT_FLAGS[token];
    if (token.startsWith('-') && !token.startsWith('--') && short === undefined) throw unknownOption(token);
    if (!token.startsWith('--') && short === undefined) {
      throw new OptionsError(`${redactUris(JSON.stringify(token))}: unexpected argument; every option starts with -- (see --help)`);
    }
    const equals = token.indexOf('=');
    const name = short ?? (equals === -1 ? token.slice(2) : token.slice(2, equals));
    if (!isOptionName(name)) throw unknownOption(token);
    const source = `--${name}`;
    let text: string;
    if (short === undefined && equals !== -1) {
      text = token.slice(equals + 1);
    } else if (isFlag(name)) {
      text = 'true';
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) {
        throw new OptionsError(`${source}: expected a value (${source} ${SCHEMA[name].placeholder as string})`);
      }
      text = next;
      i++;
    }
    if (values.has(name)) throw new OptionsError(`${source}: given more than once`);
    values.set(name, { source, text });
  }
  return values;
}

// ---------------------------------------------------------------------------------------------------
// convict

/** The DRIVESHAFT_* variables of our schema that are set to something. */
function environmentValues(env: NodeJS.ProcessEnv): Map<OptionName, RawValue> {
  const values = new Map<OptionName, RawValue>();
  for (const name of OPTION_NAMES) {
    const variable = SCHEMA[name].env;
    const text = variable === undefined ? undefined : env[variable];
    if (variable !== undefined && text !== undefined && text !== '') values.set(name, { source: variable, text });
  }
  return values;
}

/**
 * Turns convict's joined validation message ("name: message: value was …" per line) into our lines:
 * the option or variable the operator used, what was expected, and exactly what they gave.
 */
function toOptionProblems(message: string, given: Map<OptionName, RawValue>): string[] {
  return message.split('\n').map((line) => {
    const match = /^([a-z_]+): (.*?)(?:: value was .*)?$/.exec(line);
    if (match === null || !isOptionName(match[1] as string)) return line;
    const name = match[1] as OptionName;
    const raw = given.get(name);
    const source = raw?.source ?? `--${name}`;
    if (raw !== undefined) return `${source}: ${match[2] as string}, got ${redactUris(JSON.stringify(raw.text))}`;
    // Only a required option can fail without being given: say both ways of giving it.
    const usage = `--${name} ${SCHEMA[name].placeholder ?? ''}`.trimEnd();
    const env = SCHEMA[name].env === undefined ? '' : ` or set ${SCHEMA[name].env as string}`;
    return `${source}: ${match[2] as string}: give ${usage}${env}`;
  });
}

function validated(given: Map<OptionName, RawValue>, env: Map<OptionName, RawValue>): OptionValues {
  // Our own argv and environment maps go in through set(): convict's args import would accept unknown
  // options, and its load() lets the environment override the command line.
  const config = convict<OptionValues>(SCHEMA as convict.Schema<OptionValues>, { env: {}, args: [] });
  for (const [name, raw] of [...env, ...given]) config.set(name as string, raw.text);
  const sources = new Map([...env, ...given]);
  try {
    config.validate({ allowed: 'strict' });
  } catch (error) {
    throw new OptionsError(toOptionProblems((error as Error).message, sources).join('; '));
  }
  const values = config.getProperties();
  // A child is shown unresponsive before it is killed: a kill that came first would hide the warning.
  if (values.child_kill_after !== 0 && values.child_kill_after < values.child_unresponsive_after) {
    const kill = sources.get('child_kill_after');
    const unresponsive = sources.get('child_unresponsive_after')?.source ?? '--child_unresponsive_after';
    const got = kill === undefined ? `its default is ${values.child_kill_after}: give --child_kill_after too` : `got ${JSON.stringify(kill.text)}`;
    throw new OptionsError(`${kill?.source ?? '--child_kill_after'}: expected 0 (never) or at least ${unresponsive} (${values.child_unresponsive_after}), ${got}`);
  }
  if (values.exporter_addr === null) {
    const orphan = EXPORTER_OPTIONS.find((name) => sources.has(name));
    if (orphan !== undefined) throw new OptionsError(`${(sources.get(orphan) as RawValue).source}: applies to the exporter; give --exporter_addr too`);
  }
  return values;
}

function toDaemonOptions(values: OptionValues, env: NodeJS.ProcessEnv): DaemonOptions {
  const { help: _help, version: _version, exporter_addr: exporterText, exporter_allowed_hosts: hostsText, dead_letter_dir: deadLetterDir, ...rest } = values;
  const exporter = exporterText === null ? null : parseListenAddress(exporterText);
  const hosts = parseAllowedHosts(hostsText);
  const options: DaemonOptions = {
    ...rest,
    // Validation already refused anything that does not parse.
    exporter_addr: typeof exporter === 'string' ? null : exporter,
    exporter_allowed_hosts: typeof hosts === 'string' ? [] : hosts,
    // Resolved before --user drops root: root's default is /var/lib, whoever the children run as.
    dead_letter_dir: deadLetterDir ?? defaultDeadLetterDir({ env, euid: process.geteuid?.() ?? -1 }),
  };
  // --daemonize changes the working directory later, so relative paths are fixed now.
  for (const name of PATH_OPTIONS) {
    const value = options[name];
    if (value !== null) options[name] = path.resolve(process.cwd(), value);
  }
  return options;
}

// ---------------------------------------------------------------------------------------------------
// Entry points

export function versionText(): string {
  try {
    // dist/src/config/options.js → package.json at the project root.
    const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    if (typeof manifest.version === 'string') return `driveshaft ${manifest.version}`;
  } catch {
    // Fall through: a missing manifest must not stop --version from answering.
  }
  return 'driveshaft (unknown version)';
}

function defaultText(name: OptionName): string {
  const described = SCHEMA[name].defaultDoc;
  if (described !== undefined) return `default ${described}`;
  const value = SCHEMA[name].default as string | number | boolean | null;
  if (value === null || value === false || value === '') return '';
  return `default ${String(value)}`;
}

export function helpText(): string {
  const lines = [
    'Usage: driveshaft --jobsconfig PATH [options]',
    '',
    'Keeps pools of persistent Gearman workers and runs every job by POSTing it to an HTTP endpoint.',
    'Every option can also be set with the environment variable shown; the command line wins.',
    '',
    'Options:',
  ];
  const usageOf = (name: OptionName): string => `--${name}${SCHEMA[name].placeholder === undefined ? '' : ` ${SCHEMA[name].placeholder as string}`}`;
  // The descriptions start in one column, two spaces past the longest option.
  const width = Math.max(24, ...OPTION_NAMES.map((name) => usageOf(name).length + 2));
  for (const name of OPTION_NAMES) {
    const schema = SCHEMA[name];
    lines.push(`  ${usageOf(name).padEnd(width)}${schema.doc}`);
    const details = [defaultText(name), schema.env === undefined ? '' : `env ${schema.env as string}`].filter((d) => d !== '');
    if (details.length > 0) lines.push(`  ${''.padEnd(width)}(${details.join('; ')})`);
  }
  lines.push('', 'Signals: HUP reloads; TERM, INT or USR1 stop gracefully; QUIT stops at once; USR2 reopens logs and dead-letter files.');
  lines.push('', 'driveshaft replay --help: re-submit the jobs of a dead-letter file to gearmand.');
  return `${lines.join('\n')}\n`;
}

/**
 * Reads the command line and the environment. Throws OptionsError, with one line naming the option
 * and what was expected, for anything but a valid set of options.
 */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): CommandLine {
  // Asking for help must work even on a command line that is otherwise wrong.
  if (argv.some((arg) => arg === '--help' || arg === '-h')) return { kind: 'help', text: helpText() };
  if (argv.some((arg) => arg === '--version' || arg === '-v')) return { kind: 'version', text: versionText() };
  const given = tokenize(argv);
  const values = validated(given, environmentValues(env));
  if (values.help) return { kind: 'help', text: helpText() };
  if (values.version) return { kind: 'version', text: versionText() };
  return { kind: 'run', options: toDaemonOptions(values, env) };
}
