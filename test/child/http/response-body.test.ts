/**
 * The bytes of a successful answer's response_string: exactly what the endpoint sent between the quotes
 * (JSON escapes decoded), invalid UTF-8 included; base64 on request; a clear failure when the bytes
 * cannot be given (lone surrogate escapes, bad base64, an unknown encoding).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { interpretBody } from '../../../src/child/http/answer.js';
import { rawResponseString } from '../../../src/child/http/response-body.js';
import { parseJsonJob } from '../../helpers/http-endpoint.js';
import { rig } from '../fixtures.js';

const run = promisify(execFile);

interface Fragment {
  /** As it appears in the body between the quotes. */
  raw: Buffer;
  /** What it stands for. */
  bytes: Buffer;
}

const text = (raw: string): Fragment => ({ raw: Buffer.from(raw), bytes: Buffer.from(JSON.parse(`"${raw}"`) as string) });
const rawBytes = (...bytes: number[]): Fragment => ({ raw: Buffer.from(bytes), bytes: Buffer.from(bytes) });

/** String contents that JSON.parse reads as well-formed text: every escape, structural characters, astral characters. */
const VALID_FRAGMENTS: Fragment[] = [
  ...['a', 'é', '☃', '😀', ' ', '}', ']', ',', ':', '{', '[', 'response_string'].map(text),
  ...['\\"', '\\\\', '\\/', '\\b', '\\f', '\\n', '\\r', '\\t', '\\u0000', '\\u00e9', '\\u20AC', '\\ud83d\\ude00', '\\uD83D\\uDE00'].map(text),
];
/** Bytes that are not UTF-8: lone continuation and lead bytes, never-valid bytes, an overlong form, WTF-8 of a surrogate. */
const INVALID_FRAGMENTS: Fragment[] = [rawBytes(0xff), rawBytes(0xfe), rawBytes(0x80), rawBytes(0xc3), rawBytes(0xe2, 0x98), rawBytes(0xc0, 0xaf), rawBytes(0xed, 0xa0, 0x80), rawBytes(0xf4, 0x90, 0x80, 0x80)];

/** Keys as written in the body, and whether each names response_string once decoded. */
const KEYS: Array<[string, boolean]> = [
  ['response_string', true],
  ['response\\u005fstring', true],
  ['\\u0072esponse_string', true],
  ['response_strin', false],
  ['response_string2', false],
  ['Response_string', false],
  ['x', false],
  ['response_encodin', false],
];

function lcg(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
}

interface Generated {
  body: Buffer;
  /** The last top-level response_string's bytes, or null when it is absent or not a string. */
  expected: Buffer | null;
  hasInvalid: boolean;
}

/**
 * A random JSON object answer: gearman_ret 0 somewhere, members with look-alike keys, nested objects and
 * arrays that hold response_string keys of their own, random whitespace, duplicate keys.
 */
function generate(random: (n: number) => number, invalid: boolean): Generated {
  let hasInvalid = false;
  const ws = (): string => [' ', '', '\n', '\t ', '\r\n'][random(5)] as string;
  const string = (): Fragment => {
    const parts: Fragment[] = [];
    for (let n = random(6); n > 0; n--) {
      const pool = invalid && random(3) === 0 ? INVALID_FRAGMENTS : VALID_FRAGMENTS;
      if (pool === INVALID_FRAGMENTS) hasInvalid = true;
      parts.push(pool[random(pool.length)] as Fragment);
    }
    return { raw: Buffer.concat([Buffer.from('"'), ...parts.map((p) => p.raw), Buffer.from('"')]), bytes: Buffer.concat(parts.map((p) => p.bytes)) };
  };
  const value = (depth: number): { raw: Buffer; bytes: Buffer | null } => {
    const kind = random(depth > 2 ? 3 : 5);
    if (kind === 0) return { raw: Buffer.from(['0', '-1.5e3', 'true', 'null', '12'][random(5)] as string), bytes: null };
    if (kind <= 2) return string();
    if (kind === 3) {
      const items: Buffer[] = [];
      for (let n = random(4); n > 0; n--) items.push(Buffer.concat([Buffer.from(ws()), value(depth + 1).raw, Buffer.from(ws())]));
      return { raw: Buffer.concat([Buffer.from('['), ...join(items), Buffer.from(']')]), bytes: null };
    }
    const members: Buffer[] = [];
    for (let n = random(4); n > 0; n--) {
      const [key] = KEYS[random(KEYS.length)] as [string, boolean];
      members.push(Buffer.concat([Buffer.from(`${ws()}"${key}"${ws()}:${ws()}`), value(depth + 1).raw, Buffer.from(ws())]));
    }
    return { raw: Buffer.concat([Buffer.from('{'), ...join(members), Buffer.from('}')]), bytes: null };
  };
  const members: Buffer[] = [];
  let expected: Buffer | null = null;
  const count = 1 + random(5);
  const retAt = random(count);
  for (let i = 0; i < count; i++) {
    if (i === retAt) members.push(Buffer.from(`${ws()}"gearman_ret"${ws()}:${ws()}0${ws()}`));
    const [key, isTarget] = KEYS[random(KEYS.length)] as [string, boolean];
    // Mostly a string, so that the last response_string usually is one.
    const member = isTarget && random(4) !== 0 ? string() : value(1);
    if (isTarget) expected = member.bytes;
    members.push(Buffer.concat([Buffer.from(`${ws()}"${key}"${ws()}:${ws()}`), member.raw, Buffer.from(ws())]));
  }
  return { body: Buffer.concat([Buffer.from(ws() + '{'), ...join(members), Buffer.from('}' + ws())]), expected, hasInvalid };
}

function join(parts: Buffer[]): Buffer[] {
  return parts.flatMap((part, i) => (i === 0 ? [part] : [Buffer.from(','), part]));
}

function resultOf(body: Buffer): string {
  const outcome = interpretBody(body);
  return outcome.kind === 'complete' ? `complete:${outcome.result.toString('hex')}` : outcome.kind;
}

test('rawResponseString should find the same member as JSON.parse in any valid UTF-8 body, and decode it to the same bytes', () => {
  const random = lcg(7);
  let strings = 0;
  for (let i = 0; i < 5000; i++) {
    const { body } = generate(random, false);
    const parsed = JSON.parse(body.toString('utf8')) as { response_string?: unknown };
    if (typeof parsed.response_string !== 'string') continue;
    strings++;
    const raw = rawResponseString(body);
    assert.ok(Buffer.isBuffer(raw), `${body.toString()}: ${String(raw)}`);
    assert.equal(raw.toString('hex'), Buffer.from(parsed.response_string).toString('hex'), body.toString());
  }
  assert.ok(strings > 1500, `only ${strings} bodies had a string response_string`);
});

test('interpretBody should agree with JSON.parse on every valid UTF-8 body', () => {
  const random = lcg(11);
  for (let i = 0; i < 5000; i++) {
    const { body, expected } = generate(random, false);
    const parsed = JSON.parse(body.toString('utf8')) as { response_string?: unknown };
    const reference = typeof parsed.response_string === 'string' ? `complete:${Buffer.from(parsed.response_string).toString('hex')}` : 'fail';
    assert.equal(resultOf(body), reference, body.toString());
    // The generator's own bookkeeping agrees with JSON.parse too, so it can be trusted below.
    assert.equal(expected === null ? 'fail' : `complete:${expected.toString('hex')}`, reference, body.toString());
  }
});

test('interpretBody should pass the bytes between the quotes through when the body is not valid UTF-8', () => {
  const random = lcg(13);
  let invalid = 0;
  for (let i = 0; i < 5000; i++) {
    const { body, expected, hasInvalid } = generate(random, true);
    if (hasInvalid) invalid++;
    assert.equal(resultOf(body), expected === null ? 'fail' : `complete:${expected.toString('hex')}`, body.toString('hex'));
  }
  assert.ok(invalid > 1500, `only ${invalid} bodies held invalid UTF-8`);
});

const complete = (body: Buffer | string): Buffer => {
  const outcome = interpretBody(Buffer.isBuffer(body) ? body : Buffer.from(body));
  assert.equal(outcome.kind, 'complete', JSON.stringify(outcome));
  return (outcome as { result: Buffer }).result;
};
const failure = (body: Buffer | string): string => {
  const outcome = interpretBody(Buffer.isBuffer(body) ? body : Buffer.from(body));
  assert.equal(outcome.kind, 'fail', JSON.stringify(outcome));
  assert.equal((outcome as { cause: string }).cause, 'http');
  return (outcome as { reason: string }).reason;
};
const bytes = (...parts: Array<string | number[] | Buffer>): Buffer => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

test('interpretBody should deliver "a\\xff\\xfeb" byte for byte, in the plain shape and in any other', () => {
  const ab = bytes('a', [0xff, 0xfe], 'b');
  assert.deepEqual(complete(bytes('{"gearman_ret":0,"response_string":"', ab, '"}')), ab);
  assert.deepEqual(complete(bytes('{ "gearman_ret": 0, "response_string": "', ab, '" }\n')), ab);
  assert.deepEqual(complete(bytes('{"response_string":"', ab, '","gearman_ret":0,"note":"', [0xc3], '"}')), ab);
  // Escapes around the invalid bytes are decoded; the invalid bytes are not touched.
  assert.deepEqual(complete(bytes('{"gearman_ret":0,"response_string":"\\"', ab, '\\n\\u00e9"}')), bytes('"', ab, '\n', [0xc3, 0xa9]));
});

test('interpretBody should keep U+0000 from a \\u0000 escape as one 0x00 byte, with or without invalid UTF-8 around it', () => {
  assert.deepEqual(complete('{"gearman_ret":0,"response_string":"a\\u0000b"}'), bytes('a', [0], 'b'));
  assert.deepEqual(complete(bytes('{"gearman_ret":0,"response_string":"', [0xff], '\\u0000"}')), bytes([0xff, 0]));
});

test('interpretBody should join escaped surrogate pairs into one UTF-8 character, with or without invalid UTF-8 around them', () => {
  const grin = Buffer.from('😀');
  assert.deepEqual(complete('{"gearman_ret":0,"response_string":"\\ud83d\\ude00"}'), grin);
  assert.deepEqual(complete(bytes('{"gearman_ret":0,"response_string":"', [0xff], '\\uD83D\\uDE00"}')), bytes([0xff], grin));
});

test('interpretBody should fail a lone surrogate escape with a reason instead of replacing it with U+FFFD', () => {
  for (const escape of ['\\ud800', '\\udfff', '\\ud83dx', '\\ude00\\ud83d', '\\ud83d\\u0041']) {
    const reason = failure(`{"gearman_ret":0,"response_string":"ok${escape}"}`);
    assert.match(reason, /lone UTF-16 surrogate escape \\u[0-9a-f]{4} at character 2, which is no character/, escape);
    const rawReason = failure(bytes('{"gearman_ret":0,"response_string":"', [0xff], `${escape}"}`));
    assert.match(rawReason, /lone UTF-16 surrogate escape \\u[0-9a-f]{4} at byte 1, which is no character/, escape);
  }
  // Raw WTF-8 bytes are not an escape: they are bytes the endpoint sent, and pass through.
  assert.deepEqual(complete(bytes('{"gearman_ret":0,"response_string":"', [0xed, 0xa0, 0x80], '"}')), Buffer.from([0xed, 0xa0, 0x80]));
});

test('interpretBody should take the last response_string of duplicate keys, as JSON.parse does, and ignore nested ones', () => {
  const body = bytes('{"response_string":"first', [0xff], '","gearman_ret":0,"inner":{"response_string":"nested', [0xfe], '"},"response\\u005fstring":"last', [0xfd], '"}');
  assert.deepEqual(complete(body), bytes('last', [0xfd]));
  // A later non-string duplicate wins too, and is not a string.
  assert.match(failure(bytes('{"gearman_ret":0,"response_string":"x', [0xff], '","response_string":null}')), /response_string is not a string \(null\)/);
});

test('interpretBody should base64-decode response_string when response_encoding is "base64"', () => {
  const binary = Buffer.from([0x00, 0xff, 0x00, 0xfe, 0x80, 0x00, 0x41, 0x00]);
  const answer = (encoded: string, extra = ''): string => `{"gearman_ret":0,"response_string":${JSON.stringify(encoded)},"response_encoding":"base64"${extra}}`;
  assert.deepEqual(complete(answer(binary.toString('base64'))), binary);
  assert.deepEqual(complete(answer(binary.toString('base64').replace(/=+$/, ''))), binary, 'padding is optional');
  assert.deepEqual(complete(answer('AP8A\r\n/oAA\nQQA=')), binary, 'MIME line breaks are ignored');
  assert.deepEqual(complete(answer('')), Buffer.alloc(0));
  assert.deepEqual(complete(`{"response_encoding":"base64","gearman_ret":0,"response_string":"AP8A\\/oAAQQA="}`), binary, 'escaped "/" decodes first');
  const big = Buffer.alloc(3 * 1024 * 1024, 0);
  big[big.length - 1] = 0xff;
  assert.deepEqual(complete(answer(big.toString('base64'))), big);
});

test('interpretBody should fail base64 that is not base64, and any other response_encoding, with the reason', () => {
  const answer = (encoded: string): string => `{"gearman_ret":0,"response_string":${JSON.stringify(encoded)},"response_encoding":"base64"}`;
  assert.match(failure(answer('AP8A-oAA')), /response_string is not valid base64: "-" at character 4/);
  assert.match(failure(answer('AP8A_oAA')), /"_" at character 4/);
  assert.match(failure(answer('AP=A')), /"=" at character 2/);
  assert.match(failure(answer('AP8AA')), /5 base64 characters cannot encode whole bytes/);
  assert.match(failure(bytes('{"gearman_ret":0,"response_encoding":"base64","response_string":"AP8', [0xff], '"}')), /"\\ufffd" at character 3|"\uFFFD" at character 3/);
  for (const encoding of ['"hex"', '"BASE64"', 'null', '1', '{}']) {
    assert.match(failure(`{"gearman_ret":0,"response_string":"x","response_encoding":${encoding}}`), new RegExp(`response_encoding ${encoding.replace(/[{}]/g, '\\$&')} is not supported \\(the only encoding is "base64"\\)`), encoding);
  }
  // Only a success reads response_string, so only a success reads its encoding.
  assert.deepEqual(interpretBody(Buffer.from('{"gearman_ret":14,"response_encoding":"hex"}')), { kind: 'requeue' });
});

test('WorkerPool should hand the endpoint\'s "a\\xff\\xfeb" to the gearman CLI byte for byte, and base64 binary to a client', async (t) => {
  const ab = bytes('a', [0xff, 0xfe], 'b');
  const binary = Buffer.from([0x00, 0xff, 0x00, 0x0a, 0xfe, 0x00]);
  const r = await rig(t, {
    handler: (req) =>
      parseJsonJob(req.body).workload === 'binary'
        ? { body: { gearman_ret: 0, response_string: binary.toString('base64'), response_encoding: 'base64' } }
        : { body: bytes('{"gearman_ret":0,"response_string":"', ab, '"}'), headers: { 'content-type': 'application/json' } },
  });
  const { stdout } = await run('gearman', ['-h', '127.0.0.1', '-p', String(r.gearmand.port), '-f', r.fn, 'payload'], { timeout: 10_000, encoding: 'buffer' });
  assert.equal(stdout.toString('hex'), ab.toString('hex'));
  const result = await r.client.submit(r.fn, 'binary');
  assert.equal(result.outcome, 'complete');
  assert.equal(result.result?.toString('hex'), binary.toString('hex'));
  assert.equal(r.logger.find('job failed').length, 0);
});
