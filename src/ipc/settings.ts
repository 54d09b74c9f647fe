/**
 * What the master hands a pool child in `init` and `reconfigure`, and the check the child runs on it:
 * the settings crossed a process boundary as JSON, so the child trusts nothing it has not checked.
 */
import type { PoolConfig, ServerAddress } from '../config/types.js';
import { ConfigError } from '../errors.js';

/**
 * What an operator paused in a pool (docs/operations.md, Pause and resume): the whole pool (no slot
 * grabs), and functions its slots do not register. The master keeps it and hands it over with every
 * `init` and `reconfigure`, so a restarted child comes back paused, and sends changes in `set-pause`.
 */
export interface PauseState {
  pool: boolean;
  functions: string[];
}

export function noPause(): PauseState {
  return { pool: false, functions: [] };
}

/** Checks a pause received over IPC; the problems, each naming `where`. */
export function pauseProblems(pause: unknown, where: string): string[] {
  if (typeof pause !== 'object' || pause === null) return [`${where}: expected an object`];
  const p = pause as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof p.pool !== 'boolean') problems.push(`${where}.pool: expected a boolean`);
  if (!Array.isArray(p.functions) || !p.functions.every((f) => typeof f === 'string' && f !== '')) problems.push(`${where}.functions: expected an array of function names`);
  return problems;
}

/** What a child needs to run its pool. */
export interface ChildSettings {
  pool: PoolConfig;
  servers: ServerAddress[];
  /** loop_timeout in milliseconds: liveness probes and backoff caps derive from it. */
  loopTimeoutMs: number;
  /** bunyan level name the child filters at before forwarding records to the master. */
  logLevel: string;
  /**
   * How often the child sends `heartbeat` (absent from older masters: the child derives it from
   * loopTimeoutMs with heartbeatIntervalMs).
   */
  heartbeatIntervalMs?: number;
  /** What an operator paused (absent from older masters: nothing). */
  pause?: PauseState;
}

/** The shortest and longest heartbeat period: often enough to notice a wedged child, rare enough to cost nothing. */
export const MIN_HEARTBEAT_INTERVAL_MS = 250;
export const MAX_HEARTBEAT_INTERVAL_MS = 2500;

/**
 * A child's heartbeat period: a quarter of loop_timeout, and at most a quarter of the time after which
 * the master calls a silent child unresponsive (so one late beat is not yet a verdict), within 250 ms–2.5 s.
 */
export function heartbeatIntervalMs(loopTimeoutMs: number, unresponsiveAfterMs: number = Infinity): number {
  const wanted = Math.min(loopTimeoutMs / 4, unresponsiveAfterMs / 4);
  return Math.round(Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.max(MIN_HEARTBEAT_INTERVAL_MS, wanted)));
}

/** Checks the shape of settings received over IPC; throws ConfigError naming every bad field. */
export function validateSettings(settings: unknown): ChildSettings {
  const problems: string[] = [];
  const bad = (where: string, expected: string): void => {
    problems.push(`settings.${where}: expected ${expected}`);
  };
  if (typeof settings !== 'object' || settings === null) throw new ConfigError(['settings: expected an object']);
  const s = settings as Record<string, unknown>;
  const pool = s.pool as Record<string, unknown> | undefined;
  if (typeof pool !== 'object' || pool === null) {
    bad('pool', 'an object');
  } else {
    if (typeof pool.name !== 'string' || pool.name === '') bad('pool.name', 'a non-empty string');
    try {
      const url = new URL(String(pool.jobProcessingUri));
      if (url.protocol !== 'http:' && url.protocol !== 'https:') bad('pool.jobProcessingUri', 'an http:// or https:// URL');
    } catch {
      bad('pool.jobProcessingUri', 'an http:// or https:// URL');
    }
    if (!Number.isInteger(pool.workerCount) || (pool.workerCount as number) < 0) bad('pool.workerCount', 'an integer >= 0');
    if (!Array.isArray(pool.jobsList) || !pool.jobsList.every((f) => typeof f === 'string' && f !== '')) {
      bad('pool.jobsList', 'an array of non-empty strings');
    }
    if (pool.requestFormat !== 'json' && pool.requestFormat !== 'multipart') bad('pool.requestFormat', '"json" or "multipart"');
    if (typeof pool.maxRunningTimeMs !== 'number' || !(pool.maxRunningTimeMs > 0)) bad('pool.maxRunningTimeMs', 'a number > 0');
    if (typeof pool.keepAlive !== 'boolean') bad('pool.keepAlive', 'a boolean');
    if (!Number.isSafeInteger(pool.maxWorkloadBytes) || (pool.maxWorkloadBytes as number) < 0) bad('pool.maxWorkloadBytes', 'an integer >= 0');
    if (!Number.isSafeInteger(pool.maxResponseBytes) || (pool.maxResponseBytes as number) < 1) bad('pool.maxResponseBytes', 'an integer >= 1');
    if (pool.traceParentField !== null && (typeof pool.traceParentField !== 'string' || pool.traceParentField === '')) bad('pool.traceParentField', 'a non-empty string or null');
    const delivery = pool.delivery as Record<string, unknown> | undefined;
    if (typeof delivery !== 'object' || delivery === null) {
      bad('pool.delivery', 'an object');
    } else {
      if (delivery.mode !== 'retry' && delivery.mode !== 'fail_fast') bad('pool.delivery.mode', '"retry" or "fail_fast"');
      for (const key of ['maxAttempts', 'maxRetryDurationMs', 'minBackoffMs', 'maxBackoffMs', 'maxDoublings', 'breakerThreshold', 'breakerCooloffMs', 'breakerMaxCooloffMs', 'maxRetryAfterMs'] as const) {
        if (typeof delivery[key] !== 'number' || !((delivery[key] as number) >= 0)) bad(`pool.delivery.${key}`, 'a number >= 0');
      }
      if (!((delivery.maxAttempts as number) >= 1)) bad('pool.delivery.maxAttempts', 'a number >= 1');
      if (!Array.isArray(delivery.retryOnStatus) || !delivery.retryOnStatus.every((code) => Number.isInteger(code))) bad('pool.delivery.retryOnStatus', 'an array of HTTP status codes');
      if (delivery.healthUrl !== null && typeof delivery.healthUrl !== 'string') bad('pool.delivery.healthUrl', 'a URL or null');
      if (delivery.deadLetterFile !== null && typeof delivery.deadLetterFile !== 'string') bad('pool.delivery.deadLetterFile', 'a path or null');
    }
    if (!Array.isArray(pool.signingKeys) || !pool.signingKeys.every((key) => typeof key === 'string' && key !== '')) bad('pool.signingKeys', 'an array of base64 keys');
    if (pool.bearerToken !== null && typeof pool.bearerToken !== 'string') bad('pool.bearerToken', 'a string or null');
    const tls = pool.tls as Record<string, unknown> | null | undefined;
    if (tls !== null && (typeof tls !== 'object' || !['ca', 'cert', 'key', 'serverName'].every((key) => tls[key] === null || typeof tls[key] === 'string'))) {
      bad('pool.tls', 'null or an object of PEM strings and a server name');
    }
    const rateLimit = pool.rateLimit as Record<string, unknown> | null | undefined;
    if (rateLimit !== null && (typeof rateLimit !== 'object' || !(typeof rateLimit.perSecond === 'number' && rateLimit.perSecond > 0 && Number.isFinite(rateLimit.perSecond)) || !(Number.isSafeInteger(rateLimit.burst) && (rateLimit.burst as number) >= 1))) {
      bad('pool.rateLimit', 'null or {perSecond > 0, burst: an integer >= 1}');
    }
    const concurrency = pool.concurrency as Record<string, unknown> | undefined;
    if (typeof concurrency !== 'object' || concurrency === null || (concurrency.mode !== 'fixed' && concurrency.mode !== 'adaptive') || !(Number.isSafeInteger(concurrency.min) && (concurrency.min as number) >= 1)) {
      bad('pool.concurrency', '{mode: "fixed" or "adaptive", min: an integer >= 1}');
    }
    if (
      typeof pool.headers !== 'object' ||
      pool.headers === null ||
      !Object.values(pool.headers as object).every((v) => typeof v === 'string')
    ) {
      bad('pool.headers', 'an object of strings');
    }
  }
  if (
    !Array.isArray(s.servers) ||
    !s.servers.every(
      (server: unknown) =>
        typeof server === 'object' &&
        server !== null &&
        typeof (server as Record<string, unknown>).host === 'string' &&
        Number.isInteger((server as Record<string, unknown>).port) &&
        ((server as Record<string, unknown>).port as number) > 0 &&
        ((server as Record<string, unknown>).port as number) < 65536 &&
        typeof (server as Record<string, unknown>).label === 'string',
    )
  ) {
    bad('servers', 'an array of {host, port, label}');
  }
  if (typeof s.loopTimeoutMs !== 'number' || !(s.loopTimeoutMs > 0)) bad('loopTimeoutMs', 'a number > 0');
  if (typeof s.logLevel !== 'string') bad('logLevel', 'a bunyan level name');
  if (s.heartbeatIntervalMs !== undefined && (typeof s.heartbeatIntervalMs !== 'number' || !(s.heartbeatIntervalMs > 0))) {
    bad('heartbeatIntervalMs', 'a number > 0 or nothing');
  }
  if (s.pause !== undefined) problems.push(...pauseProblems(s.pause, 'settings.pause'));
  if (problems.length > 0) throw new ConfigError(problems);
  return settings as ChildSettings;
}
