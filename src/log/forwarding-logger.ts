/**
 * The pool child's logger (the master owns every log stream; children forward their records
 * over IPC). It builds the same records bunyan would (name, hostname, pid, the logger's fields, level,
 * the call's fields with `err` serialized, msg, time, v) and hands each one to `send`; the master
 * writes them with its own bunyan streams (emitForwardedRecord).
 *
 * Why not bunyan here: a child never opens a stream, so bunyan would only be paid for. Loading it
 * costs each child ~2 MiB of heap and ~5 MiB of resident node-binary pages (its `mv` dependency pulls
 * in glob, rimraf, ncp and more for rotating files that children never rotate), and bunyan's
 * child() makes a full EventEmitter-based Logger per slot. This module imports nothing heavy (the
 * child must not import bunyan-logger.ts, which loads bunyan).
 */
import { hostname } from 'node:os';
import { format, inspect } from 'node:util';
import { levelNumber, LogLevel, type Logger } from './logger.js';

/** bunyan's record format version (the `v` field). */
const RECORD_VERSION = 0;

/** What every logger of one child shares; child() copies only its fields. */
interface Core {
  /** name, hostname, pid: the first fields of every record, as bunyan orders them. */
  readonly base: Readonly<Record<string, unknown>>;
  readonly level: number;
  readonly send: (record: Record<string, unknown>) => void;
}

/** The full stack, with VError-style causes (err.cause() a function) appended, as bunyan's err serializer does. */
function fullStack(error: { stack?: unknown; cause?: unknown; toString(): string }): string {
  let text = typeof error.stack === 'string' && error.stack !== '' ? error.stack : error.toString();
  if (typeof error.cause === 'function') {
    const cause: unknown = (error.cause as () => unknown).call(error);
    if (typeof cause === 'object' && cause !== null) text += `\nCaused by: ${fullStack(cause as { toString(): string })}`;
  }
  return text;
}

/**
 * bunyan.stdSerializers.err's output for an error-like value (one with a stack); anything else is
 * passed through unchanged, as bunyan does.
 */
export function serializeErr(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || !(value as { stack?: unknown }).stack) return value;
  const error = value as { message?: unknown; name?: unknown; code?: unknown; signal?: unknown; stack?: unknown; toString(): string };
  return { message: error.message, name: error.name, stack: fullStack(error), code: error.code, signal: error.signal };
}

class ForwardingLogger implements Logger {
  readonly #core: Core;
  /** This logger's own fields (child() fields merged over its parent's). */
  readonly #fields: Readonly<Record<string, unknown>>;

  constructor(core: Core, fields: Readonly<Record<string, unknown>>) {
    this.#core = core;
    this.#fields = fields;
  }

  trace(...args: unknown[]): boolean {
    return this.#log(LogLevel.trace, args);
  }

  debug(...args: unknown[]): boolean {
    return this.#log(LogLevel.debug, args);
  }

  info(...args: unknown[]): boolean {
    return this.#log(LogLevel.info, args);
  }

  warn(...args: unknown[]): boolean {
    return this.#log(LogLevel.warn, args);
  }

  error(...args: unknown[]): boolean {
    return this.#log(LogLevel.error, args);
  }

  fatal(...args: unknown[]): boolean {
    return this.#log(LogLevel.fatal, args);
  }

  /** A logger whose records also carry `fields` (plain fields only: no bunyan options such as streams). */
  child(fields: Record<string, unknown>): Logger {
    return new ForwardingLogger(this.#core, { ...this.#fields, ...fields });
  }

  level(): number {
    return this.#core.level;
  }

  /**
   * bunyan's call forms: `()` → whether the level is enabled; `(err, msg?, …)`; `(fields, msg?, …)`;
   * `(msg, …)` with util.format placeholders.
   */
  #log(level: number, args: unknown[]): boolean {
    const enabled = this.#core.level <= level;
    if (args.length === 0 || !enabled) return enabled;
    const first = args[0];
    let fields: Record<string, unknown> | null = null;
    let msgArgs: unknown[];
    if (first instanceof Error) {
      fields = { err: serializeErr(first) };
      msgArgs = args.length === 1 ? [first.message] : args.slice(1);
    } else if (typeof first !== 'object' || first === null || Array.isArray(first)) {
      msgArgs = args;
    } else if (Buffer.isBuffer(first)) {
      // Almost certainly a mistake; bunyan shows it inspected rather than as fields.
      msgArgs = [inspect(first), ...args.slice(1)];
    } else {
      const given = first as Record<string, unknown>;
      fields = { ...given };
      if ('err' in fields) fields.err = serializeErr(fields.err);
      msgArgs = args.length === 1 && given.err instanceof Error ? [given.err.message] : args.slice(1);
    }
    const record: Record<string, unknown> = { ...this.#core.base, ...this.#fields, level };
    if (fields !== null) Object.assign(record, fields);
    record.msg = format(...msgArgs);
    if (record.time === undefined) record.time = new Date();
    record.v = RECORD_VERSION;
    this.#core.send(record);
    return true;
  }
}

/**
 * A child's logger: records at or above `level` (a bunyan level name; unknown names mean info) go to
 * `send` (the IPC channel). The master re-emits them with emitForwardedRecord.
 */
export function createForwardingLogger(name: string, level: string, send: (record: Record<string, unknown>) => void): Logger {
  const core: Core = { base: { name, hostname: hostname(), pid: process.pid }, level: levelNumber(level), send };
  return new ForwardingLogger(core, {});
}
