/**
 * Endpoint faults the job runner must name, not just pass on: a response head the HTTP parser refuses
 * after a Content-Length header (which undici reports as a body length mismatch), and an endpoint that
 * speaks only TLS versions Node no longer offers, whether it answers with an alert (a real TLS 1.0
 * server) or drops the connection (a raw server: no real one at hand does that). Raw servers only for
 * what a real HTTP server refuses to send.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer as createHttpsServer } from 'node:https';
import net from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { LEGACY_TLS_NODE_OPTIONS } from '../../../src/child/http/endpoint-security.js';
import { JobRunner } from '../../../src/child/http/job-runner.js';
import type { Job, JobOutcome } from '../../../src/child/job.js';
import type { PoolTls } from '../../../src/config/types.js';
import { makeTestPki } from '../../helpers/tls-certs.js';
import type { TestPki } from '../../helpers/tls-certs.js';

const run = promisify(execFile);
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function testJob(): Job {
  const handle = Buffer.from('H:test:1');
  const unique = Buffer.from('u-1');
  return { handle, handleText: 'H:test:1', functionName: 'Sum', functionBytes: Buffer.from('Sum'), unique, uniqueText: 'u-1', workload: Buffer.from('[1,2]'), server: 'test' };
}

function runner(t: TestContext, uri: string, tls: PoolTls | null = null): JobRunner {
  const jobRunner = new JobRunner({ uri, format: 'json', headers: {}, maxRunningTimeMs: 10_000, connections: 1, tls });
  t.after(() => jobRunner.destroy());
  return jobRunner;
}

/** One attempt's outcome (the runner settles every attempt exactly once). */
function attempt(jobRunner: JobRunner): Promise<JobOutcome> {
  return new Promise((resolve) => {
    jobRunner.start(testJob(), { onJobOutcome: resolve, onJobProgress: () => undefined }, { attempt: 1, firstAttemptAt: Date.now() }, TRACEPARENT);
  });
}

function reasonOf(outcome: JobOutcome): string {
  return outcome.kind === 'fail' || outcome.kind === 'transient' ? outcome.reason : `(${outcome.kind})`;
}

/** A TCP server on a free loopback port that hands each connection's first bytes to `onData`. */
async function rawServer(t: TestContext, onData: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => onData(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

function poolTls(pki: TestPki): PoolTls {
  return { ca: pki.ca.cert, caFile: pki.ca.certFile, cert: null, certFile: null, key: null, keyFile: null, serverName: null };
}

/** A real https endpoint that speaks TLS 1.0 only (security level 0: OpenSSL 3 refuses TLS 1.0 otherwise). */
async function tls10Endpoint(t: TestContext, pki: TestPki): Promise<string> {
  const server = createHttpsServer({ key: pki.server.key, cert: pki.server.cert, minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"gearman_ret":0,"response_string":"3"}'));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/job`;
}

const MALFORMED_AFTER_CONTENT_LENGTH: Array<[string, string]> = [
  ['two identical Content-Length headers', 'Content-Length: 5\r\nContent-Length: 5'],
  ['two different Content-Length headers', 'Content-Length: 5\r\nContent-Length: 6'],
  ['a Content-Length list', 'Content-Length: 5, 5'],
  ['Content-Length, then Transfer-Encoding', 'Content-Length: 5\r\nTransfer-Encoding: chunked'],
];

test('JobRunner should name a response head refused at or after its Content-Length header, not report a body length mismatch', async (t) => {
  for (const [name, headers] of MALFORMED_AFTER_CONTENT_LENGTH) {
    const port = await rawServer(t, (socket) => socket.write(`HTTP/1.1 200 OK\r\n${headers}\r\n\r\nhello`));
    const outcome = await attempt(runner(t, `http://127.0.0.1:${port}/job`));
    assert.equal(outcome.kind, 'transient', name);
    const reason = reasonOf(outcome);
    assert.match(reason, /^request failed: the endpoint's response head is not valid HTTP\/1\.1: the parser refused it at or after its Content-Length header \(a second Content-Length, refused even when both agree;/, `${name}: ${reason}`);
    assert.match(reason, /which undici reports as UND_ERR_RES_CONTENT_LENGTH_MISMATCH: /, name);
  }
  // A header the parser refuses before any Content-Length keeps llhttp's own reason.
  const port = await rawServer(t, (socket) => socket.write('HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 5\r\n\r\nhello'));
  const reason = reasonOf(await attempt(runner(t, `http://127.0.0.1:${port}/job`)));
  assert.match(reason, /Invalid header value char/, reason);
  assert.doesNotMatch(reason, /Content-Length header/, reason);
});

test('JobRunner should say which TLS versions it offers, and what to set, when an endpoint speaks only TLS 1.0; the option it names should work', async (t) => {
  const pki = makeTestPki((fn) => t.after(fn));
  const url = await tls10Endpoint(t, pki);
  const outcome = await attempt(runner(t, url, poolTls(pki)));
  assert.equal(outcome.kind, 'transient');
  const reason = reasonOf(outcome);
  assert.match(reason, /^request failed: ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: [^\n]*alert protocol version[^\n]*; the endpoint supports none of the TLS versions driveshaft offers \(TLSv1\.2 to TLSv1\.3, Node's minimum and maximum\); if it speaks only TLS 1\.0 or 1\.1, upgrade its TLS, or if you must/, reason);
  assert.ok(reason.includes(`start driveshaft with NODE_OPTIONS="${LEGACY_TLS_NODE_OPTIONS}"`), reason);

  // The advice, taken: a process started with those options completes the job against the same endpoint.
  const script = `
    import { JobRunner } from ${JSON.stringify(new URL('../../../src/child/http/job-runner.js', import.meta.url).href)};
    const runner = new JobRunner({ uri: process.env.URI, format: 'json', headers: {}, maxRunningTimeMs: 10000, connections: 1, tls: JSON.parse(process.env.POOL_TLS) });
    const job = { handle: Buffer.from('H:1'), handleText: 'H:1', functionName: 'Sum', functionBytes: Buffer.from('Sum'), unique: Buffer.from('u'), uniqueText: 'u', workload: Buffer.from('[1,2]'), server: 'test' };
    runner.start(job, { onJobOutcome: (outcome) => { console.log(JSON.stringify({ kind: outcome.kind, reason: outcome.reason, result: outcome.result?.toString() })); void runner.destroy(); }, onJobProgress() {} }, { attempt: 1, firstAttemptAt: Date.now() }, ${JSON.stringify(TRACEPARENT)});
  `;
  const env = { ...process.env, URI: url, POOL_TLS: JSON.stringify(poolTls(pki)), NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} ${LEGACY_TLS_NODE_OPTIONS}` };
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env, timeout: 30_000 });
  assert.deepEqual(JSON.parse(stdout), { kind: 'complete', result: '3' });
});

test('JobRunner should give the same advice when an endpoint drops the connection during the TLS handshake, and not for a reset after it', async (t) => {
  // Some TLS stacks drop a ClientHello whose versions they do not support instead of sending an alert.
  const port = await rawServer(t, (socket) => socket.resetAndDestroy());
  const reason = reasonOf(await attempt(runner(t, `https://127.0.0.1:${port}/job`)));
  assert.match(reason, /^request failed: ECONNRESET: [^\n]*; the endpoint dropped the connection during the TLS handshake; if it speaks only TLS 1\.0 or 1\.1 \(driveshaft offers TLSv1\.2 to TLSv1\.3, Node's minimum and maximum\), upgrade its TLS/, reason);
  assert.ok(reason.includes(LEGACY_TLS_NODE_OPTIONS), reason);

  // A reset once the request was sent over a completed handshake says nothing about TLS versions.
  const pki = makeTestPki((fn) => t.after(fn));
  const sockets: net.Socket[] = [];
  let requests = 0;
  const server = createHttpsServer({ key: pki.server.key, cert: pki.server.cert }, () => {
    requests++;
    // The TCP socket under the TLS one: a TLS socket cannot send a reset itself.
    sockets.shift()?.resetAndDestroy();
  });
  server.on('connection', (socket: net.Socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const after = reasonOf(await attempt(runner(t, `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/job`, poolTls(pki))));
  assert.equal(requests, 1, 'the request reached the endpoint');
  assert.match(after, /^request failed: ECONNRESET: /, after);
  assert.doesNotMatch(after, /TLS/, after);
});
