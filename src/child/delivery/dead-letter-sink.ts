/**
 * The pool's dead-letter file as the delivery uses it: writes, and what a failing file means. A letter
 * that cannot be written (full disk, lost permissions) is a transient outcome of the pool, never a
 * reason to fail the job (nothing would hold it any more) nor to post it again: the job goes back to
 * gearmand with its verdict remembered, its function pauses for a backoff that grows with each failed
 * write, and the log gets one line when the file starts failing and one when it works again (the
 * function breaker's summary covers the time between).
 */
import type { DeliveryPolicy } from '../../config/types.js';
import type { Logger } from '../../log/logger.js';
import { DeadLetterFile } from './dead-letters.js';
import type { DeadLetter } from './dead-letters.js';

/** The first pause after a failed write; it doubles with each failure in a row, up to breaker_max_cooloff. */
const FIRST_PAUSE_MS = 1000;

export class DeadLetterSink {
  readonly #log: Logger;
  #file: DeadLetterFile | null = null;
  /** Failed writes since the last one that succeeded. */
  #failures = 0;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Whether the pool keeps dead letters at all (dead_letter_file not false). */
  get enabled(): boolean {
    return this.#file !== null;
  }

  get path(): string | null {
    return this.#file?.path ?? null;
  }

  /** Opens (lazily) the configured file; a reload to another path closes the old one after its pending letters. */
  use(path: string | null): void {
    if (this.#file?.path === path) return;
    void this.#file?.close();
    this.#file = path === null ? null : new DeadLetterFile(path);
    this.#failures = 0;
  }

  /** Resolves once the letter is on disk; rejects (with a DeadLetterError) when it is not. */
  async write(letter: DeadLetter): Promise<void> {
    const file = this.#file;
    if (file === null) throw new Error('no dead-letter file');
    try {
      await file.write(letter);
    } catch (error) {
      if (this.#failures++ === 0) {
        this.#log.error({ err: error, file: file.path }, 'cannot write to the dead-letter file: jobs that need a letter go back to gearmand and their functions pause until it can be written again');
      }
      throw error;
    }
    if (this.#failures > 0) {
      this.#log.info({ file: file.path, failedWrites: this.#failures }, 'the dead-letter file can be written again');
      this.#failures = 0;
    }
  }

  /** How long a function pauses after the latest failed write. */
  pauseMs(policy: DeliveryPolicy): number {
    const doublings = Math.min(Math.max(0, this.#failures - 1), 20);
    return Math.min(Math.max(policy.breakerMaxCooloffMs, FIRST_PAUSE_MS), FIRST_PAUSE_MS * 2 ** doublings);
  }

  close(): Promise<void> {
    return this.#file?.close() ?? Promise.resolve();
  }
}
