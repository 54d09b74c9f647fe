/**
 * The streamed answer's line protocol, chunk boundaries included: what is forwarded as it arrives,
 * what the final line is, and every way a stream is refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { interpretAnswer } from '../../../src/child/http/answer.js';
import { NdjsonAnswer, isNdjsonResponse } from '../../../src/child/http/ndjson-answer.js';
import type { FinalLine, ProgressUpdate } from '../../../src/child/http/ndjson-answer.js';

function feed(chunks: Array<string | Buffer>): { updates: ProgressUpdate[]; problem: string | null; final: FinalLine | string | null } {
  const updates: ProgressUpdate[] = [];
  const answer = new NdjsonAnswer((update) => updates.push(update));
  for (const chunk of chunks) {
    const problem = answer.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (problem !== null) return { updates, problem, final: null };
  }
  return { updates, problem: null, final: answer.end() };
}

test('NdjsonAnswer should forward status, data and warning lines in order and keep the gearman_ret line', () => {
  const { updates, problem, final } = feed(['{"status":[1,4]}\n{"data":"part é"}\n', '{"warning":"slow"}\r\n\n', '{"gearman_ret":0,"response_string":"done"}\n']);
  assert.equal(problem, null);
  assert.deepEqual(updates, [
    { kind: 'status', numerator: 1, denominator: 4 },
    { kind: 'data', data: Buffer.from('part é') },
    { kind: 'warning', data: Buffer.from('slow') },
  ]);
  assert.ok(typeof final === 'object' && final !== null);
  assert.deepEqual(interpretAnswer(final.line, final.parsed), { kind: 'complete', result: Buffer.from('done') });
});

test('NdjsonAnswer should join lines split across chunks, byte by byte, and take a last line without newline', () => {
  const text = '{"status":[2,3]}\n{"data":"☃"}\n{"gearman_ret":0,"response_string":"ok"}';
  const bytes = Buffer.from(text);
  const chunks = [...bytes].map((byte) => Buffer.from([byte]));
  const { updates, problem, final } = feed(chunks);
  assert.equal(problem, null);
  assert.deepEqual(updates, [
    { kind: 'status', numerator: 2, denominator: 3 },
    { kind: 'data', data: Buffer.from('☃') },
  ]);
  assert.ok(typeof final === 'object' && final !== null);
  assert.deepEqual(interpretAnswer(final.line, final.parsed), { kind: 'complete', result: Buffer.from('ok') });
});

test('NdjsonAnswer should forward each update as soon as its line is complete', () => {
  const updates: ProgressUpdate[] = [];
  const answer = new NdjsonAnswer((update) => updates.push(update));
  answer.push(Buffer.from('{"status":[1,2]}\n{"status":'));
  assert.equal(updates.length, 1);
  answer.push(Buffer.from('[2,2]}\n'));
  assert.equal(updates.length, 2);
});

test('NdjsonAnswer should send several members of one progress line as status, data, warning', () => {
  const { updates } = feed(['{"warning":"w","data":"d","status":[0,0],"other":1}\n{"gearman_ret":0,"response_string":""}\n']);
  assert.deepEqual(
    updates.map((u) => u.kind),
    ['status', 'data', 'warning'],
  );
});

test('NdjsonAnswer should refuse malformed streams with a reason naming the line', () => {
  const cases: Array<[string[], RegExp]> = [
    [['not json\n'], /line 1 of the application\/x-ndjson answer is not JSON/],
    [['{"status":[1,2]}\n[1]\n'], /line 2 .* is not a JSON object/],
    [['{"progress":1}\n'], /line 1 .* has none of gearman_ret, status, data and warning/],
    [['{"status":[1]}\n'], /status must be \[numerator, denominator\]/],
    [['{"status":[-1,2]}\n'], /status must be/],
    [['{"status":[1.5,2]}\n'], /status must be/],
    [['{"data":5}\n'], /data must be a string/],
    [['{"warning":null}\n'], /warning must be a string/],
    [['{"gearman_ret":0,"response_string":"a"}\n{"data":"late"}\n'], /line 2 .* follows the final line with gearman_ret/],
  ];
  for (const [chunks, reason] of cases) {
    const { problem } = feed(chunks);
    assert.match(problem ?? '', reason, JSON.stringify(chunks));
  }
  const { final } = feed(['{"status":[1,2]}\n\n']);
  assert.equal(final, 'the application/x-ndjson answer ended after 2 lines without a line with gearman_ret');
});

test('NdjsonAnswer should not forward a progress line that is itself invalid', () => {
  const { updates, problem } = feed(['{"status":[1,2],"data":7}\n']);
  assert.match(problem ?? '', /data must be a string/);
  assert.deepEqual(updates, []);
});

test('interpretAnswer on a final line should keep every outcome of a plain answer, exception included', () => {
  const line = (text: string): FinalLine => ({ line: Buffer.from(text), parsed: JSON.parse(text) as unknown });
  const fail = line('{"gearman_ret":1,"exception":"boom"}');
  const outcome = interpretAnswer(fail.line, fail.parsed);
  assert.equal(outcome.kind, 'fail');
  assert.deepEqual(outcome.kind === 'fail' ? outcome.exception : null, Buffer.from('boom'));
  const requeue = line('{"gearman_ret":14}');
  assert.deepEqual(interpretAnswer(requeue.line, requeue.parsed), { kind: 'requeue' });
});

test('isNdjsonResponse should read the content-type media type, case-insensitively, with parameters', () => {
  const headers = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p, 'latin1'));
  assert.equal(isNdjsonResponse(headers('Date', 'x', 'Content-Type', 'application/x-ndjson')), true);
  assert.equal(isNdjsonResponse(headers('content-type', 'Application/X-NDJSON; charset=utf-8')), true);
  assert.equal(isNdjsonResponse(headers('content-type', 'application/json')), false);
  assert.equal(isNdjsonResponse(headers('x-content-typ', 'application/x-ndjson')), false);
  assert.equal(isNdjsonResponse([]), false);
});
