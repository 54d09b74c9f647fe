/**
 * --check (SPEC §1, like `nginx -t`): validates what a start would validate and reports every problem,
 * without opening a port, a pid file or a log file. Options were already validated by
 * parseCommandLine; this covers the files and the descriptor budget.
 */
import { serializeError, ErrorCode } from '../errors.js';
import { loadLogConfig } from '../log.js';
import { checkFdBudget, largestFdNeed, openFileLimit } from './fd-budget.js';
import { loadJobsConfig } from './jobs-config.js';
import { secondsToMs } from './seconds.js';
import type { DaemonOptions, JobsConfig } from './types.js';

export interface CheckResult {
  ok: boolean;
  lines: string[];
}

/** The problem lines an error stands for: a ConfigError's own lines, otherwise its message. */
function problemLines(error: unknown): string[] {
  const problems = (error as { problems?: unknown }).problems;
  if (serializeError(error).code === ErrorCode.CONFIG && Array.isArray(problems)) return problems as string[];
  return [serializeError(error).message];
}

function summary(config: JobsConfig): string {
  const pools = Object.values(config.pools);
  const slots = pools.reduce((sum, pool) => sum + pool.workerCount, 0);
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `jobs config ${config.path} OK: ${plural(pools.length, 'pool')}, ${plural(slots, 'slot')}, ${plural(config.servers.length, 'server')}`;
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
  try {
    checkFdBudget(config, limit);
  } catch (error) {
    lines.push(...problemLines(error));
    return false;
  }
  const limitText = Number.isFinite(limit) ? String(limit) : 'unlimited';
  lines.push(`file descriptors OK: at most ${largestFdNeed(config)} per process, limit ${limitText}`);
  return true;
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

/** Checks both config files and the descriptor budget; every problem becomes a line. */
export function runCheck(options: DaemonOptions, limit: number = openFileLimit()): CheckResult {
  const lines: string[] = [];
  // Both files are checked even when the first fails, so one run shows everything to fix.
  const jobsOk = checkJobsConfig(options, limit, lines);
  const logOk = checkLogConfig(options, lines);
  return { ok: jobsOk && logOk, lines };
}
