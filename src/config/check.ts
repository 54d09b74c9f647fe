/**
 * --check (docs/configuration.md, Options; like `nginx -t`): validates what a start would validate and reports every problem,
 * without opening a port, a pid file or a log file. Options were already validated by
 * parseCommandLine; this covers the files, the descriptor budget and the pools' dead-letter folders,
 * and prints each pool's delivery policy so the operator sees what the defaults amount to.
 */
import fs from 'node:fs';
import path from 'node:path';
import { problemLines } from '../errors.js';
import { loadLogConfig } from '../log/log-config.js';
import { checkFdBudget, largestFdNeed, openFileLimit } from './fd-budget.js';
import { deadLetterPath } from './delivery.js';
import { loadJobsConfig } from './jobs-config.js';
import { childPath, displayPath } from './json-source.js';
import { secondsToMs } from './seconds.js';
import { DeliveryMode, SecretKind } from './types.js';
import type { DaemonOptions, JobsConfig, PoolConfig } from './types.js';
import { describeWebConfig, loadWebConfig } from './web-config.js';

export interface CheckResult {
  ok: boolean;
  lines: string[];
}

function summary(config: JobsConfig): string {
  const pools = Object.values(config.pools);
  const slots = pools.reduce((sum, pool) => sum + pool.workerCount, 0);
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `jobs config ${config.path} OK: ${plural(pools.length, 'pool')}, ${plural(slots, 'slot')}, ${plural(config.servers.length, 'server')}`;
}

/** One line per pool: what happens to its jobs when the endpoint fails. */
function deliverySummary(pool: PoolConfig): string {
  const { mode, maxAttempts, breakerThreshold, deadLetterFile } = pool.delivery;
  const policy =
    mode === DeliveryMode.RETRY
      ? `retry, max_attempts ${maxAttempts}, breaker_threshold ${breakerThreshold}${breakerThreshold === 0 ? ' (never opens)' : ''}`
      : 'fail_fast (no retries, no breaker)';
  return `pool ${JSON.stringify(pool.name)}: delivery ${policy}, dead_letter_file ${deadLetterFile ?? 'none'}`;
}

/**
 * One line per pool that signs, authenticates or sets TLS: where each secret was read from (never what
 * it is), then the config's warnings. A secret that could not be read is a problem line of the config
 * itself (and --check fails), so everything listed here was read.
 */
function securitySummary(config: JobsConfig): string[] {
  const lines: string[] = [];
  for (const pool of Object.values(config.pools)) {
    const parts: string[] = [];
    for (const source of pool.secretSources) {
      const where = source.kind === SecretKind.ENV ? `environment variable ${source.name}` : source.name;
      const count = source.key === 'signing_secrets' ? ` (${pool.signingKeys.length} secret${pool.signingKeys.length === 1 ? '' : 's'})` : '';
      parts.push(`${source.key} read from ${where}${count}`);
    }
    const tls = pool.tls;
    if (tls !== null) {
      if (tls.caFile !== null) parts.push(`tls.ca_file ${tls.caFile}`);
      if (tls.certFile !== null) parts.push(`tls.cert_file ${tls.certFile}`);
      if (tls.serverName !== null) parts.push(`tls.server_name ${tls.serverName}`);
    }
    if (parts.length > 0) lines.push(`pool ${JSON.stringify(pool.name)}: ${parts.join(', ')}`);
  }
  for (const warning of config.warnings ?? []) lines.push(`warning: ${warning}`);
  return lines;
}

const ACCESS_REASONS: Record<string, string> = {
  ENOENT: 'does not exist',
  ENOTDIR: 'a parent of it is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
};

function accessReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return ACCESS_REASONS[code] ?? (error as Error).message;
}

/**
 * Why the pool's child could not append to `file`, or null when it can: the folder must exist and be
 * writable (the file is created on first use), and an existing file must be a writable regular file.
 * Checked as the user running --check; with --user the daemon writes as that user instead.
 */
function deadLetterProblem(file: string): string | null {
  const dir = path.dirname(file);
  try {
    if (!fs.statSync(dir).isDirectory()) return `cannot write ${file}: ${dir} is not a directory`;
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    return `cannot write ${file}: directory ${dir}: ${accessReason(error)}`;
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return `cannot write ${file}: ${accessReason(error)}`;
  }
  if (!stat.isFile()) return `cannot write ${file}: it exists and is not a regular file`;
  try {
    fs.accessSync(file, fs.constants.W_OK);
  } catch (error) {
    return `cannot write ${file}: ${accessReason(error)}`;
  }
  return null;
}

/** The delivery line of every pool, and a problem line for each dead-letter file that cannot be written. */
function checkDelivery(config: JobsConfig, lines: string[]): boolean {
  let ok = true;
  for (const pool of Object.values(config.pools)) {
    lines.push(deliverySummary(pool));
    if (pool.delivery.deadLetterFile === null) continue;
    const problem = deadLetterProblem(pool.delivery.deadLetterFile);
    if (problem === null) continue;
    lines.push(`${config.path}: ${displayPath(deadLetterPath(childPath('pools_list', pool.name)))}: ${problem}`);
    ok = false;
  }
  return ok;
}

function checkJobsConfig(options: DaemonOptions, limit: number, lines: string[]): boolean {
  let config: JobsConfig;
  try {
    config = loadJobsConfig(options.jobsconfig, {
      maxRunningTimeMs: secondsToMs(options.max_running_time),
      requestFormat: options.request_format,
    });
  } catch (error) {
    lines.push(...problemLines(error));
    return false;
  }
  lines.push(summary(config));
  let fdOk = true;
  try {
    checkFdBudget(config, limit);
    const limitText = Number.isFinite(limit) ? String(limit) : 'unlimited';
    lines.push(`file descriptors OK: at most ${largestFdNeed(config)} per process, limit ${limitText}`);
  } catch (error) {
    lines.push(...problemLines(error));
    fdOk = false;
  }
  const deliveryOk = checkDelivery(config, lines);
  lines.push(...securitySummary(config));
  return fdOk && deliveryOk;
}

function checkLogConfig(options: DaemonOptions, lines: string[]): boolean {
  if (options.logconfig === null) {
    lines.push('log config: none given, JSON lines to stdout at level info');
    return true;
  }
  try {
    loadLogConfig(options.logconfig);
  } catch (error) {
    lines.push(...problemLines(error));
    return false;
  }
  lines.push(`log config ${options.logconfig} OK`);
  return true;
}

function checkWebConfig(options: DaemonOptions, lines: string[]): boolean {
  if (options.web_config_file === null) return true;
  try {
    const config = loadWebConfig(options.web_config_file);
    lines.push(describeWebConfig(config));
    for (const warning of config.warnings) lines.push(`warning: ${warning}`);
  } catch (error) {
    lines.push(...problemLines(error));
    return false;
  }
  return true;
}

/** Checks every config file and the descriptor budget; every problem becomes a line. */
export function runCheck(options: DaemonOptions, limit: number = openFileLimit()): CheckResult {
  const lines: string[] = [];
  // Every file is checked even when one fails, so one run shows everything to fix.
  const jobsOk = checkJobsConfig(options, limit, lines);
  const logOk = checkLogConfig(options, lines);
  const webOk = checkWebConfig(options, lines);
  return { ok: jobsOk && logOk && webOk, lines };
}
