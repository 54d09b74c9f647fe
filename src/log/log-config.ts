/**
 * The --logconfig file (docs/observability.md, Logs): which streams the master writes, at which levels. Reading and
 * validating it needs no bunyan, so `--check` and the tests use it alone; bunyan-logger.ts turns the
 * result into streams.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { isLevelName, LEVEL_NAMES, type LevelName } from './logger.js';

export interface LogStreamConfig {
  type: 'stdout' | 'stderr' | 'file' | 'rotating-file';
  level?: LevelName;
  path?: string;
  period?: string;
  count?: number;
}

export interface LogConfig {
  name: string;
  level: LevelName;
  streams: LogStreamConfig[];
}

export const DEFAULT_LOG_CONFIG: LogConfig = { name: 'driveshaft', level: 'info', streams: [{ type: 'stdout' }] };

const STREAM_KEYS: Record<LogStreamConfig['type'], readonly string[]> = {
  stdout: ['type', 'level'],
  stderr: ['type', 'level'],
  file: ['type', 'level', 'path'],
  'rotating-file': ['type', 'level', 'path', 'period', 'count'],
};

/**
 * Reads and validates a --logconfig file. Relative stream paths are resolved against the config file's
 * folder, so the result does not depend on the working directory (which --daemonize changes).
 */
export function loadLogConfig(file: string): LogConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`${file}: cannot read log config: ${(error as Error).message}`], { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([`${file}: log config is not valid JSON: ${(error as Error).message}`], { cause: error });
  }
  return validateLogConfig(raw, file);
}

export function validateLogConfig(raw: unknown, file: string): LogConfig {
  const problems: string[] = [];
  const at = (where: string, expected: string): void => {
    problems.push(`${file}: ${where}: expected ${expected}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError([`${file}: (root): expected an object with "name", "level" and "streams"`]);
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!['name', 'level', 'streams'].includes(key)) at(key, 'no such key (allowed: name, level, streams)');
  }
  const name = obj.name ?? 'driveshaft';
  if (typeof name !== 'string' || name === '') at('name', 'a non-empty string');
  const level = obj.level ?? 'info';
  if (!isLevelName(level)) at('level', `one of ${LEVEL_NAMES.join(', ')}`);
  const streams: LogStreamConfig[] = [];
  const rawStreams = obj.streams ?? [{ type: 'stdout' }];
  if (!Array.isArray(rawStreams) || rawStreams.length === 0) {
    at('streams', 'a non-empty array of streams');
  } else {
    rawStreams.forEach((s: unknown, i: number) => {
      const where = `streams[${i}]`;
      if (typeof s !== 'object' || s === null || Array.isArray(s)) return at(where, 'an object');
      const stream = s as Record<string, unknown>;
      const type = stream.type;
      if (typeof type !== 'string' || !(type in STREAM_KEYS)) {
        return at(`${where}.type`, 'one of stdout, stderr, file, rotating-file');
      }
      const allowed = STREAM_KEYS[type as LogStreamConfig['type']];
      for (const key of Object.keys(stream)) {
        if (!allowed.includes(key)) at(`${where}.${key}`, `no such key for a ${type} stream (allowed: ${allowed.join(', ')})`);
      }
      if (stream.level !== undefined && !isLevelName(stream.level)) at(`${where}.level`, `one of ${LEVEL_NAMES.join(', ')}`);
      const out: LogStreamConfig = { type: type as LogStreamConfig['type'] };
      if (stream.level !== undefined && isLevelName(stream.level)) out.level = stream.level;
      if (type === 'file' || type === 'rotating-file') {
        if (typeof stream.path !== 'string' || stream.path === '') at(`${where}.path`, 'a file path');
        else out.path = path.resolve(path.dirname(file), stream.path);
      }
      if (type === 'rotating-file') {
        if (stream.period !== undefined) {
          if (typeof stream.period !== 'string' || !/^\d+[hdwmy]$/.test(stream.period)) {
            at(`${where}.period`, 'a period like "1d", "12h", "1w" (h, d, w, m, y)');
          } else out.period = stream.period;
        }
        if (stream.count !== undefined) {
          if (!Number.isInteger(stream.count) || (stream.count as number) < 1) at(`${where}.count`, 'an integer >= 1');
          else out.count = stream.count as number;
        }
      }
      streams.push(out);
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { name: name as string, level: level as LevelName, streams };
}
