/**
 * The command line of `driveshaft replay`. Same conventions as the daemon's options: `--name value`
 * or `--name=value`, a value starting with `--` is a missing value, an option given twice is an error
 * (except --function, which adds a name), and every problem is one line naming the option.
 */
import { SubmitKind } from '../codec/index.js';
import { parseServerAddress } from '../config/jobs-config.js';
import { secondsProblem, secondsToMs } from '../config/seconds.js';
import { readOptionValue } from '../config/subcommand-argv.js';
import type { ServerAddress } from '../config/types.js';
import { OptionsError } from '../errors.js';

export const ReplayPriority = {
  NORMAL: 'normal',
  HIGH: 'high',
  LOW: 'low',
} as const;
export type ReplayPriority = (typeof ReplayPriority)[keyof typeof ReplayPriority];

/** The background submit packet of each priority. */
export const SUBMIT_KIND: Readonly<Record<ReplayPriority, SubmitKind>> = {
  normal: SubmitKind.BACKGROUND,
  high: SubmitKind.HIGH_BACKGROUND,
  low: SubmitKind.LOW_BACKGROUND,
};

export interface ReplayOptions {
  file: string;
  /** In command-line order; letters go to the first one that accepts a connection. */
  servers: ServerAddress[];
  /** Replay only letters of these functions; empty = every function. */
  functions: string[];
  /** Replay only letters with since <= time (ms since the epoch); null = no lower bound. */
  sinceMs: number | null;
  /** Replay only letters with time < until; null = no upper bound. */
  untilMs: number | null;
  dryRun: boolean;
  priority: ReplayPriority;
  /** 1-based: lines before it are neither read as letters nor reported (a resumed run). */
  fromLine: number;
  /** How long gearmand may take to answer the oldest outstanding submit before the connection is given up. */
  replyTimeoutMs: number;
}

export const DEFAULT_REPLY_TIMEOUT_SECONDS = 30;

export type ReplayCommand = { kind: 'help'; text: string } | { kind: 'run'; options: ReplayOptions };

export function replayHelpText(): string {
  return [
    'Usage: driveshaft replay --file PATH --servers HOST[:PORT][,HOST[:PORT]...] [options]',
    '',
    'Submits the letters of a dead-letter file to gearmand again, as background jobs with their',
    'function, unique and workload bytes unchanged. The file is only read, never changed: move it',
    'away and send the daemon USR2 first, then replay the moved file.',
    '',
    'Options:',
    '  --file PATH             the dead-letter file (JSON lines)',
    '  --servers LIST          gearmand addresses, comma-separated (default port 4730); the first one',
    '                          that accepts a connection gets every letter',
    '  --function NAME         replay only letters of this function (repeat for several)',
    '  --since TIME            replay only letters written at or after TIME (ISO 8601, e.g.',
    '                          2026-12-01T10:00:00Z; a date alone is midnight UTC)',
    '  --until TIME            replay only letters written before TIME',
    '  --priority P            normal, high or low (default normal)',
    '  --from-line N           start at line N of the file (resume: a run that lost its connection',
    '                          prints the command to go on with)',
    `  --reply-timeout S       seconds gearmand may take to confirm a submit before the connection is`,
    `                          given up (default ${DEFAULT_REPLY_TIMEOUT_SECONDS}; connecting has 10 s)`,
    '  --dry-run               list what would be submitted; connect to nothing',
    '  --help                  this text',
    '',
    'Exit status: 0 every selected letter was accepted; 1 a bad line, a refused letter or a lost',
    'connection (reported with line numbers); 2 bad options or an unreadable file. A torn last line',
    '(no line end: a write cut short, whose job was handed back to gearmand, not failed) is reported',
    'and skipped, and alone does not make the status 1.',
    '',
  ].join('\n');
}

/** ISO 8601 date, or date-time with an explicit offset: a bare date-time would be read as local time. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

/** Milliseconds since the epoch, or null when `text` is not an ISO 8601 time this command accepts. */
export function parseIsoTime(text: string): number | null {
  if (!ISO_TIME.test(text)) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

const VALUE_OPTIONS = ['file', 'servers', 'function', 'since', 'until', 'priority', 'from-line', 'reply-timeout'] as const;
const FLAG_OPTIONS = ['dry-run', 'help'] as const;
const ALL_OPTIONS: readonly string[] = [...VALUE_OPTIONS, ...FLAG_OPTIONS];

function isValueOption(name: string): name is (typeof VALUE_OPTIONS)[number] {
  return (VALUE_OPTIONS as readonly string[]).includes(name);
}

function parseServers(text: string): ServerAddress[] {
  const servers: ServerAddress[] = [];
  for (const entry of text.split(',')) {
    let server: ServerAddress;
    try {
      server = parseServerAddress(entry.trim());
    } catch (error) {
      // parseServerAddress words it for the jobs config ("gearman server "x": expected …").
      const detail = String((error as Error).message).replace(/^gearman server /, '');
      throw new OptionsError(`--servers: ${detail}`);
    }
    if (servers.some((known) => known.label === server.label)) throw new OptionsError(`--servers: ${server.label} is listed twice`);
    servers.push(server);
  }
  return servers;
}

/**
 * Reads replay's arguments (those after `replay`). Throws OptionsError with one line naming the option
 * and what was expected.
 */
export function parseReplayCommandLine(argv: readonly string[]): ReplayCommand {
  if (argv.some((arg) => arg === '--help' || arg === '-h')) return { kind: 'help', text: replayHelpText() };
  const values = new Map<string, string>();
  const functions: string[] = [];
  let dryRun = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new OptionsError(`${JSON.stringify(arg)}: unexpected argument (options start with --; see driveshaft replay --help)`);
    const equals = arg.indexOf('=');
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    if (!ALL_OPTIONS.includes(name)) throw new OptionsError(`--${name}: unknown option (replay takes ${ALL_OPTIONS.map((o) => `--${o}`).join(', ')})`);
    if (!isValueOption(name)) {
      if (equals !== -1) throw new OptionsError(`--${name}: takes no value`);
      if (dryRun) throw new OptionsError(`--${name}: given twice`);
      dryRun = true;
      continue;
    }
    const { value, last } = readOptionValue(argv, i, name, equals);
    i = last;
    if (name === 'function') {
      if (value.includes('\0')) throw new OptionsError('--function: expected a function name without NUL bytes');
      if (!functions.includes(value)) functions.push(value);
      continue;
    }
    if (values.has(name)) throw new OptionsError(`--${name}: given twice`);
    values.set(name, value);
  }

  const file = values.get('file');
  if (file === undefined) throw new OptionsError('--file: is required (the dead-letter file to replay)');
  const serversText = values.get('servers');
  if (serversText === undefined) throw new OptionsError('--servers: is required (gearmand addresses, e.g. 127.0.0.1:4730)');
  const servers = parseServers(serversText);

  const time = (name: 'since' | 'until'): number | null => {
    const text = values.get(name);
    if (text === undefined) return null;
    const ms = parseIsoTime(text);
    if (ms === null) throw new OptionsError(`--${name}: expected an ISO 8601 time such as 2026-12-01T10:00:00Z or a date such as 2026-12-01, got ${JSON.stringify(text)}`);
    return ms;
  };
  const sinceMs = time('since');
  const untilMs = time('until');
  if (sinceMs !== null && untilMs !== null && untilMs <= sinceMs) throw new OptionsError('--until: must be later than --since');

  const priorityText = values.get('priority') ?? ReplayPriority.NORMAL;
  if (!Object.values(ReplayPriority).includes(priorityText as ReplayPriority)) {
    throw new OptionsError(`--priority: expected normal, high or low, got ${JSON.stringify(priorityText)}`);
  }

  const fromLineText = values.get('from-line') ?? '1';
  if (!/^[0-9]+$/.test(fromLineText) || !Number.isSafeInteger(Number(fromLineText)) || Number(fromLineText) < 1) {
    throw new OptionsError(`--from-line: expected a line number (1 or more), got ${JSON.stringify(fromLineText)}`);
  }

  const timeoutText = values.get('reply-timeout');
  let replyTimeoutMs = secondsToMs(DEFAULT_REPLY_TIMEOUT_SECONDS);
  if (timeoutText !== undefined) {
    const seconds = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(timeoutText) ? Number(timeoutText) : Number.NaN;
    const problem = secondsProblem(seconds);
    if (problem !== null) throw new OptionsError(`--reply-timeout: expected ${problem}, got ${JSON.stringify(timeoutText)}`);
    replyTimeoutMs = secondsToMs(seconds);
  }

  return {
    kind: 'run',
    options: { file, servers, functions, sinceMs, untilMs, dryRun, priority: priorityText as ReplayPriority, fromLine: Number(fromLineText), replyTimeoutMs },
  };
}

/** `text` as one shell word: quoted only when it holds something a shell would act on. */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command line that replays the same selection from `line` on: every option of `options` (times
 * as ISO 8601 UTC, servers as host:port), with --from-line set to `line`.
 */
export function resumeCommand(options: ReplayOptions, line: number): string {
  const args = ['driveshaft', 'replay', '--file', options.file, '--servers', options.servers.map((server) => server.label).join(',')];
  for (const name of options.functions) args.push('--function', name);
  if (options.sinceMs !== null) args.push('--since', new Date(options.sinceMs).toISOString());
  if (options.untilMs !== null) args.push('--until', new Date(options.untilMs).toISOString());
  if (options.priority !== ReplayPriority.NORMAL) args.push('--priority', options.priority);
  if (options.replyTimeoutMs !== secondsToMs(DEFAULT_REPLY_TIMEOUT_SECONDS)) args.push('--reply-timeout', String(options.replyTimeoutMs / 1000));
  args.push('--from-line', String(line));
  return args.map(shellWord).join(' ');
}
