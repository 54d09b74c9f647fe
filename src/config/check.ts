/**
 * --check (docs/configuration.md, Options; like `nginx -t`): validates what a start would validate and reports every problem,
 * without opening a port, a pid file or a log file. Options were already validated by
 * parseCommandLine; this covers the files, the descriptor budget and the pools' dead-letter folders
 * (tested as the --user the pool processes run as), and prints each pool's delivery policy and
 * dead-letter file so the operator sees what the defaults amount to.
 */
import fs from 'node:fs';
import path from 'node:path';
import { problemLines, serializeError } from '../errors.js';
import { lookupUser } from '../daemon/drop-privileges.js';
import { fileErrorReason, nearestExisting } from '../daemon/private-folder.js';
import { probeWrites, probeWritesAs, type WriteProbeRequest, type WriteProbeResult } from '../daemon/write-probe.js';
import { loadLogConfig } from '../log/log-config.js';
import { defaultDeadLetterFile } from './dead-letter-location.js';
import { checkFdBudget, largestFdNeed, openFileLimit } from './fd-budget.js';
import { deadLetterPath } from './delivery.js';
import { loadJobsConfig } from './jobs-config.js';
import { childPath, displayPath } from './json-source.js';
import { secondsToMs } from './seconds.js';
import { ConcurrencyMode, DeliveryMode, SecretKind } from './types.js';
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

/** One line per pool: what happens to its jobs when the endpoint fails, and where its dead letters go. */
function deliverySummary(pool: PoolConfig, deadLetterDir: string): string {
  const { mode, maxAttempts, breakerThreshold, deadLetterFile } = pool.delivery;
  const policy =
    mode === DeliveryMode.RETRY
      ? `retry, max_attempts ${maxAttempts}, breaker_threshold ${breakerThreshold}${breakerThreshold === 0 ? ' (never opens)' : ''}`
      : 'fail_fast (no retries, no breaker)';
  const isDefault = deadLetterFile !== null && deadLetterFile === defaultDeadLetterFile(deadLetterDir, pool.name);
  // Flow control only when set: a pool without it reads as it always did.
  const rate = pool.rateLimit === null ? '' : `, rate_limit ${pool.rateLimit.perSecond}/s (burst ${pool.rateLimit.burst})`;
  const concurrency = pool.concurrency.mode === ConcurrencyMode.ADAPTIVE ? `, concurrency adaptive (min ${pool.concurrency.min}, at most worker_count ${pool.workerCount})` : '';
  return `pool ${JSON.stringify(pool.name)}: delivery ${policy}, dead_letter_file ${deadLetterFile ?? 'none'}${isDefault ? ' (the default, under --dead_letter_dir)' : ''}${rate}${concurrency}`;
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

/** Who the children write as: null = whoever runs --check; `probe` runs the tests as them. */
interface WriteIdentity {
  user: string | null;
  probe: (requests: readonly WriteProbeRequest[]) => WriteProbeResult[];
}

/**
 * The identity the pool children will have (--user), or the problem line that stops the daemon from
 * taking it, as runDaemon would refuse it.
 */
function writeIdentity(options: DaemonOptions): WriteIdentity | string {
  if (options.user === null) return { user: null, probe: probeWrites };
  const user = options.user;
  try {
    const target = lookupUser(user);
    const euid = process.geteuid?.();
    if (euid === target.uid) return { user, probe: probeWrites };
    if (euid !== 0) return `--user ${user}: only root can change user (running as uid ${euid})`;
    return { user, probe: (requests) => probeWritesAs(user, requests) };
  } catch (error) {
    return serializeError(error).message;
  }
}

/**
 * Each pool's delivery line, then a problem line for each dead-letter folder or file the pool children
 * could not write, tested as the --user they run as. --dead_letter_dir may be missing: the daemon
 * creates it at startup, which needs its nearest existing parent writable by whoever starts the daemon.
 */
function checkDelivery(config: JobsConfig, options: DaemonOptions, lines: string[]): boolean {
  const pools = Object.values(config.pools);
  for (const pool of pools) lines.push(deliverySummary(pool, options.dead_letter_dir));
  const byFolder = new Map<string, PoolConfig[]>();
  for (const pool of pools) {
    const file = pool.delivery.deadLetterFile;
    if (file === null) continue;
    byFolder.set(path.dirname(file), [...(byFolder.get(path.dirname(file)) ?? []), pool]);
  }
  if (byFolder.size === 0) return true;
  const identity = writeIdentity(options);
  if (typeof identity === 'string') {
    lines.push(identity);
    return false;
  }
  const defaultDir = path.resolve(options.dead_letter_dir);
  const requests = [...byFolder].map(([dir, owners]) => ({
    dir,
    files: owners.map((pool) => pool.delivery.deadLetterFile as string),
    createdAtStartup: dir === defaultDir,
  }));
  let results: WriteProbeResult[];
  try {
    results = identity.probe(requests);
  } catch (error) {
    lines.push(serializeError(error).message);
    return false;
  }
  const as = identity.user === null ? '' : ` as --user ${identity.user}`;
  const fix = (dir: string): string =>
    identity.user === null ? '' : `; make ${dir} writable by ${identity.user} (e.g. chown ${identity.user} ${dir}) or choose another folder`;
  let ok = true;
  for (const result of results) {
    const owners = byFolder.get(result.dir) as PoolConfig[];
    if (result.missing) {
      ok = missingFolderLine(result, identity.user, lines) && ok;
      continue;
    }
    for (const pool of owners) {
      const file = pool.delivery.deadLetterFile as string;
      const problem = result.problem ?? result.fileProblems[file];
      if (problem === undefined) continue;
      const where = file === defaultDeadLetterFile(options.dead_letter_dir, pool.name) ? `--dead_letter_dir ${options.dead_letter_dir}` : `${config.path}: ${displayPath(deadLetterPath(childPath('pools_list', pool.name)))}`;
      lines.push(`${where}: cannot write ${file}${as}: ${problem}${fix(result.dir)}`);
      ok = false;
    }
  }
  return ok;
}

/** Why this process cannot create folders in `parent`, or null. */
function createProblem(parent: string): string | null {
  try {
    fs.accessSync(parent, fs.constants.W_OK | fs.constants.X_OK);
    return null;
  } catch (error) {
    return `${parent}: ${fileErrorReason(error)}`;
  }
}

/** The default folder does not exist yet: fine when the daemon can create it and its user can reach it. */
function missingFolderLine(result: WriteProbeResult, user: string | null, lines: string[]): boolean {
  const parent = nearestExisting(result.dir);
  const creator = parent === null ? `no folder on the way to ${result.dir} exists` : createProblem(parent);
  if (creator !== null) {
    lines.push(`--dead_letter_dir ${result.dir}: does not exist and cannot be created: ${creator}; create it or set --dead_letter_dir`);
    return false;
  }
  if (result.problem !== null) {
    lines.push(`--dead_letter_dir ${result.dir}: does not exist yet, and --user ${user ?? ''} could not reach it once created: ${result.problem} by ${user ?? ''}; set --dead_letter_dir to a folder ${user ?? ''} can reach`);
    return false;
  }
  lines.push(`dead-letter folder ${result.dir} (--dead_letter_dir) does not exist yet: the daemon creates it at startup (mode 0700${user === null ? '' : `, owned by ${user}`})`);
  return true;
}

function checkJobsConfig(options: DaemonOptions, limit: number, lines: string[]): boolean {
  let config: JobsConfig;
  try {
    config = loadJobsConfig(options.jobsconfig, {
      maxRunningTimeMs: secondsToMs(options.max_running_time),
      requestFormat: options.request_format,
      deadLetterDir: options.dead_letter_dir,
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
  const deliveryOk = checkDelivery(config, options, lines);
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
