/**
 * What a pool child remembers about jobs it gave back to gearmand, so that the next assignment of the
 * same job here continues where the last one stopped: the attempt count and first-attempt time (the
 * `Driveshaft-Attempt` headers and the retry budget), the trace, and how often the endpoint asked for a
 * re-queue (gearman_ret 14). gearmand re-queues a job under its handle, so server + handle (+ unique)
 * names it. Bounded: handles seen once and never again must not grow the maps for ever, so the oldest
 * entry goes at LEDGER_SIZE. Lost with the process: a restarted child starts every job afresh.
 */
import type { AttemptInfo, Job } from '../job.js';

/** Entries per map at most. */
export const LEDGER_SIZE = 10_000;
/** gearman_ret 14 re-queues of one job handle before the job is failed instead (the original re-ran it forever). */
export const MAX_REQUEUES = 5;

export class AttemptLedger {
  /** Attempts of jobs this child handed back to gearmand, by server, handle and unique. */
  readonly #handedBack = new Map<string, AttemptInfo>();
  /** gearman_ret 14 re-queues per server and handle. */
  readonly #requeues = new Map<string, number>();

  /** Attempts made here before the job was handed back, taken out of the ledger; undefined for a new job. */
  recall(job: Job): AttemptInfo | undefined {
    if (this.#handedBack.size === 0) return undefined;
    const key = jobKey(job);
    const earlier = this.#handedBack.get(key);
    if (earlier !== undefined) this.#handedBack.delete(key);
    return earlier;
  }

  /** The job goes back to gearmand: keep its attempts for its next assignment here. */
  remember(job: Job, attempt: AttemptInfo): void {
    boundedSet(this.#handedBack, jobKey(job), attempt);
  }

  /**
   * gearman_ret 14 for `handle` from `server`: true if it may be re-queued once more, false when the
   * limit is reached and the job must fail instead.
   */
  allowRequeue(server: string, handle: string): boolean {
    const key = `${server}\0${handle}`;
    const count = (this.#requeues.get(key) ?? 0) + 1;
    this.#requeues.delete(key);
    if (count > MAX_REQUEUES) return false;
    boundedSet(this.#requeues, key, count);
    return true;
  }

  /** The job has a final outcome: forget its re-queue count. */
  settle(server: string, handle: string): void {
    if (this.#requeues.size > 0) this.#requeues.delete(`${server}\0${handle}`);
  }
}

function jobKey(job: Job): string {
  return `${job.server}\0${job.handleText}\0${job.uniqueText}`;
}

/** Map.set with the oldest entry evicted at LEDGER_SIZE. */
function boundedSet<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= LEDGER_SIZE) {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  }
  map.set(key, value);
}
