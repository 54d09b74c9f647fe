/**
 * An endpoint streaming progress lines as fast as the worker reads them (issue #19, case 7).
 * `npm run build && node dist/bench/progress-flood.js [--lines 1000000] [--kind status|data|mixed]
 * [--data-bytes 64] [--runs 2] [--baseline path/to/other/bin/driveshaft.js]`; not part of `npm test`.
 *
 * One real gearmand, a real endpoint in this process answering application/x-ndjson (1,000 lines per
 * write, the next write once the socket took the last), the real daemon (one pool of one slot) and the
 * test client, one foreground job per run. With --baseline, each run starts that build's daemon and
 * then this one's, in turn, against the same gearmand and endpoint. Reported per run: the WORK_STATUS /
 * WORK_DATA / WORK_WARNING packets the client received, how long the endpoint streamed, how late the
 * result came after the endpoint's last line, and the CPU of the daemon (all its processes) and of
 * gearmand over the job.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GearmanClient } from '../test/helpers/gearman-client.js';
import { startEndpoint, type StreamPiece } from '../test/helpers/http-endpoint.js';
import { startGearmand } from '../test/helpers/gearmand.js';
import { OUR_BIN, startDaemon, waitRegistered } from './e2e/daemon.js';

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    kind: { type: 'string', default: 'status' },
    'data-bytes': { type: 'string', default: '64' },
    runs: { type: 'string', default: '2' },
    baseline: { type: 'string' },
  },
});
const LINES = Number(args.lines);
const KIND = args.kind;
const RUNS = Number(args.runs);
const FILLER = 'x'.repeat(Number(args['data-bytes']));
const LINES_PER_WRITE = 1000;

function line(i: number): string {
  if (KIND === 'status') return `{"status":[${i},${LINES}]}`;
  if (KIND === 'data') return `{"data":"${i} ${FILLER}"}`;
  // mixed: a status alone, a status with data, data alone, a warning
  switch (i % 4) {
    case 0:
      return `{"status":[${i},${LINES}]}`;
    case 1:
      return `{"status":[${i},${LINES}],"data":"${i} ${FILLER}"}`;
    case 2:
      return `{"data":"${i} ${FILLER}"}`;
    default:
      return `{"warning":"${i}"}`;
  }
}

interface Clock {
  startedAt: number;
  endedAt: number;
}

function* body(clock: Clock): Generator<StreamPiece> {
  clock.startedAt = performance.now();
  for (let first = 1; first <= LINES; first += LINES_PER_WRITE) {
    let text = '';
    const last = Math.min(LINES, first + LINES_PER_WRITE - 1);
    for (let i = first; i <= last; i++) text += `${line(i)}\n`;
    yield { data: text };
  }
  yield { data: { gearman_ret: 0, response_string: 'done' } };
  clock.endedAt = performance.now();
}

/** utime + stime of a process in ms (Linux, USER_HZ 100). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const gearmand = await startGearmand();
const clock: Clock = { startedAt: 0, endedAt: 0 };
const endpoint = await startEndpoint(() => ({ stream: body(clock) }));
const dir = mkdtempSync(join(tmpdir(), 'progress-flood-'));
const builds = args.baseline === undefined ? [['this', OUR_BIN]] : [['baseline', args.baseline], ['this', OUR_BIN]];
try {
  const client = await GearmanClient.connect(gearmand.port);
  for (let run = 1; run <= RUNS; run++) {
    for (const [build, bin] of builds as Array<[string, string]>) {
      const functionName = `flood${run}${build}`;
      const pools = [{ name: 'flood', slots: 1, functionName }];
      const daemon = await startDaemon({ bin, flavour: 'ours', dir, gearmand, endpointUrl: endpoint.url, pools, logLevel: 'warn' });
      try {
        await waitRegistered(gearmand, daemon, pools, 20_000);
        const daemonPids = daemon.pids();
        const daemonCpu = (): number => daemonPids.reduce((sum, pid) => sum + cpuMsOf(pid), 0);
        const daemonBefore = daemonCpu();
        const gearmandBefore = cpuMsOf(gearmand.pid);
        const result = await client.submit(functionName, 'w', { timeoutMs: 300_000 });
        const counts = { status: 0, data: 0, warning: 0 };
        for (const event of result.progress) counts[event.kind]++;
        const streamedMs = clock.endedAt - clock.startedAt;
        console.log(
          JSON.stringify({
            build,
            run,
            kind: KIND,
            lines: LINES,
            outcome: result.outcome,
            workStatus: counts.status,
            workData: counts.data,
            workWarning: counts.warning,
            statusPerSecond: Math.round((counts.status * 1000) / streamedMs),
            streamedMs: Math.round(streamedMs),
            resultLateMs: Math.round(result.settledAt - clock.endedAt),
            totalMs: Math.round(result.settledAt - result.submittedAt),
            daemonCpuMs: daemonCpu() - daemonBefore,
            gearmandCpuMs: cpuMsOf(gearmand.pid) - gearmandBefore,
          }),
        );
      } finally {
        await daemon.stop();
      }
    }
  }
  await client.close();
} finally {
  await endpoint.close();
  await gearmand.stop();
  rmSync(dir, { recursive: true, force: true });
}
