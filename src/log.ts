/**
 * Logging (README: Logs). The master owns every log stream; children forward their records over IPC so
 * that one process writes each file (rotating-file streams break when two processes rotate one file)
 * and USR2 reopens everything in one place. The children's logger is src/forwarding-logger.ts, which
 * does not load bunyan; this module is the master's (children import only its types).
 */
import { readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import path from 'node:path';
import type Bunyan from 'bunyan';
import { ConfigError } from './errors.js';
import { LogLevel, type LevelName } from './forwarding-logger.js';

/** One call form of a log method, as bunyan has them: `()` tells whether the level is enabled. */
export interface LogMethod {
  (): boolean;
  (error: Error, ...params: unknown[]): void;
  (fields: object, ...params: unknown[]): void;
  (message: string, ...params: unknown[]): void;
}

/**
 * What the daemon's code may call on a logger: the level methods, child() and level(). A bunyan
 * Logger is one (the master's); so is a child's forwarding logger, which is not bunyan.
 */
export interface Logger {
  trace: LogMethod;
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
  fatal: LogMethod;
  child(fields: Record<string, unknown>): Logger;
  /** The lowest level (a bunyan number) this logger writes. */
  level(): number;
}

const require = createRequire(import.meta.url);

/**
 * bunyan requires its optional `mv` dependency as it loads, only to rename files when a rotating-file
 * stream rotates; with it come glob, rimraf, ncp, mkdirp and minimatch: ~5 MiB of the master's RSS
 * that most configs never use. A stand-in is put in the CommonJS module cache (require.cache, which
 * Node documents as replaceable) before bunyan loads; the real `mv` is loaded by createLogger when a
 * rotating-file stream is configured (before privileges are dropped), or else on its first call.
 * Returns the function that loads the real module now (a no-op when `mv` is not installed).
 */
function deferMv(): () => void {
  let mvPath: string;
  let requireFromBunyan: NodeJS.Require;
  try {
    requireFromBunyan = createRequire(require.resolve('bunyan'));
    mvPath = requireFromBunyan.resolve('mv');
  } catch {
    return () => undefined; // no mv: bunyan refuses rotating-file streams itself, with its own message
  }
  if (require.cache[mvPath] !== undefined) return () => undefined; // already loaded for real
  let real: ((...args: unknown[]) => unknown) | undefined;
  const load = (): ((...args: unknown[]) => unknown) => {
    if (real === undefined) {
      delete require.cache[mvPath];
      real = requireFromBunyan('mv') as (...args: unknown[]) => unknown;
    }
    return real;
  };
  const standIn = new Module(mvPath);
  standIn.filename = mvPath;
  standIn.loaded = true;
  standIn.exports = function mv(...args: unknown[]): unknown {
    return load()(...args);
  };
  require.cache[mvPath] = standIn;
  return () => void load();
}

const loadMv = deferMv();
const bunyan = require('bunyan') as typeof Bunyan;

/** The level names, from the one table of levels (shared with the children's logger). */
const LEVELS = Object.keys(LogLevel) as LevelName[];

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

function isLevel(value: unknown): value is LevelName {
  return typeof value === 'string' && (LEVELS as readonly string[]).includes(value);
}

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
  if (!isLevel(level)) at('level', `one of ${LEVELS.join(', ')}`);
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
      if (stream.level !== undefined && !isLevel(stream.level)) at(`${where}.level`, `one of ${LEVELS.join(', ')}`);
      const out: LogStreamConfig = { type: type as LogStreamConfig['type'] };
      if (stream.level !== undefined && isLevel(stream.level)) out.level = stream.level;
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

function toBunyanStream(stream: LogStreamConfig, level: LevelName): Bunyan.Stream {
  const streamLevel = stream.level ?? level;
  switch (stream.type) {
    case 'stdout':
      return { level: streamLevel, stream: process.stdout };
    case 'stderr':
      return { level: streamLevel, stream: process.stderr };
    case 'file':
      return { level: streamLevel, path: stream.path as string };
    case 'rotating-file':
      return {
        level: streamLevel,
        type: 'rotating-file',
        path: stream.path as string,
        period: stream.period ?? '1d',
        count: stream.count ?? 10,
      };
  }
}

/** The master's logger. File streams are opened here, before any privilege drop. */
export function createLogger(config: LogConfig = DEFAULT_LOG_CONFIG): Logger {
  if (config.streams.some((s) => s.type === 'rotating-file')) loadMv();
  return bunyan.createLogger({
    name: config.name,
    level: config.level,
    streams: config.streams.map((s) => toBunyanStream(s, config.level)),
    serializers: { err: bunyan.stdSerializers.err },
  });
}

/** Writes a record forwarded by a child to the master's streams, honouring each stream's level. */
export function emitForwardedRecord(logger: Logger, record: Record<string, unknown>): void {
  if (typeof record.level !== 'number') return;
  // bunyan has no public API for emitting a pre-built record; _emit is what log.info() calls after
  // building one, and it applies each stream's level filter.
  (logger as unknown as { _emit(rec: Record<string, unknown>): void })._emit(record);
}

/** The lowest level any stream writes: children filter at it so they do not forward what is dropped. */
export function effectiveLevel(logger: Logger): string {
  return bunyan.nameFromLevel[logger.level()] ?? 'info';
}
