/**
 * The chaos benchmark's report: one tally row per run (the process faults' run and each liveness
 * run), the process faults' table and notes, then the liveness faults' tables and verdicts.
 */
import { describeProcesses, fmt, logSummaryText, reportHeading, table, tallyCells, tallyHeader, type CounterColumn, type ProcessFigures } from '../faults/common.js';
import { labelOf, livenessReport, type AnyLivenessResult } from './liveness.js';
import type { Options, RunResult } from './chaos-types.js';

const RUN_COUNTERS: readonly CounterColumn[] = [
  ['timed out', 'jobs_timed_out'],
  ['requeued', 'jobs_requeued'],
  ['retried', 'jobs_retried'],
  ['handed back', 'jobs_handed_back'],
  ['dead-lettered', 'jobs_dead_lettered'],
  ['returned', 'jobs_returned'],
];

function mib(list: readonly ProcessFigures[], role: 'master' | 'child'): string {
  const p = list.filter((x) => x.role === role);
  return p.length === 0 ? '—' : p.map((x) => `${(x.rssKiB / 1024).toFixed(1)} MiB/${x.fds} fds`).join(', ');
}

/** The process faults' table and notes for one run. */
function processFaultsReport(r: RunResult, compared: boolean): string[] {
  const out: string[] = [];
  out.push(
    table(
      ['fault', ...(compared ? ['daemon'] : []), 'queue at start', 'peak queue', 'rate before/s', 'LOST', 'run twice', 'WORK_FAIL', 'http_errors', 'rate ≥50% after', 'backlog drained', 'log lines', 'master after', 'child(ren) after'],
      r.faults.map((f) => [
        `${f.name}${f.hadTraffic ? '' : ' (no traffic)'}`,
        ...(compared ? [r.binary] : []),
        fmt.int(f.backlogAtStart),
        fmt.int(f.peakBacklog),
        fmt.int(f.rateBefore),
        fmt.int(f.lost),
        fmt.int(f.duplicates),
        fmt.int(f.counters['jobs_failed']),
        fmt.int(f.counters['http_errors']),
        fmt.s(f.rateBackMs),
        fmt.s(f.backlogDrainedMs),
        fmt.int(f.logLines),
        mib(f.processesAfter, 'master'),
        mib(f.processesAfter, 'child'),
      ]),
    ),
  );
  out.push('');
  out.push(`processes at start: ${describeProcesses(r.processesStart)}`);
  out.push(`processes at end:   ${describeProcesses(r.processesEnd)}`);
  for (const f of r.faults) {
    out.push(`${f.name} — ${f.title}: ${f.notes.join('; ')}`);
    if (f.lost > 0) out.push(`  lost e.g. ${f.lostSample.slice(0, 5).join(', ')}`);
    for (const dup of f.duplicateSample.slice(0, 3)) {
      out.push(`  run twice: ${dup.id}, 200 at ${dup.atMs.map((t) => `${t < f.startAtMs ? '−' : '+'}${(Math.abs(t - f.startAtMs) / 1000).toFixed(2)} s`).join(' and ')} from the fault's start`);
    }
  }
  if (r.lostUnattributed > 0) out.push(`lost without a WORK_FAIL in the daemon's log (gone in gearmand or never logged): ${fmt.int(r.lostUnattributed)}`);
  if (r.duplicatesBeforeFaults > 0) out.push(`answered twice before the first fault: ${fmt.int(r.duplicatesBeforeFaults)}`);
  if (r.unexpectedIds > 0) out.push(`${r.unexpectedIds} ids answered that were never queued`);
  if (r.feederReconnects > 0) out.push(`the feeder reconnected to gearmand ${r.feederReconnects}× and resubmitted up to ${fmt.int(r.feederInDoubt)} unacknowledged jobs (gearmand merges a resubmission by its unique)`);
  out.push(logSummaryText(r.logLines, 6));
  if (r.error !== undefined) out.push(`ERROR: ${r.error}`);
  return out;
}

/** One tally row per run (the process faults' and each liveness run's), then each kind's tables. */
export function report(options: Options, meta: Record<string, unknown>, classic: readonly RunResult[], liveness: readonly AnyLivenessResult[]): string {
  const delivery = options.livenessOptions.delivery;
  const setup = [
    `delivery ${Object.keys(delivery).length === 0 ? 'default' : JSON.stringify(delivery)}`,
    ...(options.liveness.length > 0 ? [`liveness runs: ${options.livenessOptions.slots} slots, ${options.livenessOptions.rate} jobs/s per stream`] : []),
  ].join('; ');
  const out = reportHeading('chaos', meta, classic.length > 0 ? options : undefined, setup);
  out.push('');
  out.push(
    table(
      ['run', 'daemon', ...tallyHeader(RUN_COUNTERS)],
      [
        ...classic.map((r) => [`${r.faults.length} process faults`, r.binary, ...tallyCells(r, RUN_COUNTERS)]),
        ...liveness.map((r) => [labelOf(r.fault, r.variant), r.binary, ...tallyCells(r, RUN_COUNTERS)]),
      ],
    ),
  );
  for (const r of classic) out.push('', ...processFaultsReport(r, classic.length > 1));
  out.push(...livenessReport(liveness));
  return out.join('\n');
}

