/**
 * A pool's delivery keys in the jobs config: `keep_alive`, `max_workload_bytes`, `max_response_bytes`
 * and the `delivery` object (retry policy, circuit breaker, dead-letter file). Every key is optional; a missing one takes
 * its value from defaultPoolExtensions() / DEFAULT_DELIVERY, except the dead-letter file: a pool in
 * "retry" mode that names none (or null) gets `<--dead_letter_dir>/<pool>.jsonl`, so that the default
 * configuration drops no background job; `false` means none, and so does "fail_fast" unless it names
 * one. Problems are collected like every other jobs-config problem, one line each; a combination that is pointless but harmless (retry settings
 * under "fail_fast") is accepted, only values the runtime could not honour are refused.
 */
import path from 'node:path';
import { MAX_FILE_NAME_BYTES } from './dead-letter-location.js';
import { childPath } from './json-source.js';
import { Problems, checkKeys, isPlainObject, isSafeInteger } from './problems.js';
import { secondsProblem, secondsToMs } from './seconds.js';
import { DEFAULT_DELIVERY, DeliveryMode, MAX_RESPONSE_BYTES_LIMIT, defaultPoolExtensions } from './types.js';
import type { DeliveryPolicy, PoolConfig } from './types.js';

/** The per-pool keys this module reads, for the pool's list of allowed keys. */
export const POOL_DELIVERY_KEYS = ['keep_alive', 'max_workload_bytes', 'max_response_bytes', 'delivery'] as const;

/** The keys of a `delivery` object, in the order the documentation lists them. */
export const DELIVERY_KEYS = {
  required: [],
  optional: [
    'mode',
    'max_attempts',
    'max_retry_duration',
    'min_backoff',
    'max_backoff',
    'max_doublings',
    'retry_on_status',
    'breaker_threshold',
    'breaker_cooloff',
    'breaker_max_cooloff',
    'health_url',
    'dead_letter_file',
  ],
} as const;

/**
 * 2^30 × the 1 ms minimum backoff still fits a Node.js timer (2^31-1 ms); one doubling more would not,
 * so every further doubling is capped away and could never change a wait.
 */
export const MAX_DOUBLINGS = 30;

/**
 * Statuses that may be declared transient. 2xx is the endpoint's answer (200 carries gearman_ret) and
 * 3xx redirects are never followed, so only client and server errors can sensibly be retried.
 */
export const RETRY_STATUS_MIN = 400;
export const RETRY_STATUS_MAX = 599;

const CONTROL_CHARACTERS = /[\x00-\x1f\x7f]/;

export type PoolDeliverySettings = Pick<PoolConfig, 'keepAlive' | 'maxWorkloadBytes' | 'maxResponseBytes' | 'delivery'>;

function readKeepAlive(value: unknown, at: string, fallback: boolean, problems: Problems): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  problems.expected(at, 'true or false', value);
  return fallback;
}

function readMaxWorkloadBytes(value: unknown, at: string, fallback: number, problems: Problems): number {
  if (value === undefined) return fallback;
  if (isSafeInteger(value) && value >= 0) return value;
  problems.expected(at, 'an integer >= 0 (0 = no limit)', value);
  return fallback;
}

function readMaxResponseBytes(value: unknown, at: string, fallback: number, problems: Problems): number {
  if (value === undefined) return fallback;
  if (isSafeInteger(value) && value >= 1 && value <= MAX_RESPONSE_BYTES_LIMIT) return value;
  problems.expected(at, `an integer from 1 to ${MAX_RESPONSE_BYTES_LIMIT} (256 MiB)`, value);
  return fallback;
}

/** One `delivery` object being read: each reader records its problem and falls back to the default. */
class DeliveryReader {
  readonly #object: Record<string, unknown>;
  readonly #at: string;
  readonly #problems: Problems;
  /** Keys already reported, so a cross-field check does not add a second line about them. */
  readonly #invalid = new Set<string>();

  constructor(object: Record<string, unknown>, at: string, problems: Problems) {
    this.#object = object;
    this.#at = at;
    this.#problems = problems;
  }

  /** JSON path of `key`, or of its element `index` for arrays. */
  path(key: string, index?: number): string {
    const at = childPath(this.#at, key);
    return index === undefined ? at : childPath(at, index);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.#object, key);
  }

  value(key: string): unknown {
    return this.has(key) ? this.#object[key] : undefined;
  }

  /** The value when it passes `accept`, the fallback (and a problem) when it is present but does not. */
  read<T>(key: string, fallback: T, what: string, accept: (value: unknown) => value is T): T {
    if (!this.has(key)) return fallback;
    const value = this.#object[key];
    if (accept(value)) return value;
    this.expected(key, what, value);
    return fallback;
  }

  integer(key: string, fallback: number, min: number, max: number, what: string): number {
    return this.read(key, fallback, what, (value): value is number => isSafeInteger(value) && value >= min && value <= max);
  }

  /** Seconds in the file, milliseconds returned; `allowZero` for the limits where 0 means "none". */
  seconds(key: string, fallbackMs: number, allowZero = false): number {
    if (!this.has(key)) return fallbackMs;
    const value = this.#object[key];
    if (allowZero && value === 0) return 0;
    let problem = secondsProblem(value);
    if (problem !== null && allowZero && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) {
      problem = '0 (no limit) or a positive number of seconds';
    }
    if (problem === null) return secondsToMs(value as number);
    this.expected(key, problem, value);
    return fallbackMs;
  }

  isValid(key: string): boolean {
    return !this.#invalid.has(key);
  }

  /** A problem with `key`, or with its element `index`; the key counts as invalid either way. */
  add(key: string, text: string, index?: number): void {
    this.#invalid.add(key);
    this.#problems.add(this.path(key, index), text);
  }

  expected(key: string, what: string, value: unknown, index?: number): void {
    this.#invalid.add(key);
    this.#problems.expected(this.path(key, index), what, value);
  }

  /** Reports the problem and stands for "no value", for the keys whose fallback is null. */
  reject(key: string, what: string, value: unknown): null {
    this.expected(key, what, value);
    return null;
  }
}

const isDeliveryMode = (value: unknown): value is DeliveryMode => value === DeliveryMode.RETRY || value === DeliveryMode.FAIL_FAST;

function readRetryOnStatus(reader: DeliveryReader, fallback: readonly number[]): number[] {
  const key = 'retry_on_status';
  if (!reader.has(key)) return [...fallback];
  const value = reader.value(key);
  if (!Array.isArray(value)) {
    reader.expected(key, `an array of HTTP status codes from ${RETRY_STATUS_MIN} to ${RETRY_STATUS_MAX} (may be empty)`, value);
    return [...fallback];
  }
  const statuses: number[] = [];
  let ok = true;
  value.forEach((status: unknown, index) => {
    if (!isSafeInteger(status) || status < RETRY_STATUS_MIN || status > RETRY_STATUS_MAX) {
      reader.expected(key, `an HTTP status code from ${RETRY_STATUS_MIN} to ${RETRY_STATUS_MAX}`, status, index);
      ok = false;
    } else if (statuses.includes(status)) {
      reader.add(key, `${status} is already listed (${childPath(key, value.indexOf(status))})`, index);
      ok = false;
    } else {
      statuses.push(status);
    }
  });
  return ok ? statuses : [...fallback];
}

function readHealthUrl(reader: DeliveryReader): string | null {
  const key = 'health_url';
  const value = reader.value(key);
  if (value === undefined || value === null) return DEFAULT_DELIVERY.healthUrl;
  const what = 'an http:// or https:// URL, or null';
  if (typeof value !== 'string' || !URL.canParse(value)) return reader.reject(key, what, value);
  const url = new URL(value);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return reader.reject(key, what, value);
  // The probe is a bare GET; credentials in the URL would be silently dropped by the HTTP client.
  if (url.username !== '' || url.password !== '') return reader.reject(key, 'an http:// or https:// URL without user:password', value);
  url.hash = '';
  return url.href;
}

/**
 * `dead_letter_file` as written: a resolved path, false (none), or undefined (the default applies; also
 * after a problem, which makes the pool invalid anyway).
 */
function readDeadLetterFile(reader: DeliveryReader, configDir: string): string | false | undefined {
  const key = 'dead_letter_file';
  const value = reader.value(key);
  if (value === undefined || value === null) return undefined;
  if (value === false) return false;
  const base = typeof value === 'string' ? path.basename(value) : '';
  if (typeof value !== 'string' || value === '') reader.expected(key, 'a file path, null (the default file under --dead_letter_dir) or false (none)', value);
  else if (CONTROL_CHARACTERS.test(value)) reader.expected(key, 'a file path without control characters', value);
  else if (value.endsWith('/') || base === '.' || base === '..') reader.expected(key, 'a path naming a file, not a directory', value);
  else return path.resolve(configDir, value);
  return undefined;
}

/**
 * The pool's dead-letter file: the one it names, none for `false`, else `defaultFile` in "retry" mode
 * and none in "fail_fast" (the original's behaviour). A default name too long for a file system is a
 * problem of the pool (its name is what makes it long).
 */
function resolveDeadLetterFile(setting: string | false | undefined, mode: DeliveryMode, defaultFile: string | null, poolAt: string, problems: Problems): string | null {
  if (typeof setting === 'string') return setting;
  if (setting === false || mode === DeliveryMode.FAIL_FAST || defaultFile === null) return null;
  const nameBytes = Buffer.byteLength(path.basename(defaultFile));
  if (nameBytes > MAX_FILE_NAME_BYTES) {
    problems.add(
      poolAt,
      `its default dead-letter file name (the pool name, percent-encoded, plus .jsonl) has ${nameBytes} bytes, more than the ${MAX_FILE_NAME_BYTES} a file name may have; set delivery.dead_letter_file`,
    );
    return null;
  }
  return defaultFile;
}

/** `0.1 seconds`, with ", the default" when the file did not set it. */
function describeSeconds(reader: DeliveryReader, key: string, ms: number): string {
  return `${key} (${ms / 1000} seconds${reader.has(key) ? '' : ', the default'})`;
}

function readDeliveryObject(object: Record<string, unknown>, at: string, configDir: string, problems: Problems): { policy: DeliveryPolicy; deadLetterFile: string | false | undefined } {
  checkKeys(object, at, DELIVERY_KEYS, problems);
  const reader = new DeliveryReader(object, at, problems);
  const d = DEFAULT_DELIVERY;
  const policy: DeliveryPolicy = {
    mode: reader.read('mode', d.mode, '"retry" or "fail_fast"', isDeliveryMode),
    maxAttempts: reader.integer('max_attempts', d.maxAttempts, 1, Number.MAX_SAFE_INTEGER, 'an integer >= 1'),
    maxRetryDurationMs: reader.seconds('max_retry_duration', d.maxRetryDurationMs, true),
    minBackoffMs: reader.seconds('min_backoff', d.minBackoffMs),
    maxBackoffMs: reader.seconds('max_backoff', d.maxBackoffMs),
    maxDoublings: reader.integer('max_doublings', d.maxDoublings, 0, MAX_DOUBLINGS, `an integer from 0 to ${MAX_DOUBLINGS}`),
    retryOnStatus: readRetryOnStatus(reader, d.retryOnStatus),
    breakerThreshold: reader.integer('breaker_threshold', d.breakerThreshold, 0, Number.MAX_SAFE_INTEGER, 'an integer >= 0 (0 = the breaker never opens)'),
    breakerCooloffMs: reader.seconds('breaker_cooloff', d.breakerCooloffMs),
    breakerMaxCooloffMs: reader.seconds('breaker_max_cooloff', d.breakerMaxCooloffMs),
    healthUrl: readHealthUrl(reader),
    deadLetterFile: null,
  };
  const deadLetterFile = readDeadLetterFile(reader, configDir);
  // Cross-field limits, checked only between values that are valid on their own (a bad value was
  // already reported and replaced by its default, which must not produce a second, confusing line).
  const pairs = [
    ['min_backoff', policy.minBackoffMs, 'max_backoff', policy.maxBackoffMs],
    ['breaker_cooloff', policy.breakerCooloffMs, 'breaker_max_cooloff', policy.breakerMaxCooloffMs],
  ] as const;
  for (const [lowKey, lowMs, highKey, highMs] of pairs) {
    if (!reader.isValid(lowKey) || !reader.isValid(highKey) || highMs >= lowMs) continue;
    // The line names the key the file set; when only the lower bound was set, it is the one to fix.
    if (reader.has(highKey)) reader.expected(highKey, `at least ${describeSeconds(reader, lowKey, lowMs)}`, reader.value(highKey));
    else reader.expected(lowKey, `at most ${describeSeconds(reader, highKey, highMs)}`, reader.value(lowKey));
  }
  return { policy, deadLetterFile };
}

/**
 * Reads a pool object's keep_alive, max_workload_bytes, max_response_bytes and delivery keys. `at` is
 * the pool's JSON path; a relative dead_letter_file is resolved against `configDir`, the jobs config file's folder, so the
 * same file means the same path whatever directory the daemon was started from. `defaultDeadLetterFile`
 * is the pool's file under --dead_letter_dir (null: no default, as in tests that load configs alone).
 */
export function readPoolDelivery(
  pool: Record<string, unknown>,
  at: string,
  configDir: string,
  problems: Problems,
  defaultDeadLetterFile: string | null = null,
): PoolDeliverySettings {
  const defaults = defaultPoolExtensions();
  const keepAlive = readKeepAlive(pool.keep_alive, childPath(at, 'keep_alive'), defaults.keepAlive, problems);
  const maxWorkloadBytes = readMaxWorkloadBytes(pool.max_workload_bytes, childPath(at, 'max_workload_bytes'), defaults.maxWorkloadBytes, problems);
  const maxResponseBytes = readMaxResponseBytes(pool.max_response_bytes, childPath(at, 'max_response_bytes'), defaults.maxResponseBytes, problems);
  const deliveryAt = childPath(at, 'delivery');
  let delivery = defaults.delivery;
  let deadLetterFile: string | false | undefined;
  if (Object.hasOwn(pool, 'delivery')) {
    if (isPlainObject(pool.delivery)) ({ policy: delivery, deadLetterFile } = readDeliveryObject(pool.delivery, deliveryAt, configDir, problems));
    else problems.expected(deliveryAt, 'an object of delivery settings', pool.delivery);
  }
  delivery.deadLetterFile = resolveDeadLetterFile(deadLetterFile, delivery.mode, defaultDeadLetterFile, at, problems);
  return { keepAlive, maxWorkloadBytes, maxResponseBytes, delivery };
}

/** JSON path of a pool's dead_letter_file, as problem lines name it. */
export function deadLetterPath(poolAt: string): string {
  return childPath(childPath(poolAt, 'delivery'), 'dead_letter_file');
}

/**
 * Each pool child appends to its own dead-letter file without coordinating with the others, so two
 * pools on one file would interleave partial lines; the jobs config itself must never be appended to.
 * `pools` pairs each valid pool with its JSON path and its default file (to say when a file is that).
 */
export function checkDeadLetterFiles(
  pools: ReadonlyArray<{ at: string; pool: PoolConfig; defaultFile: string | null }>,
  configFile: string,
  problems: Problems,
): void {
  const owners = new Map<string, string>();
  for (const { at, pool, defaultFile } of pools) {
    const file = pool.delivery.deadLetterFile;
    if (file === null) continue;
    const here = deadLetterPath(at);
    const which = file === defaultFile ? ' (its default file under --dead_letter_dir)' : '';
    if (file === configFile) {
      problems.add(here, `${file}${which} is the jobs config file itself; choose another file`);
      continue;
    }
    const owner = owners.get(file);
    if (owner !== undefined) problems.add(here, `${file}${which} is already the dead-letter file of ${owner}; every pool needs its own file`);
    else owners.set(file, here);
  }
}
