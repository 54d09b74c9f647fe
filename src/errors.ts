/**
 * One error hierarchy for the whole daemon. Every error carries a `code` from ErrorCode; code that
 * handles errors branches on `code`, never on `instanceof` (codes survive IPC, classes do not).
 */
export const ErrorCode = {
  /** A Gearman packet that breaks the framing rules (bad magic, oversize, wrong arity, long handle). */
  PROTOCOL: 'DS_PROTOCOL',
  /** A gearmand admin text reply that cannot be parsed. */
  ADMIN_REPLY: 'DS_ADMIN_REPLY',
  /** The daemon's own command-line options are invalid. */
  OPTIONS: 'DS_OPTIONS',
  /** The jobs config (or log config) file is missing, unreadable, not JSON or invalid. */
  CONFIG: 'DS_CONFIG',
  /** The config would need more file descriptors than the process may open. */
  FD_BUDGET: 'DS_FD_BUDGET',
  /** A connection to gearmand failed or was lost. */
  GEARMAN_CONNECTION: 'DS_GEARMAN_CONNECTION',
  /** gearmand answered with an ERROR packet. */
  GEARMAN_SERVER: 'DS_GEARMAN_SERVER',
  /** The HTTP endpoint could not be reached or the request failed on the wire. */
  HTTP_REQUEST: 'DS_HTTP_REQUEST',
  /** The HTTP endpoint answered, but not with a valid success or failure response. */
  HTTP_RESPONSE: 'DS_HTTP_RESPONSE',
  /** A job ran past its max_running_time. */
  JOB_TIMEOUT: 'DS_JOB_TIMEOUT',
  /** An IPC request got no reply in time, or the channel is closed. */
  IPC: 'DS_IPC',
  /** The pid file names a live process, or cannot be written. */
  PID_FILE: 'DS_PID_FILE',
  /** Dropping privileges (--user) failed. */
  USER: 'DS_USER',
  /** The daemon is shutting down and refuses new work. */
  SHUTTING_DOWN: 'DS_SHUTTING_DOWN',
  /** A dead letter could not be written (and synced) to the pool's dead-letter file. */
  DEAD_LETTER: 'DS_DEAD_LETTER',
  /** The status port or the exporter could not bind its address. */
  LISTEN: 'DS_LISTEN',
  /** Code called against its own contract (an argument out of range, a method in the wrong state): a bug, never bad input. */
  INTERNAL: 'DS_INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface DriveshaftErrorOptions {
  cause?: unknown;
}

export class DriveshaftError extends Error {
  override name = 'DriveshaftError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options: DriveshaftErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  /** The shape sent across IPC: classes do not survive structured clone, codes do. */
  toJSON(): SerializedError {
    return { name: this.name, code: this.code, message: this.message };
  }
}

export interface SerializedError {
  name: string;
  code: string;
  message: string;
}

/** The lines an error stands for in a report: a ConfigError's own problem lines, otherwise its message. */
export function problemLines(error: unknown): string[] {
  const problems = (error as { problems?: unknown }).problems;
  if (Array.isArray(problems) && problems.length > 0 && problems.every((p) => typeof p === 'string')) return problems as string[];
  return [serializeError(error).message];
}

/** The code of a serialized error that had none (a foreign error, a thrown string): not one of ErrorCode. */
const UNKNOWN_CODE = 'UNKNOWN';

export function serializeError(error: unknown): SerializedError {
  if (error instanceof DriveshaftError) return error.toJSON();
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, code: typeof code === 'string' ? code : UNKNOWN_CODE, message: error.message };
  }
  return { name: 'Error', code: UNKNOWN_CODE, message: String(error) };
}

export class ProtocolError extends DriveshaftError {
  override name = 'ProtocolError';
  /** Offset of the offending packet in the parser's input stream. */
  readonly offset: number;
  /** Packet type from the header, or -1 when the header itself was bad. */
  readonly packetType: number;
  /** Up to 32 bytes of the offending input, as hex. */
  readonly preview: string;

  constructor(message: string, details: { offset: number; packetType: number; preview: string }) {
    super(ErrorCode.PROTOCOL, `${message} (offset ${details.offset}, type ${details.packetType}, bytes ${details.preview})`);
    this.offset = details.offset;
    this.packetType = details.packetType;
    this.preview = details.preview;
  }
}

export class AdminReplyError extends DriveshaftError {
  override name = 'AdminReplyError';
  constructor(message: string) {
    super(ErrorCode.ADMIN_REPLY, message);
  }
}

export class OptionsError extends DriveshaftError {
  override name = 'OptionsError';
  constructor(message: string) {
    super(ErrorCode.OPTIONS, message);
  }
}

export class ConfigError extends DriveshaftError {
  override name = 'ConfigError';
  /** Every problem found, each a full line naming the file, the JSON path and what was expected. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[], options: DriveshaftErrorOptions = {}) {
    super(ErrorCode.CONFIG, problems.join('; '), options);
    this.problems = problems;
  }
}

export class FdBudgetError extends DriveshaftError {
  override name = 'FdBudgetError';
  constructor(message: string) {
    super(ErrorCode.FD_BUDGET, message);
  }
}

export class GearmanConnectionError extends DriveshaftError {
  override name = 'GearmanConnectionError';
  constructor(message: string, options: DriveshaftErrorOptions = {}) {
    super(ErrorCode.GEARMAN_CONNECTION, message, options);
  }
}

export class GearmanServerError extends DriveshaftError {
  override name = 'GearmanServerError';
  constructor(message: string) {
    super(ErrorCode.GEARMAN_SERVER, message);
  }
}

export class HttpRequestError extends DriveshaftError {
  override name = 'HttpRequestError';
  constructor(message: string, options: DriveshaftErrorOptions = {}) {
    super(ErrorCode.HTTP_REQUEST, message, options);
  }
}

export class HttpResponseError extends DriveshaftError {
  override name = 'HttpResponseError';
  constructor(message: string) {
    super(ErrorCode.HTTP_RESPONSE, message);
  }
}

export class JobTimeoutError extends DriveshaftError {
  override name = 'JobTimeoutError';
  constructor(message: string) {
    super(ErrorCode.JOB_TIMEOUT, message);
  }
}

export class IpcError extends DriveshaftError {
  override name = 'IpcError';
  constructor(message: string) {
    super(ErrorCode.IPC, message);
  }
}

export class PidFileError extends DriveshaftError {
  override name = 'PidFileError';
  constructor(message: string, options: DriveshaftErrorOptions = {}) {
    super(ErrorCode.PID_FILE, message, options);
  }
}

export class UserError extends DriveshaftError {
  override name = 'UserError';
  constructor(message: string, options: DriveshaftErrorOptions = {}) {
    super(ErrorCode.USER, message, options);
  }
}

export class ShuttingDownError extends DriveshaftError {
  override name = 'ShuttingDownError';
  constructor(message: string) {
    super(ErrorCode.SHUTTING_DOWN, message);
  }
}

export class DeadLetterError extends DriveshaftError {
  override name = 'DeadLetterError';
  /** The dead-letter file. */
  readonly path: string;
  /** The operating system's code (ENOSPC, EACCES, ENOENT…), or null when the file was closed. */
  readonly osCode: string | null;
  constructor(path: string, message: string, options: DriveshaftErrorOptions & { osCode?: string | null } = {}) {
    super(ErrorCode.DEAD_LETTER, `dead-letter file ${path}: ${message}`, options);
    this.path = path;
    this.osCode = options.osCode ?? null;
  }
}

export class ListenError extends DriveshaftError {
  override name = 'ListenError';
  /** The operating system's code (EADDRINUSE, EACCES, EADDRNOTAVAIL…), or null. */
  readonly osCode: string | null;
  constructor(message: string, options: DriveshaftErrorOptions & { osCode?: string | null } = {}) {
    super(ErrorCode.LISTEN, message, options);
    this.osCode = options.osCode ?? null;
  }
}

/**
 * A caller broke a function's contract: an argument no valid input can produce (a NUL inside a Gearman
 * argument, a size past the 32-bit field, a malformed metric name) or a method called in the wrong
 * state. Input from users and peers is checked before it gets this far; this names the bug.
 */
export class InternalError extends DriveshaftError {
  override name = 'InternalError';
  constructor(message: string) {
    super(ErrorCode.INTERNAL, message);
  }
}
