/**
 * The master's logger (docs/observability.md, Logs). The master owns every log stream; children forward their records
 * over IPC (forwarding-logger.ts) so that one process writes each file (rotating-file streams break
 * when two processes rotate one file) and USR2 reopens everything in one place.
 *
 * This is the one module that loads bunyan and the one that reaches into its internals (a logger's
 * stream entries, its record emitter): a child must never import it, and code that only logs takes
 * its Logger type from logger.ts.
 */
import { closeSync, createWriteStream, fchmodSync, openSync, type WriteStream } from 'node:fs';
import { createRequire, Module } from 'node:module';
import type Bunyan from 'bunyan';
import { redactUris } from '../config/redact.js';
import type { LogConfig, LogStreamConfig } from './log-config.js';
import { DEFAULT_LOG_CONFIG } from './log-config.js';
import type { LevelName, Logger } from './logger.js';

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

/**
 * Mode of the log files driveshaft creates: owner read-write, group read. Not 0644 (bunyan's default
 * through the umask): a log names the config's paths, pools, endpoints and job uniques, which the jobs
 * config (commonly 0600 or 0640) keeps from other users. Group read stays, as for the secret files: a
 * log group (`adm` on Debian) or the --user's group reads the logs without being root. An existing file
 * keeps its mode; logrotate's `create` copies it to the new file.
 */
export const LOG_FILE_MODE = 0o640;

/** Opens a log file for appending, creating it with LOG_FILE_MODE (also used when USR2 reopens it). */
export function openLogFile(path: string): WriteStream {
  return createWriteStream(path, { flags: 'a', encoding: 'utf8', mode: LOG_FILE_MODE });
}

type EmitRecord = (this: Bunyan, record: Record<string, unknown>, noemit?: boolean) => string | undefined;
const serializeRecord = (bunyan.prototype as unknown as { _emit: EmitRecord })._emit;

/**
 * bunyan's Logger with the redaction rule (src/config/redact.ts) applied to every line it writes, this
 * process's records and those forwarded by the children alike. `_emit` is where bunyan turns a record
 * into its JSON line and writes it to each stream; redacting the line, not the record, covers every
 * field however deep, and child loggers inherit it (bunyan's child() builds `new this.constructor`).
 */
class RedactingLogger extends bunyan {
  _emit(record: Record<string, unknown>, noemit?: boolean): string | undefined {
    // noemit: bunyan only serializes (its own JSON, safe for cycles) and returns the line.
    const line = redactUris(serializeRecord.call(this, record, true) as string);
    if (noemit === true) return line;
    const level = record.level as number;
    // No stream is `raw` (toBunyanStream makes none), so every stream takes the redacted line.
    for (const stream of (this as unknown as { streams: Array<{ level: number; stream: NodeJS.WritableStream }> }).streams) {
      if (stream.level <= level) stream.stream.write(line);
    }
    return line;
  }
}

/**
 * bunyan's rotating-file stream opens its files without a mode: the first one is made here first with
 * LOG_FILE_MODE, and each file a rotation opens gets it before its first write (bunyan emits 'drain'
 * right after opening it; a WriteStream emits 'open' before it writes anything).
 */
function keepRotatedFilesPrivate(logger: Bunyan): void {
  for (const entry of logStreamEntries(logger as unknown as Logger)) {
    if (entry.type !== 'rotating-file') continue;
    const rotating = entry.stream as NodeJS.WritableStream & { stream?: WriteStream };
    rotating.on('drain', () => {
      const file = rotating.stream;
      if (file?.pending !== true) return;
      file.once('open', (fd: number) => {
        try {
          fchmodSync(fd, LOG_FILE_MODE);
        } catch {
          // Not the file's owner (it was there already): its mode is the owner's choice.
        }
      });
    });
  }
}

function toBunyanStream(stream: LogStreamConfig, level: LevelName): Bunyan.Stream {
  const streamLevel = stream.level ?? level;
  switch (stream.type) {
    case 'stdout':
      return { level: streamLevel, stream: process.stdout };
    case 'stderr':
      return { level: streamLevel, stream: process.stderr };
    case 'file':
      return { level: streamLevel, type: 'file', path: stream.path as string, stream: openLogFile(stream.path as string) };
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
  for (const stream of config.streams) {
    if (stream.type === 'rotating-file') closeSync(openSync(stream.path as string, 'a', LOG_FILE_MODE));
  }
  const logger = new RedactingLogger({
    name: config.name,
    level: config.level,
    streams: config.streams.map((s) => toBunyanStream(s, config.level)),
    serializers: { err: bunyan.stdSerializers.err },
  });
  keepRotatedFilesPrivate(logger);
  return logger;
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

/**
 * One of a bunyan logger's stream entries. bunyan has no public API for its streams; each
 * `logger.child(...)` copies the entries it finds, so replacing `stream` in an entry before any child
 * exists redirects the whole tree of loggers.
 */
export interface LogStreamEntry {
  type: string;
  path?: string;
  stream: NodeJS.WritableStream;
}

/** The stream entries of a logger made by createLogger (the live ones, not copies). */
export function logStreamEntries(logger: Logger): LogStreamEntry[] {
  return (logger as unknown as { streams: LogStreamEntry[] }).streams;
}

/** Finishes writing buffered log records (file streams are asynchronous) before the process exits. */
export function flushLogFiles(logger: Logger): Promise<void> {
  const pending: Array<Promise<void>> = [];
  for (const entry of logStreamEntries(logger)) {
    if (entry.type !== 'file' && entry.type !== 'rotating-file') continue;
    pending.push(new Promise((resolve) => entry.stream.end(() => resolve())));
  }
  return Promise.race([Promise.all(pending).then(() => undefined), new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
}
