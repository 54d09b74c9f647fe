/**
 * The jobs config file (docs/configuration.md, Jobs config): the seed's format, validated strictly. Every problem in the file is
 * collected and thrown at once as one ConfigError, one line per problem, so an operator fixes a file in
 * one pass instead of one error per restart.
 *
 * Decisions where the spec is silent:
 * - `pools_list` may be empty: a daemon with no pools is the same as every pool at worker_count 0, and
 *   reloading to `{}` is a clean way to drain everything without stopping the daemon.
 * - `gearman_servers_list` must not be empty, and two entries naming the same host:port are an error
 *   (every slot connects to every server, so a duplicate would double-register each slot).
 * - `jobs_list` duplicates are dropped, keeping the first position: registering a function twice is
 *   the same as once, so it is not worth refusing the file.
 * - Pool names may not contain control characters: tabs and newlines would break the status port's
 *   tab-separated `threads` lines. Function names may not either (gearmand's text protocol is
 *   line/tab based) and are limited to 512 bytes (libgearman's GEARMAN_FUNCTION_MAX_SIZE).
 * - A `job_processing_uri` with `user:password@` is accepted, like the original's libcurl did: the
 *   credentials become an `authorization: Basic …` header and are removed from the URI (so they never
 *   reach logs). A URI fragment is dropped; it is never sent over HTTP.
 */
import { readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { defaultDeadLetterFile } from './dead-letter-location.js';
import { POOL_DELIVERY_KEYS, checkDeadLetterFiles, readPoolDelivery } from './delivery.js';
import { POOL_FLOW_KEYS, readPoolFlow } from './flow.js';
import { childPath, readJsonDocument } from './json-source.js';
import { Problems, checkKeys, isPlainObject, preview } from './problems.js';
import { describeWithoutValue, isCredentialHeaderName } from './redact.js';
import { POOL_SECURITY_KEYS, inlineCredentialWarning, readPoolSecurity } from './security.js';
import { secondsProblem, secondsToMs } from './seconds.js';
import { DEFAULT_GEARMAN_PORT, RequestFormat } from './types.js';
import type { JobsConfig, PoolConfig, ServerAddress } from './types.js';

// The key-suggestion helpers lived here first; options.ts and the tests import them from this module.
export { editDistance, preview, suggestKey } from './problems.js';

export interface JobsConfigDefaults {
  /** The CLI's --max_running_time, in milliseconds; a pool's own max_running_time overrides it. */
  maxRunningTimeMs: number;
  /** The CLI's --request_format; a pool's own request_format overrides it. */
  requestFormat: RequestFormat;
  /**
   * The CLI's --dead_letter_dir (resolved): a pool in "retry" mode that names no dead_letter_file
   * writes to `<dir>/<pool>.jsonl`. Absent or null: such a pool has no dead-letter file.
   */
  deadLetterDir?: string | null;
  /** Where `signing_secrets: {"env": …}` is looked up; process.env unless told. */
  env?: NodeJS.ProcessEnv;
  /** Date.now() unless told: certificates are checked against it. */
  now?: number;
}

const TOP_LEVEL_KEYS = { required: ['gearman_servers_list', 'pools_list'], optional: [] } as const;
const POOL_KEYS = {
  required: ['job_processing_uri', 'worker_count', 'jobs_list'],
  optional: ['request_format', 'max_running_time', 'headers', ...POOL_DELIVERY_KEYS, 'trace_parent_field', ...POOL_SECURITY_KEYS, ...POOL_FLOW_KEYS],
} as const;

/** libgearman's GEARMAN_FUNCTION_MAX_SIZE. */
const FUNCTION_NAME_MAX_BYTES = 512;

/*
 * Registration limits. gearmand 1.1.20 processes CAN_DO in its single event loop and answers no other
 * connection meanwhile, and its cost grows faster than linearly with the number of distinct functions:
 * measured on 2 cores, one connection registering 100,000 distinct functions stalled every other
 * connection for 0.5-1.6 s, 200,000 for 2.6 s, 600,000 for 31 s (in production a 600,000-function
 * jobs_list kept gearmand from answering liveness probes for 20 s). The same function list registered by many connections costs
 * far less per registration (1,000,000 registrations of 10,000 functions over 100 connections: 0.3 s
 * worst stall), so the total bound below is set by the all-distinct worst case.
 */

/**
 * Functions in one pool's jobs_list (after removing duplicates). Each slot connection sends them all
 * at every (re)connect; 10,000 distinct ones take gearmand about 70 ms, far above any real pool's list
 * and far below a loop_timeout.
 */
export const MAX_FUNCTIONS_PER_POOL = 10_000;

/**
 * CAN_DO registrations of the whole config: worker_count × functions × servers, summed over the pools
 * (every slot registers every function on every server). At 100,000 the all-distinct worst case stalls
 * gearmand for about a second, a tenth of the default loop_timeout, and stays under it when a reload
 * briefly doubles the count (new slots register before the old ones stop).
 */
export const MAX_CAN_DO_REGISTRATIONS = 100_000;

/**
 * Headers driveshaft sets itself or that undici refuses in a request: letting a pool set them would
 * corrupt the request framing or make every job fail at send time.
 */
const RESERVED_HEADERS = [
  'content-type',
  'content-length',
  'host',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
  'te',
  'trailer',
] as const;

/** Headers every job's POST carries with its own values (docs/http-contract.md; job-runner.ts sets them). */
const JOB_HEADERS = ['traceparent', 'driveshaft-attempt', 'driveshaft-first-attempt', 'driveshaft-function', 'driveshaft-job-handle', 'driveshaft-unique'] as const;

/** RFC 9110 token: the characters a header name may contain. */
const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 field-value: no control characters except horizontal tab (CR/LF would inject headers). */
const HEADER_VALUE_FORBIDDEN = /[\x00-\x08\x0a-\x1f\x7f]/;
const CONTROL_CHARACTERS = /[\x00-\x1f\x7f]/;

/** What each key expects, worded once for both "missing" and "wrong value" lines. */
const expectations: Record<string, string> = {
  gearman_servers_list: 'a non-empty array of gearmand addresses ("host", "host:port" or "[ipv6]:port")',
  pools_list: 'an object of pools by name',
  job_processing_uri: 'an http:// or https:// URL',
  worker_count: 'an integer >= 0',
  jobs_list: 'a non-empty array of function names',
};

// ---------------------------------------------------------------------------------------------------
// Server addresses

const SERVER_FORMS = '"host", "host:port", "[ipv6]" or "[ipv6]:port" with a port from 1 to 65535';

function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/** RFC 1123 host names (plus `_`, common in internal DNS) or a dotted IPv4 address. */
function isHostName(host: string): boolean {
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split('.');
  if (!labels.every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label))) return false;
  // All-numeric names are IPv4 addresses and must be valid ones ("999.1.1.1" is no host).
  return !labels.every((label) => /^[0-9]+$/.test(label)) || net.isIPv4(name);
}

/** A ServerAddress, or what was wrong with the entry (the text after "expected"). */
function readServerAddress(entry: string): ServerAddress | string {
  if (entry.startsWith('[')) {
    const match = /^\[([^\]]*)\](?::(.*))?$/.exec(entry);
    if (match === null || !net.isIPv6(match[1] as string)) return `${SERVER_FORMS} (bad IPv6 address in brackets)`;
    const port = match[2] === undefined ? DEFAULT_GEARMAN_PORT : parsePort(match[2]);
    if (port === null) return SERVER_FORMS;
    const host = (match[1] as string).toLowerCase();
    return { host, port, label: `[${host}]:${port}` };
  }
  if (net.isIPv6(entry)) return `${SERVER_FORMS} (an IPv6 address needs brackets: "[${entry}]")`;
  const colon = entry.lastIndexOf(':');
  const hostPart = colon === -1 ? entry : entry.slice(0, colon);
  const port = colon === -1 ? DEFAULT_GEARMAN_PORT : parsePort(entry.slice(colon + 1));
  if (port === null || !isHostName(hostPart)) return SERVER_FORMS;
  const host = hostPart.toLowerCase();
  return { host, port, label: `${host}:${port}` };
}

/** Parses one gearman_servers_list entry; throws ConfigError on anything but the documented forms. */
export function parseServerAddress(entry: string): ServerAddress {
  const result = readServerAddress(entry);
  if (typeof result === 'string') throw new ConfigError([`gearman server ${preview(entry)}: expected ${result}`]);
  return result;
}

function readServers(value: unknown, problems: Problems): ServerAddress[] {
  const at = 'gearman_servers_list';
  if (!Array.isArray(value) || value.length === 0) {
    problems.expected(at, expectations[at] as string, value);
    return [];
  }
  const servers: ServerAddress[] = [];
  const firstIndex = new Map<string, number>();
  value.forEach((entry: unknown, index) => {
    const entryAt = childPath(at, index);
    if (typeof entry !== 'string') return problems.expected(entryAt, `a string (${SERVER_FORMS})`, entry);
    const result = readServerAddress(entry);
    if (typeof result === 'string') return problems.expected(entryAt, result, entry);
    const earlier = firstIndex.get(result.label);
    if (earlier !== undefined) {
      return problems.add(entryAt, `duplicate server ${result.label} (already ${childPath(at, earlier)})`);
    }
    firstIndex.set(result.label, index);
    servers.push(result);
  });
  return servers;
}

// ---------------------------------------------------------------------------------------------------
// Pools

interface UriFields {
  uri: string | null;
  /** `Basic …` when the URI carried user:password. */
  uriAuthorization: string | null;
}

function readUri(value: unknown, at: string, problems: Problems): UriFields {
  const what = expectations.job_processing_uri as string;
  const fail = (expected = what): UriFields => {
    problems.expected(at, expected, value);
    return { uri: null, uriAuthorization: null };
  };
  if (typeof value !== 'string' || !URL.canParse(value)) return fail();
  const url = new URL(value);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return fail();
  let uriAuthorization: string | null = null;
  if (url.username !== '' || url.password !== '') {
    try {
      const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      uriAuthorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
    } catch {
      return fail(`${what} with percent-encoded user:password`);
    }
    url.username = '';
    url.password = '';
  }
  url.hash = '';
  return { uri: url.href, uriAuthorization };
}

function readWorkerCount(value: unknown, at: string, problems: Problems): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  problems.expected(at, expectations.worker_count as string, value);
  return 0;
}

function functionNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a non-empty string';
  if (CONTROL_CHARACTERS.test(name)) return 'a function name without control characters';
  if (Buffer.byteLength(name, 'utf8') > FUNCTION_NAME_MAX_BYTES) return `a function name of at most ${FUNCTION_NAME_MAX_BYTES} bytes`;
  return null;
}

function readJobsList(value: unknown, at: string, problems: Problems): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.expected(at, expectations.jobs_list as string, value);
    return [];
  }
  const names = new Set<string>();
  value.forEach((name: unknown, index) => {
    const problem = functionNameProblem(name);
    if (problem !== null) problems.expected(childPath(at, index), problem, name);
    else names.add(name as string);
  });
  if (names.size > MAX_FUNCTIONS_PER_POOL) {
    problems.add(at, `${names.size} functions; at most ${MAX_FUNCTIONS_PER_POOL} per pool (gearmand answers no other connection while it registers a long list)`);
  }
  return [...names];
}

function readRequestFormat(value: unknown, at: string, fallback: RequestFormat, problems: Problems): RequestFormat {
  if (value === undefined) return fallback;
  if (value === RequestFormat.JSON || value === RequestFormat.MULTIPART) return value;
  problems.expected(at, '"json" or "multipart"', value);
  return fallback;
}

function readMaxRunningTime(value: unknown, at: string, fallbackMs: number, problems: Problems): number {
  if (value === undefined) return fallbackMs;
  const problem = secondsProblem(value);
  if (problem === null) return secondsToMs(value as number);
  problems.expected(at, problem, value);
  return fallbackMs;
}

function readHeaders(value: unknown, at: string, problems: Problems): Record<string, string> {
  // A Map, then fromEntries: a header or pool named "__proto__" must stay an own property.
  const headers = new Map<string, string>();
  if (value === undefined) return {};
  if (!isPlainObject(value)) {
    problems.expected(at, 'an object of header names to string values', value);
    return {};
  }
  for (const [name, headerValue] of Object.entries(value)) {
    const headerAt = childPath(at, name);
    const lower = name.toLowerCase();
    if (!HTTP_TOKEN.test(name)) {
      problems.add(headerAt, 'expected an HTTP header name (letters, digits and !#$%&\'*+.^_`|~-)');
    } else if ((RESERVED_HEADERS as readonly string[]).includes(lower)) {
      problems.add(headerAt, `driveshaft sets this header itself; a pool may not set any of ${RESERVED_HEADERS.join(', ')}`);
    } else if ((JOB_HEADERS as readonly string[]).includes(lower)) {
      problems.add(headerAt, `driveshaft sets this header on every job with the job's own value; a pool may not set any of ${JOB_HEADERS.join(', ')}`);
    } else if (headers.has(lower)) {
      problems.add(headerAt, `header ${JSON.stringify(lower)} is given more than once (names are case-insensitive)`);
    } else if (typeof headerValue !== 'string' || HEADER_VALUE_FORBIDDEN.test(headerValue)) {
      // The value of an authorization or API-key header is a credential: its type is enough to fix it.
      if (isCredentialHeaderName(lower)) problems.add(headerAt, `expected a string without control characters, got ${describeWithoutValue(headerValue)}`);
      else problems.expected(headerAt, 'a string without control characters', headerValue);
    } else {
      headers.set(lower, headerValue);
    }
  }
  return Object.fromEntries(headers);
}

/** trace_parent_field: a top-level member name of the workload JSON object. */
function readTraceParentField(value: unknown, at: string, problems: Problems): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' && value !== '') return value;
  problems.expected(at, 'the name of a JSON workload member holding a W3C traceparent (a non-empty string), or null', value);
  return null;
}

function poolNameProblem(name: string): string | null {
  if (name.length === 0) return 'a non-empty pool name';
  // Tabs and newlines would break the status port's tab-separated `threads` lines.
  if (CONTROL_CHARACTERS.test(name)) return 'a pool name without control characters';
  return null;
}

/** What every pool reader needs besides its own value. */
interface PoolContext {
  defaults: JobsConfigDefaults;
  /** The jobs config file's folder: relative paths in the file are relative to it. */
  configDir: string;
  problems: Problems;
  /** What loads but deserves a look (secret files others can read, expired certificates). */
  warnings: string[];
}

function poolDefaultDeadLetterFile(name: string, defaults: JobsConfigDefaults): string | null {
  return defaults.deadLetterDir === undefined || defaults.deadLetterDir === null ? null : defaultDeadLetterFile(defaults.deadLetterDir, name);
}

function readPool(name: string, value: unknown, at: string, context: PoolContext): PoolConfig | null {
  const { defaults, problems } = context;
  const nameProblem = poolNameProblem(name);
  if (nameProblem !== null) {
    problems.add(at, `expected ${nameProblem}`);
    return null;
  }
  if (!isPlainObject(value)) {
    problems.expected(at, 'a pool object with "job_processing_uri", "worker_count" and "jobs_list"', value);
    return null;
  }
  const before = problems.lines.length;
  const key = (field: string): string => childPath(at, field);
  checkKeys(value, at, POOL_KEYS, problems, expectations);
  // Missing required keys were reported by checkKeys; only present ones are read.
  const has = (field: string): boolean => field in value;
  const { uri, uriAuthorization } = has('job_processing_uri')
    ? readUri(value.job_processing_uri, key('job_processing_uri'), problems)
    : { uri: null, uriAuthorization: null };
  const workerCount = has('worker_count') ? readWorkerCount(value.worker_count, key('worker_count'), problems) : 0;
  const jobsList = has('jobs_list') ? readJobsList(value.jobs_list, key('jobs_list'), problems) : [];
  const requestFormat = readRequestFormat(value.request_format, key('request_format'), defaults.requestFormat, problems);
  const maxRunningTimeMs = readMaxRunningTime(value.max_running_time, key('max_running_time'), defaults.maxRunningTimeMs, problems);
  const headers = readHeaders(value.headers, key('headers'), problems);
  const delivery = readPoolDelivery(value, at, context.configDir, problems, poolDefaultDeadLetterFile(name, defaults));
  const traceParentField = readTraceParentField(value.trace_parent_field, key('trace_parent_field'), problems);
  const flow = readPoolFlow(value, at, problems);
  const security = readPoolSecurity(value, at, uri === null ? null : uri.startsWith('https:'), {
    configDir: context.configDir,
    problems,
    warnings: context.warnings,
    env: defaults.env ?? process.env,
    now: defaults.now ?? Date.now(),
  });
  if (has('bearer_token_file') && (uriAuthorization !== null || 'authorization' in headers)) {
    const other = uriAuthorization !== null ? 'user:password in job_processing_uri' : 'headers.authorization';
    problems.add(key('bearer_token_file'), `${other} also sets the authorization header; keep one`);
  }
  if (uriAuthorization !== null) {
    if ('authorization' in headers) {
      problems.add(key('job_processing_uri'), 'credentials are given both in the URL and in headers.authorization; keep one');
    }
    headers.authorization = uriAuthorization;
  }
  if (problems.lines.length > before || uri === null) return null;
  return { name, jobProcessingUri: uri, workerCount, jobsList, requestFormat, maxRunningTimeMs, headers, ...delivery, traceParentField, ...security, ...flow };
}

function readPools(value: unknown, context: PoolContext, configFile: string): Record<string, PoolConfig> {
  const at = 'pools_list';
  const pools = new Map<string, PoolConfig>();
  if (!isPlainObject(value)) {
    context.problems.expected(at, expectations[at] as string, value);
    return {};
  }
  const located: Array<{ at: string; pool: PoolConfig; defaultFile: string | null }> = [];
  for (const [name, poolValue] of Object.entries(value)) {
    const poolAt = childPath(at, name);
    const pool = readPool(name, poolValue, poolAt, context);
    if (pool === null) continue;
    pools.set(name, pool);
    located.push({ at: poolAt, pool, defaultFile: poolDefaultDeadLetterFile(name, context.defaults) });
  }
  checkDeadLetterFiles(located, configFile, context.problems);
  return Object.fromEntries(pools);
}

/**
 * The total CAN_DO bound. Invalid pools and servers are left out of the count, so with other problems
 * the number is a lower bound, and a line about it is still true.
 */
function checkRegistrations(pools: Record<string, PoolConfig>, servers: readonly ServerAddress[], problems: Problems): void {
  let total = 0;
  let largest: { name: string; count: number } | null = null;
  for (const pool of Object.values(pools)) {
    const count = pool.workerCount * pool.jobsList.length * servers.length;
    total += count;
    if (largest === null || count > largest.count) largest = { name: pool.name, count };
  }
  if (total <= MAX_CAN_DO_REGISTRATIONS || largest === null) return;
  const serverCount = `${servers.length} server${servers.length === 1 ? '' : 's'}`;
  problems.add(
    'pools_list',
    `${total} CAN_DO registrations (worker_count × functions × ${serverCount}, summed over the pools; the most: ${childPath('pools_list', largest.name)} with ${largest.count}); at most ${MAX_CAN_DO_REGISTRATIONS}, because gearmand answers no other connection while it registers them; lower worker_count or shorten jobs_list`,
  );
}

// ---------------------------------------------------------------------------------------------------
// Entry points

/**
 * Validates the text of a jobs config. `file` names the file in every problem line and, resolved to an
 * absolute path, becomes JobsConfig.path. Throws ConfigError with every problem found.
 */
export function parseJobsConfig(text: string, file: string, defaults: JobsConfigDefaults): JobsConfig {
  const problems = new Problems(file);
  const document = readJsonDocument(text);
  if (!document.ok) {
    const { line, column, message } = document.syntaxError;
    throw new ConfigError([`${file}: not valid JSON: line ${line}, column ${column}: ${message}`]);
  }
  for (const duplicate of document.duplicates) {
    problems.add(duplicate.path ?? '', `${duplicate.message} (line ${duplicate.line}, column ${duplicate.column})`);
  }
  const root = document.value;
  if (!isPlainObject(root)) {
    problems.expected('', 'an object with "gearman_servers_list" and "pools_list"', root);
    throw new ConfigError(problems.lines);
  }
  checkKeys(root, '', TOP_LEVEL_KEYS, problems, expectations);
  const servers = 'gearman_servers_list' in root ? readServers(root.gearman_servers_list, problems) : [];
  const absolute = path.resolve(file);
  const warnings: string[] = [];
  const context = { defaults, configDir: path.dirname(absolute), problems, warnings };
  const pools = 'pools_list' in root ? readPools(root.pools_list, context, absolute) : {};
  checkRegistrations(pools, servers, problems);
  if (problems.lines.length > 0) throw new ConfigError(problems.lines);
  return { path: absolute, servers, pools, warnings };
}

const READ_REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent of the path is not a directory',
};

/** Reads and validates a jobs config file synchronously (startup, --check and reload all want that). */
export function loadJobsConfig(file: string, defaults: JobsConfigDefaults): JobsConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const reason = READ_REASONS[code] ?? (error as Error).message;
    throw new ConfigError([`${file}: cannot read jobs config: ${reason}`], { cause: error });
  }
  const config = parseJobsConfig(text, file, defaults);
  try {
    const warning = inlineCredentialWarning(config.path, statSync(file).mode, Object.values(config.pools));
    if (warning !== null) config.warnings = [warning, ...(config.warnings ?? [])];
  } catch {
    // Read a moment ago; a file gone since is the next reload's problem, not this one's.
  }
  return config;
}
