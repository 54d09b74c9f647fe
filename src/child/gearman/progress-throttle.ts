/**
 * The progress lines of the job one connection runs, on their way to gearmand (docs/http-contract.md,
 * Progress and partial results).
 *
 * WORK_STATUS is coalesced: the first goes out at once, later ones at most every STATUS_INTERVAL_MS
 * with the latest value winning, and one still held goes out just before the job's answer, in the same
 * write. Forwarded line for line, an endpoint streaming statuses as fast as it can had gearmand relay
 * ~59,000 WORK_STATUS a second to the client and the result arrive 14 s after the endpoint finished
 * (issue #19, case 7). A job that streams no status never arms a timer.
 *
 * WORK_DATA and WORK_WARNING are partial results: every one is sent, in order. One that follows a held
 * status waits behind it (at most STATUS_INTERVAL_MS): sent first, it would overtake that status. A
 * newer status drops the held one and releases what waited behind it, so a client sees the endpoint's
 * sequence with statuses left out, never one moved.
 *
 * Backpressure: when more than PROGRESS_BACKLOG_BYTES wait (behind a held status, or unsent on the
 * socket because gearmand reads slower than the endpoint writes), the reader (the HTTP answer) is
 * paused until the socket drained. A job then holds a bounded amount of progress in memory, and a
 * fast endpoint streams at gearmand's pace instead of piling up in the child.
 *
 * The lines of one HTTP chunk (handled in one tick) go out in one write: with a write per line,
 * 500,000 data lines of 64 B cost the daemon ~2.2 s of CPU and gearmand ~0.8 s; in one write per
 * chunk 1.1–1.3 s and ~0.2 s (bench/progress-flood.ts, same runs; bench/README.md).
 */
import type net from 'node:net';
import { encodeWorkData, encodeWorkStatus, encodeWorkWarning } from '../../codec/index.js';
import type { ProgressUpdate } from '../job.js';

/** At most one WORK_STATUS per job this often: ~10 a second, still smooth for a progress bar. */
export const STATUS_INTERVAL_MS = 100;
/**
 * Progress bytes one job may have waiting before its HTTP answer is paused (plus the one HTTP chunk
 * being split into lines when the limit is crossed). The kernel's socket buffers behind it keep
 * gearmand reading while the answer resumes, so a small limit costs no throughput.
 */
export const PROGRESS_BACKLOG_BYTES = 256 * 1024;

/** Who reads the job's progress lines (the delivery, for the attempt in flight). */
export interface ProgressReader {
  /** Read no more lines until resumeProgress(). May be called again while paused. */
  pauseProgress(): void;
  resumeProgress(): void;
}

export class ProgressThrottle {
  /** The job's handle: a throttle serves one job. */
  readonly handle: Buffer;
  readonly #socket: net.Socket;
  readonly #reader: ProgressReader;
  /** Whether the socket still holds the job (a timer may fire after the connection moved on). */
  readonly #stillHeld: () => boolean;
  /** performance.now() when the last WORK_STATUS was written. */
  #statusSentAt = -Infinity;
  /** A status waits for its turn: these are its values. */
  #held = false;
  #numerator = 0;
  #denominator = 0;
  #timer: NodeJS.Timeout | null = null;
  /** WORK_DATA / WORK_WARNING packets that arrived after the held status, in order. */
  #behind: Buffer[] = [];
  #behindBytes = 0;
  #paused = false;
  #awaitingDrain = false;
  #ended = false;
  #corked = false;

  constructor(socket: net.Socket, handle: Buffer, reader: ProgressReader, stillHeld: () => boolean) {
    this.#socket = socket;
    this.handle = handle;
    this.#reader = reader;
    this.#stillHeld = stillHeld;
  }

  /** A status waits for its turn (its timer is armed). */
  get statusHeld(): boolean {
    return this.#held;
  }

  add(update: ProgressUpdate): void {
    if (update.kind === 'status') {
      this.#status(update.numerator, update.denominator);
    } else {
      const packet = update.kind === 'data' ? encodeWorkData(this.handle, update.data) : encodeWorkWarning(this.handle, update.data);
      if (this.#held) {
        this.#behind.push(packet);
        this.#behindBytes += packet.length;
      } else {
        this.#write(packet);
      }
    }
    if (this.#socket.writableLength + this.#behindBytes > PROGRESS_BACKLOG_BYTES) this.#pause();
  }

  /** Writes what is held (the job's answer follows in the same write: the caller corks). */
  finish(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#flush();
    this.#end();
  }

  /**
   * The job is over without an answer here (its socket is gone, or it is being handed back): drops
   * what is held. Lines already sent go out first: a hand-back destroys the socket in this same tick.
   */
  discard(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#held = false;
    this.#behind = [];
    this.#behindBytes = 0;
    this.#uncork();
    this.#end();
  }

  #status(numerator: number, denominator: number): void {
    if (this.#held) {
      this.#numerator = numerator;
      this.#denominator = denominator;
      // The held value is superseded; what waited behind it now has no status before it.
      if (this.#behindBytes > 0) this.#writeBehind();
      return;
    }
    const now = performance.now();
    if (now - this.#statusSentAt >= STATUS_INTERVAL_MS) {
      this.#statusSentAt = now;
      this.#write(encodeWorkStatus(this.handle, numerator, denominator));
      return;
    }
    this.#held = true;
    this.#numerator = numerator;
    this.#denominator = denominator;
    this.#timer = setTimeout(this.#onDue, this.#statusSentAt + STATUS_INTERVAL_MS - now);
  }

  readonly #onDue = (): void => {
    this.#timer = null;
    if (!this.#stillHeld()) {
      this.discard();
      return;
    }
    this.#flush();
    this.#waitForRoom();
  };

  /** The held status, then what waited behind it. */
  #flush(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#statusSentAt = performance.now();
    const status = encodeWorkStatus(this.handle, this.#numerator, this.#denominator);
    if (this.#behindBytes === 0) {
      this.#socket.write(status);
      return;
    }
    this.#socket.cork();
    this.#socket.write(status);
    this.#writeBehind();
    this.#socket.uncork();
  }

  /** The lines of one HTTP chunk (all handled in one tick) go out in one write. */
  #write(packet: Buffer): void {
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(this.#uncork);
    }
    this.#socket.write(packet);
  }

  readonly #uncork = (): void => {
    if (!this.#corked) return;
    this.#corked = false;
    this.#socket.uncork();
  };

  #writeBehind(): void {
    const behind = this.#behind;
    this.#behind = [];
    this.#behindBytes = 0;
    // One write (writev) for the lot, without copying them into one buffer.
    this.#socket.cork();
    for (const packet of behind) this.#socket.write(packet);
    this.#socket.uncork();
  }

  #pause(): void {
    // Also when already paused: a retry's new request must stop too.
    this.#reader.pauseProgress();
    if (this.#paused) return;
    this.#paused = true;
    this.#waitForRoom();
  }

  /** Resumes the reader once nothing waits here and the socket drained. */
  #waitForRoom(): void {
    if (!this.#paused || this.#ended) return;
    // What waits behind a held status goes out when its timer fires, which calls back here.
    if (this.#behindBytes > 0) return;
    if (this.#socket.writableNeedDrain) {
      if (!this.#awaitingDrain) {
        this.#awaitingDrain = true;
        this.#socket.once('drain', this.#onDrain);
      }
      return;
    }
    this.#paused = false;
    this.#reader.resumeProgress();
  }

  readonly #onDrain = (): void => {
    this.#awaitingDrain = false;
    this.#waitForRoom();
  };

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#awaitingDrain) {
      this.#awaitingDrain = false;
      this.#socket.off('drain', this.#onDrain);
    }
    // An attempt cut short while paused must be able to finish (its later lines are not sent).
    if (this.#paused) {
      this.#paused = false;
      this.#reader.resumeProgress();
    }
  }
}
