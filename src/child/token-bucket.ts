/**
 * A pool's rate limit (docs/flow-control.md, Rate limit): a token bucket of `burst` tokens refilled at
 * `perSecond`. A slot takes a token with its permit before it grabs, and gives it back when the grab
 * finds no job; a retry takes one on credit. Pure arithmetic on a clock: the admission gate owns the one
 * timer that wakes a waiting slot when the next token is due.
 */
export class TokenBucket {
  readonly #clock: () => number;
  #perMs: number;
  #perSecond: number;
  #burst: number;
  #tokens: number;
  /** Clock time the tokens were last brought up to date. */
  #at: number;

  /** `clock`: milliseconds (performance.now()). The bucket starts full. */
  constructor(perSecond: number, burst: number, clock: () => number = () => performance.now()) {
    this.#clock = clock;
    this.#perSecond = perSecond;
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = clock();
  }

  get perSecond(): number {
    return this.#perSecond;
  }

  get burst(): number {
    return this.#burst;
  }

  /** Tokens now (a fraction while one is refilling; below zero while retries are paid back). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** A reload: the tokens in the bucket stay (at most the new burst); the new rate counts from now. */
  configure(perSecond: number, burst: number): void {
    this.#refill();
    this.#perSecond = perSecond;
    this.#perMs = perSecond / 1000;
    this.#burst = burst;
    if (this.#tokens > burst) this.#tokens = burst;
  }

  /** Whether a token could be taken now (a query: takes nothing). */
  get available(): boolean {
    this.#refill();
    return this.#tokens >= 1;
  }

  take(): boolean {
    this.#refill();
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /**
   * Takes a token whether or not there is one (a retry of a held job, which never waits for the rate):
   * the bucket goes below zero, at most one burst, and new grabs wait until it is paid back.
   */
  takeOnCredit(): void {
    this.#refill();
    this.#tokens = Math.max(this.#tokens - 1, -this.#burst);
  }

  /** A token taken for a grab that found no job. */
  giveBack(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }

  /** Milliseconds until a token can be taken (0: now). */
  msUntilToken(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : (1 - this.#tokens) / this.#perMs;
  }

  #refill(): void {
    const now = this.#clock();
    if (this.#tokens < this.#burst) this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs);
    this.#at = now;
  }
}
