/**
 * What the daemon's code logs through, in either process: the Logger interface and bunyan's levels.
 * The master's logger is bunyan (bunyan-logger.ts); a pool child's is the forwarding logger
 * (forwarding-logger.ts), which sends its records to the master over IPC. This module imports nothing,
 * so any module may take its Logger type from here without loading bunyan into a child.
 */

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

/** bunyan's numeric levels: records carry the number, the master's streams filter on it. */
export const LogLevel = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
} as const;
export type LevelName = keyof typeof LogLevel;

/** The level names, lowest first. */
export const LEVEL_NAMES = Object.keys(LogLevel) as LevelName[];

export function isLevelName(value: unknown): value is LevelName {
  return typeof value === 'string' && Object.hasOwn(LogLevel, value);
}

export function levelNumber(name: string, fallback: number = LogLevel.info): number {
  return isLevelName(name) ? LogLevel[name] : fallback;
}
