/**
 * The child's HTTP pool (src/child/http/http-client.ts) against a real endpoint: its connection cap,
 * the requests that wait for a connection, keep-alive reuse, a failed connection replaced, close and
 * destroy. The job runner's tests cover what an answer means; these cover how requests reach it.
 */
import assert from 'node:assert/strict';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import test from 'node:test';
import { HttpFailure, HttpPool } from '../../../src/child/http/http-client.js';
import type { HttpResponseListener } from '../../../src/child/http/http-client.js';
import { freePort } from '../../helpers/free-port.js';
import { startEndpoint } from '../../helpers/http-endpoint.js';
import { makeTestPki } from '../../helpers/tls-certs.js';
import { waitFor } from '../../helpers/wait-for.js';

interface Outcome {
  status: number;
  body: string;
  failure: { message: string; kind: HttpFailure } | null;
}

/** A listener that settles once its request ended either way. */
function collect(): { listener: HttpResponseListener; done: Promise<Outcome> } {
  let resolve!: (outcome: Outcome) => void;
  const done = new Promise<Outcome>((r) => {
    resolve = r;
  });
  let status = 0;
  const chunks: Buffer[] = [];
  return {
    done,
    listener: {
      onHeaders: (code) => {
        status = code;
      },
      onData: (chunk) => chunks.push(chunk),
      onEnd: () => resolve({ status, body: Buffer.concat(chunks).toString('utf8'), failure: null }),
      onFailure: (error, kind) => resolve({ status, body: '', failure: { message: error.message, kind } }),
    },
  };
}

function post(pool: HttpPool, body: string): Promise<Outcome> {
  const { listener, done } = collect();
  pool.dispatch({ path: '/job', method: 'POST', headers: ['content-type', 'text/plain'], body, closeConnection: false, serverName: undefined }, listener);
  return done;
}

test('HttpPool should run more requests than connections, each waiting for a free one, on at most `connections` sockets', async (t) => {
  const endpoint = await startEndpoint((req) => ({ delayMs: 50, body: { echo: req.body.toString() } }));
  t.after(() => endpoint.close());
  const pool = new HttpPool(new URL(endpoint.url).origin, { connections: 2 });
  t.after(() => pool.destroy());
  const outcomes = await Promise.all(Array.from({ length: 7 }, (_, i) => post(pool, `job ${i}`)));
  assert.deepEqual(
    outcomes.map((o) => [o.status, JSON.parse(o.body) as unknown]),
    Array.from({ length: 7 }, (_, i) => [200, { echo: `job ${i}` }]),
  );
  assert.equal(new Set(endpoint.requests.map((r) => r.socketId)).size, 2, 'two keep-alive connections carried all seven');
  // Never more than two at once: the third request arrived only after the first answer.
  const times = endpoint.requests.map((r) => r.receivedAt);
  assert.ok((times[2] as number) - (times[0] as number) >= 45, `requests 1 and 3 arrived ${(times[2] as number) - (times[0] as number)} ms apart`);
});

test('HttpPool should reuse the connection freed last and open no more than a light load needs', async (t) => {
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const pool = new HttpPool(new URL(endpoint.url).origin, { connections: 50 });
  t.after(() => pool.destroy());
  for (let i = 0; i < 20; i++) assert.equal((await post(pool, `one at a time ${i}`)).status, 200);
  assert.equal(endpoint.connections(), 1, 'one request at a time keeps to one connection');
});

test('HttpPool should replace a connection that failed and carry the next request on a new one', async (t) => {
  const port = await freePort();
  const pool = new HttpPool(`http://127.0.0.1:${port}`, { connections: 1 });
  t.after(() => pool.destroy());
  const refused = await post(pool, 'nobody listens');
  assert.equal(refused.failure?.kind, HttpFailure.CONNECT, `refused: ${JSON.stringify(refused.failure)}`);
  const endpoint = await startEndpoint(() => ({ body: { gearman_ret: 0, response_string: 'up now' } }), { port });
  t.after(() => endpoint.close());
  const answered = await post(pool, 'after the endpoint came up');
  assert.equal(answered.status, 200);
  assert.match(answered.body, /up now/);
});

test('HttpPool close should let running and waiting requests finish, then refuse new ones', async (t) => {
  const endpoint = await startEndpoint(() => ({ delayMs: 100, body: { gearman_ret: 0, response_string: 'late' } }));
  t.after(() => endpoint.close());
  const pool = new HttpPool(new URL(endpoint.url).origin, { connections: 1 });
  const running = post(pool, 'running');
  const waiting = post(pool, 'waiting');
  let closed = false;
  const closing = pool.close().then(() => {
    closed = true;
  });
  assert.throws(() => pool.dispatch({ path: '/job', method: 'POST', headers: [], body: 'x', closeConnection: false, serverName: undefined }, collect().listener), /closed/);
  assert.equal((await running).status, 200);
  assert.equal(closed, false, 'not closed while a request waits');
  assert.equal((await waiting).status, 200);
  await closing;
  assert.equal(endpoint.requests.length, 2);
});

test('HttpPool destroy should fail running and waiting requests at once', async (t) => {
  const endpoint = await startEndpoint(() => ({ delayMs: 60_000 }));
  t.after(() => endpoint.close());
  const pool = new HttpPool(new URL(endpoint.url).origin, { connections: 1 });
  const running = post(pool, 'running');
  const waiting = post(pool, 'waiting');
  await waitFor(() => endpoint.requests.length === 1 || undefined, { timeoutMs: 5000, message: 'the first request to arrive' });
  await pool.destroy();
  const [a, b] = await Promise.all([running, waiting]);
  assert.ok(a.failure !== null && b.failure !== null, `both failed: ${JSON.stringify([a, b])}`);
  assert.equal(b.failure?.kind, HttpFailure.CONNECT, 'the waiting one was never sent');
  assert.equal(endpoint.requests.length, 1);
});

test('HttpPool should speak HTTP/1.1 to an https endpoint that would take HTTP/2', async (t) => {
  const pki = makeTestPki((fn) => t.after(fn));
  const versions: string[] = [];
  // node:http2's server prefers h2 in TLS's ALPN and falls back to HTTP/1.1 for clients that offer only that.
  const server = createSecureServer({ key: pki.server.key, cert: pki.server.cert, allowHTTP1: true }, (req, res) => {
    versions.push(req.httpVersion);
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ gearman_ret: 0, response_string: 'ok' })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const pool = new HttpPool(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1, tls: { ca: pki.ca.cert } });
  t.after(() => pool.destroy());
  const answer = await post(pool, 'over TLS');
  assert.equal(answer.failure, null, `answered: ${JSON.stringify(answer.failure)}`);
  assert.equal(answer.status, 200);
  // The child does not load node:http2 for undici (http-client.ts): an HTTP/2 connection could not work.
  assert.deepEqual(versions, ['1.1']);
});
