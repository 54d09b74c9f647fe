/**
 * max_running_time for every attempt of a pool with one timer. Armed for the earliest deadline it was
 * told about; when it fires, the delivery aborts what is overdue and names the next deadline. An attempt
 * that ends in time costs one comparison and no timer operation, yet a late one is cut within a
 * millisecond of its own deadline (the original's limit was loop_timeout-coarse). With thousands of
 * slots behind a slow endpoint that is one timer instead of thousands.
 */
import { MAX_TIMER_MS } from '../job.js';

export class DeadlineWatch {
  /** Aborts what is due at `now` (performance.now()); returns the next deadline to watch, or Infinity. */
  readonly #expire: (now: number) => number;
  #timer: NodeJS.Timeout | null = null;
  /** performance.now() the timer is armed for; Infinity when disarmed. */
  #armedFor = Infinity;
  #closed = false;

  constructor(expire: (now: number) => number) {
    this.#expire = expire;
  }

  /** An attempt must be over by `deadline` (performance.now() time). */
  watch(deadline: number): void {
    if (deadline >= this.#armedFor || this.#closed) return;
    this.#arm(deadline);
  }

  close(): void {
    this.#closed = true;
    this.#disarm();
  }

  #arm(deadline: number): void {
    this.#disarm();
    this.#armedFor = deadline;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, deadline - performance.now()));
    this.#timer = setTimeout(() => this.#fire(), delay);
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#armedFor = Infinity;
  }

  #fire(): void {
    this.#timer = null;
    this.#armedFor = Infinity;
    const next = this.#expire(performance.now());
    if (next !== Infinity && !this.#closed && next < this.#armedFor) this.#arm(next);
  }
}
