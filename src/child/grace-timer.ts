/**
 * The grace a stopping slot's running job gets before it is failed. A slot can be told to stop more
 * than once (a reload's scale-down, then a shutdown, then a hard stop): a later stop can only shorten
 * the grace, never give the job more time than it was already promised.
 */
import { MAX_TIMER_MS } from './job.js';

export class GraceTimer {
  #timer: NodeJS.Timeout | null = null;
  /** performance.now() by which `expire` runs. */
  #deadline = Infinity;

  /** `expire` runs in `graceMs`, unless an earlier deadline is already armed or cancel() comes first. */
  arm(graceMs: number, expire: () => void): void {
    const deadline = performance.now() + graceMs;
    if (deadline >= this.#deadline) return;
    this.#deadline = deadline;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      expire();
    }, Math.min(MAX_TIMER_MS, graceMs));
  }

  /** The job ended: nothing to expire. */
  cancel(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }
}
