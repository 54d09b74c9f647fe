/**
 * The liveness faults of `bench:chaos` (issue 19): a hung gearmand, a poison job, one function's
 * outage. Unlike the process faults, which share one long run, each is a run of its own (fresh
 * gearmands, endpoint and daemon, a pool of `--liveness-slots`), once per poison kind and per daemon
 * build. Each checks that nothing is lost and that the healthy path keeps ≥ 90 % of its rate.
 */
import { join } from 'node:path';
import type { BenchCli } from '../faults/bench-cli.js';
import { fmt, logSummaryText } from '../faults/common.js';
import type { PoisonKind } from '../faults/endpoint-control.js';
import { functionOutageTable, runFunctionOutage, type FunctionOutageResult } from './function-outage.js';
import { hungServerTable, runHungServer, type HungServerResult } from './hung-server.js';
import { verdict, type LivenessFault } from './liveness-figures.js';
import { poisonJobTable, runPoisonJob, type PoisonJobResult } from './poison-job.js';
import type { LivenessOptions, LivenessRun } from './liveness-run.js';

export type { LivenessOptions, LivenessRun } from './liveness-run.js';

export { LIVENESS_FAULTS, type LivenessFault, type LivenessResult } from './liveness-figures.js';

const POISON_KINDS = ['503', 'hang', 'stream'] as const;

export const LIVENESS_USAGE = `
Liveness faults (issue 19), each a run of its own after the faults above, with a pool of
--liveness-slots fed --liveness-rate jobs/s per stream:
  hung-server              the pool on two gearmands; the second is SIGSTOPped, then SIGCONTed
  poison-job               one job whose every POST fails, alone, then beside another function's traffic
  function-outage          the endpoint answers 503 to one of the pool's two functions only
  --liveness-slots N       the pool's worker_count (default 4)
  --liveness-rate R        jobs/s of each stream (default 50)
  --liveness-lead-seconds S  steady flow before the fault; "before" is its last 5 s (default 6)
  --liveness-after-seconds S flow after the fault (default 10)
  --liveness-loop-timeout S  the daemon's --loop_timeout (default 10, its own default: the
                           connection liveness probe; the process faults run with 1)
  --hung-seconds S         how long the second gearmand stays stopped (default 30)
  --hung-g2-rate R         jobs/s submitted to the second gearmand (default 5; 0: none)
  --poison-kinds LIST      how the poison job fails, one run each: 503, hang (no answer),
                           stream (an ndjson answer that never ends) (default 503)
  --poison-seconds S       the poison job alone in the queue, at most (default 60: the
                           default max_retry_duration, within which it must be dead-lettered)
  --poison-traffic-seconds S  then the other function's traffic beside it (default 20)
  --poison-max-running-time S  the pool's max_running_time for hang and stream (default 2)
  --function-outage-seconds S  how long the one function gets 503 (default 20)
  --compare-bin PATH       also run everything with another build's bin/driveshaft.js
                           (default: DRIVESHAFT_COMPARE_BIN if set)
`;

export function livenessOptionEntries() {
  return {
    'liveness-slots': { type: 'string', default: '4' },
    'liveness-rate': { type: 'string', default: '50' },
    'liveness-lead-seconds': { type: 'string', default: '6' },
    'liveness-after-seconds': { type: 'string', default: '10' },
    'liveness-loop-timeout': { type: 'string', default: '10' },
    'hung-seconds': { type: 'string', default: '30' },
    'hung-g2-rate': { type: 'string', default: '5' },
    'poison-kinds': { type: 'string', default: '503' },
    'poison-seconds': { type: 'string', default: '60' },
    'poison-traffic-seconds': { type: 'string', default: '20' },
    'poison-max-running-time': { type: 'string', default: '2' },
    'function-outage-seconds': { type: 'string', default: '20' },
    'compare-bin': { type: 'string' },
  } as const;
}

type LivenessValues = Partial<Record<keyof ReturnType<typeof livenessOptionEntries>, string>>;

export function parseLivenessOptions(
  cli: BenchCli,
  values: LivenessValues,
  common: { delivery: Record<string, unknown>; failFast: boolean; logLevel: 'info' | 'warn'; drainTimeoutS: number },
): LivenessOptions {
  const kinds = (values['poison-kinds'] ?? '').split(',').map((k) => k.trim()).filter((k) => k !== '');
  if (kinds.length === 0) cli.fail(`--poison-kinds: expected some of ${POISON_KINDS.join(', ')}`);
  for (const kind of kinds) if (!(POISON_KINDS as readonly string[]).includes(kind)) cli.fail(`--poison-kinds: expected some of ${POISON_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  return {
    slots: cli.number('liveness-slots', values['liveness-slots'], 1),
    rate: cli.number('liveness-rate', values['liveness-rate'], 1),
    leadSeconds: cli.number('liveness-lead-seconds', values['liveness-lead-seconds'], 2),
    afterSeconds: cli.number('liveness-after-seconds', values['liveness-after-seconds'], 0),
    loopTimeoutS: cli.number('liveness-loop-timeout', values['liveness-loop-timeout'], 1),
    hungSeconds: cli.number('hung-seconds', values['hung-seconds'], 1),
    hungG2Rate: cli.number('hung-g2-rate', values['hung-g2-rate'], 0),
    poisonKinds: kinds as PoisonKind[],
    poisonSeconds: cli.number('poison-seconds', values['poison-seconds'], 1),
    poisonTrafficSeconds: cli.number('poison-traffic-seconds', values['poison-traffic-seconds'], 1),
    poisonMaxRunningTime: cli.number('poison-max-running-time', values['poison-max-running-time'], 0.1),
    functionOutageSeconds: cli.number('function-outage-seconds', values['function-outage-seconds'], 1),
    delivery: { ...(common.failFast ? { mode: 'fail_fast' } : {}), ...common.delivery },
    logLevel: common.logLevel,
    drainTimeoutS: common.drainTimeoutS,
  };
}

export type AnyLivenessResult = HungServerResult | PoisonJobResult | FunctionOutageResult;

/** Runs the selected liveness faults, each once per build (and per poison kind), one after the other. */
export async function runLiveness(
  faults: readonly LivenessFault[],
  options: LivenessOptions,
  binaries: ReadonlyArray<{ binary: string; bin: string }>,
  tmp: string,
  progress: (text: string) => void,
): Promise<AnyLivenessResult[]> {
  const results: AnyLivenessResult[] = [];
  for (const fault of faults) {
    for (const variant of fault === 'poison-job' ? options.poisonKinds : [undefined]) {
      for (const { binary, bin } of binaries) {
        const run: LivenessRun = {
          options, binary, bin, dir: join(tmp, `liveness-${binary}`), progress,
          poolExtra: ({ delivery, ...extra }) => {
            const merged = { ...delivery, ...options.delivery };
            return { ...extra, ...(Object.keys(merged).length > 0 ? { delivery: merged } : {}) };
          },
        };
        progress(`${labelOf(fault, variant)}, ${binary} daemon`);
        const result =
          fault === 'hung-server' ? await runHungServer(run) : fault === 'poison-job' ? await runPoisonJob(run, variant as PoisonKind) : await runFunctionOutage(run);
        results.push(result);
        progress(`  ${verdict(result)}${result.error === undefined ? '' : `; ERROR ${result.error.split('\n')[0]}`}`);
      }
    }
  }
  return results;
}

export function labelOf(fault: LivenessFault, variant: string | undefined): string {
  return variant === undefined ? fault : `${fault} (${variant})`;
}

/** The fault tables, then per run: its verdict, its log lines during the fault by message, its notes. */
export function livenessReport(results: readonly AnyLivenessResult[]): string[] {
  const out: string[] = [];
  const of = <R extends AnyLivenessResult>(fault: LivenessFault): R[] => results.filter((r) => r.fault === fault) as R[];
  const hung = of<HungServerResult>('hung-server');
  const poison = of<PoisonJobResult>('poison-job');
  const outage = of<FunctionOutageResult>('function-outage');
  for (const [list, render] of [
    [hung, () => hungServerTable(hung)],
    [poison, () => poisonJobTable(poison)],
    [outage, () => functionOutageTable(outage)],
  ] as const) {
    if (list.length > 0) out.push('', render());
  }
  for (const r of results) {
    out.push('', `${labelOf(r.fault, r.variant)}/${r.binary}: ${verdict(r)}`);
    const messages = r.faultLog.byMessage.slice(0, 6).map((m) => `${m.count}× "${m.msg}"`).join(', ');
    out.push(`  log lines during the fault: ${fmt.int(r.faultLog.total)}${messages === '' ? '' : ` (${messages})`}; whole run: ${logSummaryText(r.logLines, 4)}`);
    for (const note of r.notes) out.push(`  ${note}`);
    if (r.lost > 0) out.push(`  lost e.g. ${r.lostSample.slice(0, 5).join(', ')}`);
    if (r.stillQueued > 0) out.push(`  still queued when the drain gave up: ${fmt.int(r.stillQueued)}`);
    if (r.error !== undefined) out.push(`  ERROR: ${r.error}`);
  }
  return out;
}
