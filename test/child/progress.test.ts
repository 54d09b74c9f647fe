/**
 * Progress of streamed (application/x-ndjson) answers under load, end to end: a real gearmand, a real
 * endpoint streaming as fast as the worker reads, a WorkerPool in this process and the codec client
 * counting what gearmand forwards (docs/http-contract.md, Progress and partial results).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StreamPiece } from '../helpers/http-endpoint.js';
import type { ProgressEvent } from '../helpers/gearman-client.js';
import { waitFor } from '../helpers/wait-for.js';
import { rig } from './fixtures.js';

/** One piece of the endpoint's body holds this many lines: the endpoint writes as fast as it can. */
const LINES_PER_PIECE = 1000;

/** When the endpoint handed its last line to the socket (performance.now()), set by the generators. */
interface StreamClock {
  endedAt: number;
}

/** `lines` lines made by `line(i)` for i = 1…lines, then the final answer. */
function* ndjson(lines: number, line: (i: number) => string, clock: StreamClock): Generator<StreamPiece> {
  for (let first = 1; first <= lines; first += LINES_PER_PIECE) {
    let text = '';
    const last = Math.min(lines, first + LINES_PER_PIECE - 1);
    for (let i = first; i <= last; i++) text += `${line(i)}\n`;
    yield { data: text };
  }
  yield { data: { gearman_ret: 0, response_string: 'done' } };
  // Runs when the stream asks for the piece after the last one: the last line was written.
  clock.endedAt = performance.now();
}

function statuses(progress: ProgressEvent[]): Array<Extract<ProgressEvent, { kind: 'status' }>> {
  return progress.filter((event) => event.kind === 'status');
}

/**
 * The most WORK_STATUS packets a job may send over `spanMs` as the client saw it: the first at once,
 * then one per 100 ms, plus the last one sent with the answer (which need not wait for its interval);
 * 50 ms for gearmand delaying the first more than the others on the way.
 */
function statusBudget(spanMs: number): number {
  return Math.floor((spanMs + 50) / 100) + 2;
}

test('WORK_STATUS should reach the client at most ~10 times a second, the last value before the result, the result promptly', async (t) => {
  const LINES = 200_000;
  const clock: StreamClock = { endedAt: 0 };
  const r = await rig(t, { handler: () => ({ stream: ndjson(LINES, (i) => `{"status":[${i},${LINES}]}`, clock) }) });

  const result = await r.client.submit(r.fn, 'w', { timeoutMs: 120_000 });
  assert.equal(result.outcome, 'complete');
  assert.equal(result.result?.toString(), 'done');
  const received = statuses(result.progress);
  const first = received[0];
  const last = received.at(-1);
  assert.ok(first !== undefined && last !== undefined, 'some WORK_STATUS arrived');
  assert.deepEqual([last.numerator, last.denominator], [LINES, LINES], 'the last status sent is the last value the endpoint streamed');
  const spanMs = result.settledAt - first.at;
  const lateMs = result.settledAt - clock.endedAt;
  t.diagnostic(`${LINES} status lines: ${received.length} WORK_STATUS over ${spanMs.toFixed(0)} ms; result ${lateMs.toFixed(0)} ms after the endpoint's last line`);
  assert.ok(received.length <= statusBudget(spanMs), `${received.length} WORK_STATUS in ${spanMs.toFixed(0)} ms: more than ~10 a second`);
  assert.ok(lateMs < 1000, `the result arrived ${lateMs.toFixed(0)} ms after the endpoint finished`);
});

test('data and warning lines should all arrive in order, statuses coalesced between them without reordering', async (t) => {
  const LINES = 40_000;
  const clock: StreamClock = { endedAt: 0 };
  // Line i: a status alone, a status with data, data alone, a warning, in turn. Each carries i.
  const line = (i: number): string => {
    switch (i % 4) {
      case 0:
        return `{"status":[${i},${LINES}]}`;
      case 1:
        return `{"status":[${i},${LINES}],"data":"d${i}"}`;
      case 2:
        return `{"data":"d${i}"}`;
      default:
        return `{"warning":"w${i}"}`;
    }
  };
  const r = await rig(t, { handler: () => ({ stream: ndjson(LINES, line, clock) }) });

  const result = await r.client.submit(r.fn, 'w', { timeoutMs: 120_000 });
  assert.equal(result.outcome, 'complete');

  const expected: string[] = [];
  for (let i = 1; i <= LINES; i++) if (i % 4 === 1 || i % 4 === 2) expected.push(`d${i}`);
  else if (i % 4 === 3) expected.push(`w${i}`);
  const lines = result.progress.filter((event) => event.kind !== 'status').map((event) => ('data' in event ? event.data.toString() : ''));
  assert.equal(lines.length, expected.length, 'every data and warning line arrived');
  assert.deepEqual(lines, expected, 'in the order the endpoint sent them');

  // What the client saw must be the endpoint's sequence with statuses left out, never moved:
  // (line, status before data before warning) strictly increases.
  const rank = (event: ProgressEvent): number => {
    if (event.kind === 'status') return event.numerator * 3;
    const i = Number(event.data.toString().slice(1));
    return i * 3 + (event.kind === 'data' ? 1 : 2);
  };
  for (let k = 1; k < result.progress.length; k++) {
    const before = result.progress[k - 1] as ProgressEvent;
    const after = result.progress[k] as ProgressEvent;
    assert.ok(rank(before) < rank(after), `progress event ${k} (${after.kind} of line ${Math.floor(rank(after) / 3)}) came after one of line ${Math.floor(rank(before) / 3)}`);
  }

  const received = statuses(result.progress);
  const last = received.at(-1);
  assert.deepEqual([last?.numerator, last?.denominator], [LINES, LINES], 'the last status before the result');
  const spanMs = result.settledAt - (received[0] as ProgressEvent).at;
  t.diagnostic(`${LINES} mixed lines: ${lines.length} data/warning, ${received.length} WORK_STATUS over ${spanMs.toFixed(0)} ms; result ${(result.settledAt - clock.endedAt).toFixed(0)} ms after the endpoint's last line`);
  assert.ok(received.length <= statusBudget(spanMs), `${received.length} WORK_STATUS in ${spanMs.toFixed(0)} ms`);
});

test('data lines should pause the endpoint while gearmand reads nothing, then all arrive in order', async (t) => {
  const LINE_BYTES = 64 * 1024;
  // 48 MiB (under the 64 MiB answer cap): several times what the socket buffers on the way hold (~8 MiB)
  const LINES = 768;
  const filler = 'x'.repeat(LINE_BYTES - 16);
  let frozen: () => void = () => undefined;
  const gearmandFrozen = new Promise<void>((resolve) => {
    frozen = resolve;
  });
  t.after(() => frozen());
  /** Lines the endpoint's socket took (each asked for once the one before was written). */
  let written = 0;
  function* stream(): Generator<StreamPiece> {
    yield { data: `{"data":"d1 ${filler}"}\n` };
    written = 1;
    for (let i = 2; i <= LINES; i++) {
      yield i === 2 ? { data: `{"data":"d${i} ${filler}"}\n`, after: gearmandFrozen } : { data: `{"data":"d${i} ${filler}"}\n` };
      written = i;
    }
    yield { data: { gearman_ret: 0, response_string: 'done' } };
  }
  const r = await rig(t, { handler: () => ({ stream: stream() }) });
  t.after(() => r.gearmand.kill('SIGCONT'));

  const submitted = r.client.submit(r.fn, 'w', { timeoutMs: 120_000 });
  await waitFor(() => written >= 1, { timeoutMs: 10_000, message: 'the endpoint to write its first line' });
  await r.gearmand.kill('SIGSTOP');
  const before = process.memoryUsage().arrayBuffers;
  frozen();
  // The endpoint streams until every buffer on the way is full: then nothing moves.
  let last = -1;
  let still = 0;
  await waitFor(
    () => {
      still = written === last ? still + 1 : 0;
      last = written;
      return written === LINES || still >= 8;
    },
    { timeoutMs: 60_000, intervalMs: 100, message: 'the endpoint to finish or stall' },
  );
  const growth = process.memoryUsage().arrayBuffers - before;
  t.diagnostic(`gearmand stopped: the endpoint wrote ${((written * LINE_BYTES) / 2 ** 20).toFixed(1)} of ${(LINES * LINE_BYTES) / 2 ** 20} MiB; this process's arrayBuffers grew ${(growth / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(written < LINES / 2, `the endpoint wrote ${written} of ${LINES} lines while gearmand read nothing`);

  await r.gearmand.kill('SIGCONT');
  const result = await submitted;
  assert.equal(result.outcome, 'complete');
  assert.equal(result.data.length, LINES, 'every data line arrived');
  result.data.forEach((data, k) => {
    const head = data.subarray(0, 12).toString();
    if (!head.startsWith(`d${k + 1} `)) assert.fail(`data ${k} is ${JSON.stringify(head)}, expected line ${k + 1}`);
  });
});

test('a status held when the job is handed back (gearman_ret 14) should not be sent', async (t) => {
  let calls = 0;
  const r = await rig(t, {
    handler: () =>
      ++calls === 1
        ? // One write: the second status arrives well within 100 ms of the first, so it is held.
          { stream: [{ data: '{"status":[1,2]}\n{"status":[2,2]}\n{"gearman_ret":14}\n' }] }
        : { body: { gearman_ret: 0, response_string: 'ok' } },
  });
  const result = await r.client.submit(r.fn, 'w', { timeoutMs: 20_000 });
  assert.equal(result.outcome, 'complete');
  assert.equal(calls, 2, 'handed back once, then run again');
  assert.deepEqual(
    statuses(result.progress).map((s) => `${s.numerator}/${s.denominator}`),
    ['1/2'],
  );
});
