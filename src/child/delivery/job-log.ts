/** One job's outcome in the pool's log: a failure at warn, anything else only at debug. */
import type { JobOutcome } from '../job.js';
import type { DeliveredJob } from './delivered-job.js';

export function logJobOutcome(delivered: DeliveredJob, outcome: JobOutcome, durationMs: number, note: string | undefined): void {
  const log = delivered.log;
  if (outcome.kind !== 'fail' && !log.debug()) return;
  // Built only when a line will be written: at info level a completed job costs no object.
  const fields = {
    function: delivered.job.functionName,
    handle: delivered.job.handleText,
    unique: delivered.job.uniqueText,
    server: delivered.job.server,
    trace_id: delivered.trace.traceId,
    durationMs: Math.round(durationMs * 100) / 100,
  };
  if (outcome.kind === 'fail') log.warn({ ...fields, cause: outcome.cause, reason: outcome.reason, note }, 'job failed');
  else log.debug({ ...fields, outcome: outcome.kind, resultBytes: outcome.kind === 'complete' ? outcome.result.length : undefined, note }, 'job done');
}
