/**
 * A pool child's counters (the status port's `counters`) and per-function metrics, fed from one place:
 * every attempt that failed transiently, every event of the delivery (retried, handed back,
 * dead-lettered), and every job's final outcome, exactly once.
 */
import { zeroCounters } from '../ipc/counters.js';
import type { ChildCounters } from '../ipc/counters.js';
import type { ChildMetrics } from '../ipc/metrics.js';
import { FailureCause, TransientCause } from './job.js';
import type { FinalOutcome, TransientOutcome } from './job.js';
import { HTTP_ERROR, HTTP_NONE, HTTP_TIMEOUT, JobMetrics, JobResult } from './metrics.js';

/** Delivery events counted beside the outcomes ('returned': a late assignment the slot could not take, see slot.ts). */
export type DeliveryEvent = 'retried' | 'handed_back' | 'dead_lettered' | 'returned';

export class PoolStats {
  readonly #counters: ChildCounters = zeroCounters();
  readonly #metrics = new JobMetrics();

  /** Copies for a status reply. */
  counters(): ChildCounters {
    return { ...this.#counters };
  }

  metrics(): ChildMetrics {
    return this.#metrics.snapshot();
  }

  count(event: DeliveryEvent): void {
    this.#counters[`jobs_${event}`]++;
  }

  /** A transient attempt: its HTTP outcome counts now, whatever becomes of the job. */
  attemptFailed(outcome: TransientOutcome, httpStatus: number): void {
    this.#counters.http_errors++;
    this.#metrics.recordHttp(outcome.cause === TransientCause.TIMEOUT ? HTTP_TIMEOUT : httpStatus === 0 ? HTTP_ERROR : httpStatus);
  }

  /**
   * A finished job, exactly once: what gearmand was told, its function, its duration from assignment,
   * the endpoint's HTTP status (0 when no response headers arrived) and whether that attempt's HTTP
   * outcome was already counted by attemptFailed.
   */
  record(outcome: FinalOutcome, functionName: string, durationMs: number, httpStatus: number, httpCounted: boolean): void {
    const counters = this.#counters;
    let result: JobResult;
    // The HTTP code label: a status once headers arrived, unless max_running_time cut the exchange short;
    // a request we aborted ourselves (shutdown) never produced an HTTP outcome and is left out.
    let http = httpStatus;
    switch (outcome.kind) {
      case 'complete':
        counters.jobs_completed++;
        result = JobResult.COMPLETED;
        break;
      case 'requeue':
        counters.jobs_requeued++;
        result = JobResult.REQUEUED;
        break;
      case 'fail':
        counters.jobs_failed++;
        result = JobResult.FAILED;
        if (outcome.cause === FailureCause.TIMEOUT) {
          counters.jobs_timed_out++;
          result = JobResult.TIMED_OUT;
          http = HTTP_TIMEOUT;
        } else if (outcome.cause === FailureCause.HTTP) {
          if (!httpCounted) counters.http_errors++;
          if (http === 0) http = HTTP_ERROR;
        } else if (outcome.cause === FailureCause.SHUTDOWN && http === 0) {
          http = HTTP_NONE;
        }
        break;
    }
    this.#metrics.record(functionName, result, durationMs / 1000, httpCounted ? HTTP_NONE : http);
  }
}
