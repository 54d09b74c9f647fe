/**
 * What the endpoint receives (docs/http-contract.md: request formats, binary workloads, headers, keep-alive) and
 * volume: every job answered exactly once.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { interpretBody } from '../../src/child/http/answer.js';
import { parseJsonJob, parseMultipart } from '../helpers/http-endpoint.js';
import { rig } from './fixtures.js';

const run = promisify(execFile);

const WORKLOADS: Array<[string, Buffer]> = [
  ['plain text', Buffer.from('[1,2]')],
  ['NUL bytes', Buffer.from([0x61, 0x00, 0x62, 0x00, 0x00, 0x63])],
  ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80, 0x41])],
  ['empty', Buffer.alloc(0)],
  ['1 MiB of random bytes', randomBytes(1024 * 1024)],
  ['1 MiB of valid UTF-8', Buffer.from('é☃x'.repeat(1024 * 1024 / 6 + 1), 'utf8')],
];

test('interpretBody should classify bodies exactly as the outcome table of the HTTP contract', () => {
  const body = (text: string): Buffer => Buffer.from(text);
  assert.deepEqual(interpretBody(body('{"gearman_ret":0,"response_string":"3"}')), { kind: 'complete', result: body('3') });
  assert.deepEqual(interpretBody(body('{"gearman_ret":14}')), { kind: 'requeue' });
  assert.equal(interpretBody(body('{"gearman_ret":2}')).kind, 'fail');
  for (const bad of ['[]', '[1]', 'null', '3', '"x"', '{', '', '{"gearman_ret":"0","response_string":"x"}', '{"gearman_ret":2147483648}', '{"gearman_ret":-2147483649}', '{"gearman_ret":0}', '{"gearman_ret":0,"response_string":{}}']) {
    const outcome = interpretBody(body(bad));
    assert.equal(outcome.kind, 'fail', bad);
    assert.equal(outcome.kind === 'fail' && outcome.cause, 'http', bad);
  }
  assert.equal(interpretBody(body('{"gearman_ret":-2147483648}')).kind, 'fail');
});

test('interpretBody should give the bytes JSON.parse would for any success body (its no-parse fast path included)', () => {
  // Reference: the HTTP contract's rule spelled out, parse then encode. A body that is not UTF-8 delivers the
  // bytes between the quotes: with this alphabet (escapes only of ASCII) that is its latin1 reading.
  const reference = (body: Buffer): string => {
    try {
      const encoding = isUtf8(body) ? 'utf8' : 'latin1';
      const parsed = JSON.parse(body.toString(encoding)) as { gearman_ret?: unknown; response_string?: unknown };
      return parsed.gearman_ret === 0 && typeof parsed.response_string === 'string' ? `complete:${Buffer.from(parsed.response_string, encoding).toString('hex')}` : 'other';
    } catch {
      return 'other';
    }
  };
  const actual = (body: Buffer): string => {
    const outcome = interpretBody(body);
    return outcome.kind === 'complete' ? `complete:${outcome.result.toString('hex')}` : 'other';
  };
  // Bytes that matter to a JSON string: quote, backslash, control characters, ASCII, UTF-8 lead and
  // continuation bytes, bytes never valid in UTF-8, and whole multi-byte characters.
  const alphabet = [0x22, 0x5c, 0x00, 0x0a, 0x1f, 0x20, 0x41, 0x7f, 0x80, 0xbf, 0xc3, 0xe2, 0xed, 0xf0, 0xff];
  const pieces = [...alphabet.map((b) => Buffer.from([b])), Buffer.from('é☃😀'), Buffer.from('\\u0041'), Buffer.from('\\"'), Buffer.from('\\n')];
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const head = Buffer.from('{"gearman_ret":0,"response_string":"');
  let fast = 0;
  for (let i = 0; i < 5000; i++) {
    const parts: Buffer[] = [];
    for (let n = random(8); n > 0; n--) parts.push(pieces[random(pieces.length)] as Buffer);
    const body = Buffer.concat([head, ...parts, Buffer.from('"}')]);
    assert.equal(actual(body), reference(body), body.toString('hex'));
    if (!parts.some((p) => p.includes(0x5c) || p.includes(0x22) || p.some((b) => b < 0x20))) fast++;
  }
  assert.ok(fast > 100, `the plain (fast-path) shape was generated ${fast} times`);
  // Near misses of the exact shape go through the parser and still agree.
  for (const text of ['{"gearman_ret":0,"response_string":"x"} ', '{"gearman_ret":0, "response_string":"x"}', '{"gearman_ret":0,"response_string":"x"', '{"gearman_ret":0,"response_string":""}', '{"gearman_ret":0,"response_string":"x","extra":1}']) {
    assert.equal(actual(Buffer.from(text)), reference(Buffer.from(text)), text);
  }
});

for (const format of ['json', 'multipart'] as const) {
  test(`WorkerPool (${format}) should deliver binary workloads to the endpoint intact`, async (t) => {
    const r = await rig(t, {
      pool: { requestFormat: format, headers: { authorization: 'Bearer s3cret', 'x-pool': 'binary' } },
      handler: () => ({ body: { gearman_ret: 0, response_string: 'ok' } }),
    });
    for (const [name, workload] of WORKLOADS) {
      const before = r.endpoint.requests.length;
      const unique = `u-${name.replace(/\W/g, '')}`;
      const result = await r.client.submit(r.fn, workload, { unique });
      assert.equal(result.outcome, 'complete', name);
      const request = r.endpoint.requests[before];
      assert.ok(request !== undefined, name);
      assert.equal(request.method, 'POST');
      assert.equal(request.url, '/job');
      assert.equal(request.headers.authorization, 'Bearer s3cret');
      assert.equal(request.headers['x-pool'], 'binary');
      const contentType = String(request.headers['content-type']);
      if (format === 'json') {
        assert.equal(contentType, 'application/json', name);
        const job = parseJsonJob(request.body);
        assert.equal(job.function_name, r.fn);
        assert.equal(job.job_handle, result.handle);
        assert.equal(job.unique, unique);
        assert.ok(job.workloadBytes.equals(workload), `${name}: workload differs`);
        const utf8 = Buffer.from(workload.toString('utf8'), 'utf8').equals(workload);
        assert.equal(job.workload_encoding, utf8 ? undefined : 'base64', name);
      } else {
        const parts = parseMultipart(request.body, contentType);
        assert.deepEqual(parts.map((p) => p.name), ['function_name', 'job_handle', 'unique', 'workload'], name);
        for (const part of parts) {
          assert.deepEqual(Object.keys(part.headers), ['content-disposition'], `${name}: part ${part.name} has only Content-Disposition`);
          assert.equal(part.headers['content-disposition'], `form-data; name="${part.name}"`);
        }
        assert.equal(parts[0]?.data.toString(), r.fn);
        assert.equal(parts[1]?.data.toString(), result.handle);
        assert.equal(parts[2]?.data.toString(), unique);
        assert.ok(parts[3]?.data.equals(workload), `${name}: workload differs`);
      }
    }
  });
}

test('WorkerPool should send an empty unique when the client sent none', async (t) => {
  const r = await rig(t);
  await r.client.submit(r.fn, 'x', { unique: '' });
  assert.equal(parseJsonJob(r.endpoint.requests[0]?.body ?? Buffer.alloc(0)).unique, '');
});

test('WorkerPool should answer the gearman CLI (the original\'s client)', async (t) => {
  const r = await rig(t, {
    handler: (req) => ({ body: { gearman_ret: 0, response_string: `got ${parseJsonJob(req.body).workload}` } }),
  });
  const { stdout } = await run('gearman', ['-h', '127.0.0.1', '-p', String(r.gearmand.port), '-f', r.fn, 'payload'], { timeout: 10_000 });
  assert.equal(stdout.trim(), 'got payload');
  const unique = parseJsonJob(r.endpoint.requests[0]?.body ?? Buffer.alloc(0)).unique;
  assert.match(unique, /^[0-9a-f-]{36}$/, 'libgearman clients send a UUID as unique');
});

test('WorkerPool should reuse one keep-alive connection for every job of one slot', async (t) => {
  const r = await rig(t);
  for (let i = 0; i < 25; i++) assert.equal((await r.client.submit(r.fn, `job ${i}`)).outcome, 'complete');
  assert.equal(r.endpoint.requests.length, 25);
  assert.equal(r.endpoint.connections(), 1);
  assert.equal(new Set(r.endpoint.requests.map((req) => req.socketId)).size, 1);
});

test('WorkerPool should answer 1,000 jobs through 10 slots exactly once each', async (t) => {
  const r = await rig(t, {
    pool: { workerCount: 10 },
    handler: (req) => ({ body: { gearman_ret: 0, response_string: `done:${parseJsonJob(req.body).workload}` } }),
  });
  const submits: Array<Promise<{ outcome: string | undefined; result?: Buffer }>> = [];
  for (let i = 0; i < 1000; i++) submits.push(r.client.submit(r.fn, `w${i}`, { unique: `job-${i}` }));
  const results = await Promise.all(submits);
  results.forEach((result, i) => {
    assert.equal(result.outcome, 'complete');
    assert.equal(result.result?.toString(), `done:w${i}`, `job ${i} got another job's answer`);
  });
  const handles = r.endpoint.requests.map((req) => parseJsonJob(req.body).job_handle);
  assert.equal(handles.length, 1000, 'the endpoint saw every job once');
  assert.equal(new Set(handles).size, 1000);
  assert.ok(r.endpoint.connections() <= 10, `${r.endpoint.connections()} HTTP connections for 10 slots`);
  const status = r.pool.status();
  assert.equal(status.counters.jobs_completed, 1000);
  assert.equal(status.counters.jobs_failed, 0);
  assert.equal(status.slots.length, 10);
  assert.ok(status.slots.every((slot) => slot.job === null && slot.connectedServers === 1));
});

test('WorkerPool should deliver a 1 MiB result (written uncopied after its head) intact', async (t) => {
  const big = 'é☃\u0000x'.repeat(128 * 1024);
  const r = await rig(t, { handler: () => ({ body: { gearman_ret: 0, response_string: big } }) });
  for (let i = 0; i < 3; i++) {
    const result = await r.client.submit(r.fn, `w${i}`);
    assert.equal(result.outcome, 'complete');
    assert.ok(result.result?.equals(Buffer.from(big, 'utf8')), 'the result differs');
  }
});
