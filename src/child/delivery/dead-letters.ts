/**
 * Dead letters: a background job that failed for good (a permanent failure, or its retries exhausted)
 * is appended to its pool's dead-letter file BEFORE its WORK_FAIL goes to gearmand, so that an
 * operator can re-submit it later with `driveshaft replay`. gearmand forgets a failed background job,
 * so the line in this file is the only copy left: a write only counts once it is on disk (fsync).
 *
 * Format: JSON lines, one letter per line, snake_case keys (DeadLetterRecord). The workload is base64
 * of its exact bytes; the unique is text, plus `unique_base64` when its bytes are not valid UTF-8 (a
 * text field alone could not give them back).
 *
 * Writes are serialized through one queue per file, so lines from concurrent slots never interleave.
 * Letters that queue up while a write+fsync is in flight go out together in the next one: one writev
 * and one fsync for the whole batch (at most MAX_BATCH_LETTERS letters or MAX_BATCH_BYTES bytes).
 *
 * The file is opened lazily on the first write (O_APPEND|O_CREAT, mode 0600); nothing else is created,
 * so a missing directory is an error. reopen() (USR2, after logrotate moved the file) closes the file
 * once the letters queued before it are written; the next write opens the path again.
 */
import { isUtf8 } from 'node:buffer';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DeadLetterError, ErrorCode } from '../../errors.js';

/** A job to dead-letter: the Job's own fields (Buffers as gearmand sent them) plus why it died. */
export interface DeadLetter {
  pool: string;
  functionName: string;
  handle: Buffer;
  unique: Buffer;
  workload: Buffer;
  /** Label of the gearmand the job came from. */
  server: string;
  /** POSTs made for this job before giving up. */
  attempts: number;
  /** The last failure, as logged. */
  reason: string;
  /** When the job was given up; default: when write() is called. */
  time?: Date;
}

/** One line of a dead-letter file. */
export interface DeadLetterRecord {
  /** ISO 8601, UTC. */
  time: string;
  pool: string;
  function: string;
  handle: string;
  /** The unique as UTF-8 text (with U+FFFD for bytes that are not UTF-8; see unique_base64). */
  unique: string;
  /** Present only when the unique's bytes are not valid UTF-8: base64 of the exact bytes. */
  unique_base64?: string;
  /** base64 of the workload's exact bytes. */
  workload: string;
  attempts: number;
  reason: string;
  server: string;
}

/** Letters written in one writev + fsync at most. */
const MAX_BATCH_LETTERS = 512;
/** Bytes written in one writev + fsync at most (a single bigger letter still goes alone). */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
const NEWLINE = Buffer.from('\n');
const OPEN_FLAGS = constants.O_APPEND | constants.O_CREAT;
const FILE_MODE = 0o600;

/** The JSON line (newline included) for one letter. */
export function encodeDeadLetter(letter: DeadLetter): Buffer {
  const record: DeadLetterRecord = {
    time: (letter.time ?? new Date()).toISOString(),
    pool: letter.pool,
    function: letter.functionName,
    // gearmand's handles are ASCII ("H:host:42"); latin1 keeps any other byte visible and one-to-one.
    handle: letter.handle.toString('latin1'),
    unique: letter.unique.toString('utf8'),
    workload: letter.workload.toString('base64'),
    attempts: letter.attempts,
    reason: letter.reason,
    server: letter.server,
  };
  if (!isUtf8(letter.unique)) record.unique_base64 = letter.unique.toString('base64');
  return Buffer.from(`${JSON.stringify(record)}\n`);
}

export interface DeadLetterStats {
  /** Letters written and synced. */
  letters: number;
  /** writev + fsync rounds that succeeded (fewer than letters when letters queued up together). */
  batches: number;
  /** Times the file was opened. */
  opens: number;
}

type Op =
  | { kind: 'letter'; line: Buffer; resolve: () => void; reject: (error: Error) => void }
  | { kind: 'close'; resolve: () => void };

/** Every DeadLetterFile not yet closed, for reopenDeadLetterFiles (USR2 arrives for the whole process). */
const openFiles = new Set<DeadLetterFile>();

export class DeadLetterFile {
  readonly path: string;
  readonly #ops: Op[] = [];
  readonly #stats: DeadLetterStats = { letters: 0, batches: 0, opens: 0 };
  #handle: FileHandle | null = null;
  #running = false;
  #closing: Promise<void> | null = null;
  /**
   * The file may end in the middle of a line (a write failed part-way, or another process died
   * mid-write): the next batch starts with a newline, so the fragment is one bad line that replay
   * reports and skips, and the letters after it still parse. An empty line costs nothing.
   */
  #unterminated = false;

  constructor(file: string) {
    if (!path.isAbsolute(file)) throw new DeadLetterError(file, 'expected an absolute path');
    this.path = file;
    openFiles.add(this);
  }

  get stats(): Readonly<DeadLetterStats> {
    return { ...this.#stats };
  }

  /**
   * Appends one letter and resolves once it is written and fsynced. Rejects with a DeadLetterError
   * (code DS_DEAD_LETTER, `osCode` ENOSPC, EACCES, ENOENT…) naming the path and the reason; the job
   * must then not be failed, since nothing holds it any more.
   */
  write(letter: DeadLetter): Promise<void> {
    if (this.#closing !== null) return Promise.reject(new DeadLetterError(this.path, 'cannot write: the file is closed'));
    let line: Buffer;
    try {
      line = encodeDeadLetter(letter);
    } catch (error) {
      // Only a workload too large for one JS string gets here.
      return Promise.reject(new DeadLetterError(this.path, `cannot encode the letter: ${(error as Error).message}`, { cause: error }));
    }
    return new Promise<void>((resolve, reject) => {
      this.#ops.push({ kind: 'letter', line, resolve, reject });
      this.#run();
    });
  }

  /** Closes the file once the letters queued before this call are written; the next write opens the path again. */
  reopen(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    return this.#enqueueClose();
  }

  /** Writes what is queued, closes the file and refuses further writes. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === null) {
      openFiles.delete(this);
      this.#closing = this.#enqueueClose();
    }
    return this.#closing;
  }

  #enqueueClose(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#ops.push({ kind: 'close', resolve });
      this.#run();
    });
  }

  #run(): void {
    if (this.#running) return;
    this.#running = true;
    // Nothing in #drain throws: write failures reject their letters, close failures are ignored.
    void this.#drain();
  }

  async #drain(): Promise<void> {
    for (;;) {
      if (this.#ops.length === 0) {
        // In the same tick as this last look at the queue, not after an await: a caller resuming from
        // the last resolve() may queue a letter before a promise-based cleanup would run.
        this.#running = false;
        return;
      }
      const head = this.#ops[0] as Op;
      if (head.kind === 'close') {
        this.#ops.shift();
        await this.#closeHandle();
        head.resolve();
        continue;
      }
      const batch = this.#takeBatch();
      try {
        await this.#append(batch.map((op) => op.line));
      } catch (error) {
        const failure = this.#failure(error);
        // A file that failed once is opened afresh next time (it may have been replaced or fixed).
        await this.#closeHandle();
        for (const op of batch) op.reject(failure);
        continue;
      }
      this.#stats.letters += batch.length;
      this.#stats.batches++;
      for (const op of batch) op.resolve();
    }
  }

  /** The letters at the head of the queue, up to the batch limits (always at least one). */
  #takeBatch(): Array<Extract<Op, { kind: 'letter' }>> {
    const batch: Array<Extract<Op, { kind: 'letter' }>> = [];
    let bytes = 0;
    while (this.#ops.length > 0 && batch.length < MAX_BATCH_LETTERS) {
      const next = this.#ops[0] as Op;
      if (next.kind !== 'letter') break;
      if (batch.length > 0 && bytes + next.line.length > MAX_BATCH_BYTES) break;
      this.#ops.shift();
      batch.push(next);
      bytes += next.line.length;
    }
    return batch;
  }

  async #append(lines: Buffer[]): Promise<void> {
    const handle = this.#handle ?? (await this.#open());
    const buffers = this.#unterminated ? [NEWLINE, ...lines] : lines;
    try {
      await writeAll(handle, buffers);
    } catch (error) {
      this.#unterminated = true;
      throw new WriteFailure('write', error);
    }
    this.#unterminated = false;
    try {
      await handle.sync();
    } catch (error) {
      throw new WriteFailure('fsync', error);
    }
  }

  async #open(): Promise<FileHandle> {
    let handle: FileHandle;
    try {
      // Read access only to look at the last byte; a file the operator made write-only still works.
      handle = await open(this.path, OPEN_FLAGS | constants.O_RDWR, FILE_MODE).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EACCES') throw error;
        return open(this.path, OPEN_FLAGS | constants.O_WRONLY, FILE_MODE);
      });
    } catch (error) {
      throw new WriteFailure('open', error);
    }
    this.#stats.opens++;
    try {
      const { size } = await handle.stat();
      if (size === 0) {
        // Probably created just now: its directory entry must reach the disk too, or a crash could
        // lose the whole file along with the letters fsynced into it.
        await syncDirectory(path.dirname(this.path));
      } else if (!this.#unterminated) {
        this.#unterminated = await endsMidLine(handle, size);
      }
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw new WriteFailure('open', error);
    }
    this.#handle = handle;
    return handle;
  }

  async #closeHandle(): Promise<void> {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    // Everything written was fsynced already: a failing close() loses nothing.
    await handle.close().catch(() => undefined);
  }

  #failure(error: unknown): DeadLetterError {
    if (error instanceof WriteFailure) {
      const cause = error.cause as NodeJS.ErrnoException;
      const osCode = typeof cause?.code === 'string' ? cause.code : null;
      return new DeadLetterError(this.path, `cannot ${error.step}: ${cause?.message ?? String(cause)}`, { cause, osCode });
    }
    return new DeadLetterError(this.path, `cannot write: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
}

/** Which step failed, to name it in the DeadLetterError; never leaves this module. */
class WriteFailure extends Error {
  readonly code = ErrorCode.DEAD_LETTER;
  readonly step: string;
  constructor(step: string, cause: unknown) {
    super(step, { cause });
    this.step = step;
  }
}

/** writev until every byte is written: a regular file may take fewer bytes than asked (a full disk). */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending);
    let skip = bytesWritten;
    let index = 0;
    while (index < pending.length && skip >= (pending[index] as Buffer).length) skip -= (pending[index++] as Buffer).length;
    pending = pending.slice(index);
    if (skip > 0) pending[0] = (pending[0] as Buffer).subarray(skip);
    else if (bytesWritten === 0 && pending.length > 0) throw Object.assign(new Error('ENOSPC: write took no bytes'), { code: 'ENOSPC' });
  }
}

/** Whether the file's last byte is not a newline. A write-only file cannot be read: assume a whole line. */
async function endsMidLine(handle: FileHandle, size: number): Promise<boolean> {
  const last = Buffer.alloc(1);
  try {
    const { bytesRead } = await handle.read(last, 0, 1, size - 1);
    return bytesRead === 1 && last[0] !== 0x0a;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EBADF') return false;
    throw error;
  }
}

async function syncDirectory(directory: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(directory, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch {
    // A directory we may write into but not read (mode 0300) cannot be opened for fsync; the file's
    // own data is still fsynced, so this is not worth refusing the letter for.
    return;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Closes every open dead-letter file of this process after its pending writes (USR2: logrotate moved
 * them away); each reopens its path on its next write. Resolves with their paths.
 */
export async function reopenDeadLetterFiles(): Promise<string[]> {
  const files = [...openFiles];
  await Promise.all(files.map((file) => file.reopen()));
  return files.map((file) => file.path);
}
