/**
 * Endpoint security against real peers: a real gearmand, a real https endpoint whose certificates a
 * private CA made with openssl signs, and the Standard Webhooks reference verifier (the
 * `standardwebhooks` package) checking every signature driveshaft sends.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { RequestSigner, webhookId } from '../../src/child/http/endpoint-security.js';
import { decodeSigningSecret } from '../../src/config/security.js';
import { DEFAULT_DELIVERY, DeliveryMode } from '../../src/config/types.js';
import type { PoolTls } from '../../src/config/types.js';
import type { RecordedRequest } from '../helpers/http-endpoint.js';
import { makeTestPki } from '../helpers/tls-certs.js';
import type { TestPki } from '../helpers/tls-certs.js';
import { rig } from './fixtures.js';

const FAIL_FAST = { ...DEFAULT_DELIVERY, mode: DeliveryMode.FAIL_FAST };

/** The published Standard Webhooks test vector (spec/standard-webhooks.md and every reference library's tests). */
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: '1614265330',
  payload: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function keyOf(secret: string): string {
  const decoded = decodeSigningSecret(secret);
  if (!('key' in decoded)) throw new Error(decoded.problem);
  return decoded.key;
}

function headersOf(request: RecordedRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (typeof value === 'string') headers[name] = value;
  return headers;
}

/** An independent verifier over raw bytes (the reference package decodes the body as UTF-8 first). */
function verifiesRaw(secret: string, request: RecordedRequest): boolean {
  const id = request.headers['webhook-id'] as string;
  const timestamp = request.headers['webhook-timestamp'] as string;
  const mac = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
    .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`, 'latin1'), request.body]))
    .digest('base64');
  return (request.headers['webhook-signature'] as string).split(' ').includes(`v1,${mac}`);
}

function poolTls(pki: TestPki, parts: { ca?: boolean; client?: boolean; serverName?: string }): PoolTls {
  return {
    ca: parts.ca === true ? pki.ca.cert : null,
    caFile: parts.ca === true ? pki.ca.certFile : null,
    cert: parts.client === true ? pki.client.cert : null,
    certFile: parts.client === true ? pki.client.certFile : null,
    key: parts.client === true ? pki.client.key : null,
    keyFile: parts.client === true ? pki.client.keyFile : null,
    serverName: parts.serverName ?? null,
  };
}

test('RequestSigner should reproduce the Standard Webhooks test vector', () => {
  const signer = new RequestSigner([keyOf(VECTOR.secret)]);
  assert.equal(signer.sign(VECTOR.id, VECTOR.timestamp, VECTOR.payload), VECTOR.signature);
  // The same bytes as a buffer, and split the way a large multipart body is sent.
  assert.equal(signer.sign(VECTOR.id, VECTOR.timestamp, Buffer.from(VECTOR.payload)), VECTOR.signature);
  const bytes = Buffer.from(VECTOR.payload);
  assert.equal(signer.sign(VECTOR.id, VECTOR.timestamp, [bytes.subarray(0, 5), bytes.subarray(5, 6), bytes.subarray(6)]), VECTOR.signature);
  // Two keys: one entry each, in order, separated by a space.
  const other = newSecret();
  const both = new RequestSigner([keyOf(VECTOR.secret), keyOf(other)]).sign(VECTOR.id, VECTOR.timestamp, VECTOR.payload);
  assert.equal(both.split(' ')[0], VECTOR.signature);
  assert.equal(both.split(' ').length, 2);
});

test('webhookId should be the unique, else the handle, with bytes a header or the scheme cannot carry percent-encoded', () => {
  assert.equal(webhookId(Buffer.from('order-42'), Buffer.from('H:gm:1')), 'order-42');
  assert.equal(webhookId(Buffer.alloc(0), Buffer.from('H:gm:1')), 'H:gm:1');
  assert.equal(webhookId(Buffer.from('a.b c%\n\xff', 'latin1'), Buffer.from('H:gm:1')), 'a%2Eb%20c%25%0A%FF');
  assert.equal(webhookId(Buffer.alloc(0), Buffer.from('H:gearmand.example:7')), 'H:gearmand%2Eexample:7');
});

test('a signing pool should sign every POST so the reference verifier accepts it with either rotated secret, and redeliveries keep the webhook-id', async (t) => {
  const current = newSecret();
  const retiring = newSecret();
  let calls = 0;
  const r = await rig(t, {
    pool: { signingKeys: [keyOf(current), keyOf(retiring)], delivery: { ...DEFAULT_DELIVERY, minBackoffMs: 10, maxBackoffMs: 10 } },
    // The first POST of the "flaky" job is answered 503: its retry must carry the same webhook-id.
    handler: (request) => (request.body.includes('flaky') && calls++ === 0 ? { status: 503 } : { body: { gearman_ret: 0, response_string: 'ok' } }),
  });
  const plain = await r.client.submit(r.fn, 'héllo wörld', { unique: 'order.42' });
  assert.equal(plain.outcome, 'complete');
  const flaky = await r.client.submit(r.fn, 'flaky', { unique: '' });
  assert.equal(flaky.outcome, 'complete');

  const [first, retry1, retry2] = r.endpoint.requests;
  assert.ok(first !== undefined && retry1 !== undefined && retry2 !== undefined);
  for (const request of r.endpoint.requests) {
    for (const secret of [current, retiring]) {
      const verified = new Webhook(secret).verify(request.body, headersOf(request)) as { workload: string };
      assert.equal(typeof verified.workload, 'string');
    }
    assert.throws(() => new Webhook(newSecret()).verify(request.body, headersOf(request)), /No matching signature/);
    const timestamp = Number(request.headers['webhook-timestamp']);
    assert.ok(Math.abs(timestamp - Date.now() / 1000) < 5, `webhook-timestamp ${timestamp} is the time of the attempt`);
  }
  assert.equal(first.headers['webhook-id'], 'order%2E42');
  // Without a unique the handle is the id, the same on the retry.
  assert.equal(retry1.headers['webhook-id'], webhookId(Buffer.alloc(0), Buffer.from(flaky.handle)));
  assert.equal(retry2.headers['webhook-id'], retry1.headers['webhook-id']);
  assert.equal(retry2.headers['driveshaft-attempt'], '2');

  // A tampered body fails the reference verifier.
  assert.throws(() => new Webhook(current).verify(Buffer.from(first.body.toString().replace('wörld', 'world')), headersOf(first)), /No matching signature/);
});

test('a signing multipart pool should sign the exact bytes sent, small and large (streamed) workloads alike', async (t) => {
  const secret = newSecret();
  const r = await rig(t, { pool: { signingKeys: [keyOf(secret)], requestFormat: 'multipart' } });
  const small = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]);
  const large = Buffer.from('x'.repeat(200 * 1024));
  assert.equal((await r.client.submit(r.fn, small)).outcome, 'complete');
  assert.equal((await r.client.submit(r.fn, large)).outcome, 'complete');
  const [binary, streamed] = r.endpoint.requests;
  assert.ok(binary !== undefined && streamed !== undefined);
  assert.ok(binary.body.includes(small) && streamed.body.length > large.length);
  assert.ok(verifiesRaw(secret, binary), 'the binary multipart body verifies over its raw bytes');
  assert.ok(verifiesRaw(secret, streamed), 'the streamed multipart body verifies');
  new Webhook(secret).verify(streamed.body, headersOf(streamed), { jsonParse: false });
});

test('a pool without signing_secrets should send no webhook-* header; bearer_token_file becomes authorization: Bearer; a reconfigure swaps both', async (t) => {
  const r = await rig(t, { pool: { bearerToken: 'tok.en-123~' } });
  assert.equal((await r.client.submit(r.fn, 'x')).outcome, 'complete');
  const [request] = r.endpoint.requests;
  assert.ok(request !== undefined);
  assert.equal(request.headers.authorization, 'Bearer tok.en-123~');
  assert.deepEqual(Object.keys(request.headers).filter((name) => name.startsWith('webhook-')), []);

  // A reload with a new token or new secrets swaps the HTTP client: the next POST carries them.
  const tokenOnly = { ...r.settings, pool: { ...r.settings.pool, bearerToken: 'second' } };
  r.pool.reconfigure(tokenOnly);
  assert.equal((await r.client.submit(r.fn, 'y')).outcome, 'complete');
  assert.equal(r.endpoint.requests.at(-1)?.headers.authorization, 'Bearer second');
  const secret = newSecret();
  r.pool.reconfigure({ ...tokenOnly, pool: { ...tokenOnly.pool, signingKeys: [keyOf(secret)] } });
  assert.equal((await r.client.submit(r.fn, 'z')).outcome, 'complete');
  const signed = r.endpoint.requests.at(-1);
  assert.ok(signed !== undefined);
  new Webhook(secret).verify(signed.body, headersOf(signed));
});

test('an https endpoint signed by a private CA should work once tls.ca_file gives the CA, and fail with a line naming the problem when not', async (t) => {
  const pki = makeTestPki((fn) => t.after(fn));
  const trusted = await rig(t, { endpointTls: { key: pki.server.key, cert: pki.server.cert }, pool: { tls: poolTls(pki, { ca: true }) } });
  assert.match(trusted.endpoint.url, /^https:/);
  assert.equal((await trusted.client.submit(trusted.fn, 'x')).outcome, 'complete');
  assert.equal(trusted.endpoint.requests.length, 1);

  const untrusted = await rig(t, { endpointTls: { key: pki.server.key, cert: pki.server.cert }, pool: { delivery: FAIL_FAST } });
  assert.equal((await untrusted.client.submit(untrusted.fn, 'x')).outcome, 'fail');
  const [failed] = untrusted.logger.find('job failed');
  // Node's own text of the error differs between versions (26 adds a --use-system-ca hint): the code and our advice are what count.
  assert.match(String(failed?.reason), /UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate;/);
  assert.match(String(failed?.reason), /the endpoint's certificate is not signed by a CA driveshaft trusts: give the pool's "tls": \{"ca_file": …\}/);

  // The wrong CA given: the line names the file that did not help.
  const wrongCa = await rig(t, {
    endpointTls: { key: pki.server.key, cert: pki.server.cert },
    pool: { delivery: FAIL_FAST, tls: { ...poolTls(pki, {}), ca: pki.otherCa.cert, caFile: pki.otherCa.certFile } },
  });
  assert.equal((await wrongCa.client.submit(wrongCa.fn, 'x')).outcome, 'fail');
  assert.match(String(wrongCa.logger.find('job failed')[0]?.reason), new RegExp(`not signed by a CA of tls\\.ca_file \\(${pki.otherCa.certFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`));
});

test('tls.server_name should verify an endpoint whose certificate names another host than the URI, and its absence should be named', async (t) => {
  const pki = makeTestPki((fn) => t.after(fn));
  const endpointTls = { key: pki.namedServer.key, cert: pki.namedServer.cert };
  const named = await rig(t, { endpointTls, pool: { tls: poolTls(pki, { ca: true, serverName: 'endpoint.test' }) } });
  assert.equal((await named.client.submit(named.fn, 'x')).outcome, 'complete');

  const unnamed = await rig(t, { endpointTls, pool: { delivery: FAIL_FAST, tls: poolTls(pki, { ca: true }) } });
  assert.equal((await unnamed.client.submit(unnamed.fn, 'x')).outcome, 'fail');
  assert.match(String(unnamed.logger.find('job failed')[0]?.reason), /ERR_TLS_CERT_ALTNAME_INVALID: .*; the endpoint's certificate does not name the host of job_processing_uri: .*tls\.server_name/);
});

test('mutual TLS: the client certificate should reach the endpoint, and an endpoint that wants one should be named when none is set', async (t) => {
  const pki = makeTestPki((fn) => t.after(fn));
  const endpointTls = { key: pki.server.key, cert: pki.server.cert, clientCa: pki.ca.cert };
  const mutual = await rig(t, { endpointTls, pool: { tls: poolTls(pki, { ca: true, client: true }) } });
  assert.equal((await mutual.client.submit(mutual.fn, 'x')).outcome, 'complete');
  assert.equal(mutual.endpoint.requests[0]?.clientCertificate, 'driveshaft client');

  const anonymous = await rig(t, { endpointTls, pool: { delivery: FAIL_FAST, tls: poolTls(pki, { ca: true }) } });
  assert.equal((await anonymous.client.submit(anonymous.fn, 'x')).outcome, 'fail');
  assert.equal(anonymous.endpoint.requests.length, 0);
  const reason = String(anonymous.logger.find('job failed')[0]?.reason);
  assert.match(reason, /if it checks client certificates \(mutual TLS\), set the pool's tls\.cert_file and tls\.key_file/, reason);
  assert.deepEqual(anonymous.endpoint.tlsErrors, ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE']);
});
