/**
 * Who may read the exporter (issue #22): the Host check against DNS rebinding, and TLS and basic auth
 * from a web config file in the Prometheus exporter-toolkit format, with real HTTPS requests and bcrypt
 * hashes made by the system's crypt(3) (libxcrypt, through perl), not by the library under test.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { test, type TestContext } from 'node:test';
import { zeroCounters } from '../../src/ipc/counters.js';
import { loadWebConfig, type ExporterWebConfig } from '../../src/config/web-config.js';
import { Exporter, type ExporterOptions } from '../../src/observe/exporter.js';
import { AuthVerdict, BasicAuth, HostCheck, MAX_WAITING_CHECKS } from '../../src/observe/exporter-access.js';
import type { Observation } from '../../src/observe/observation.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { tempDir, writeFile } from '../helpers/temp-dir.js';
import { makeTestPki } from '../helpers/tls-certs.js';
import { pool, server } from '../master/support.js';

function observation(): Observation {
  return {
    takenAt: Date.now(),
    version: 'driveshaft test',
    pid: process.pid,
    state: 'running',
    startedAt: Date.now() - 5000,
    configFile: '/tmp/jobs.json',
    configLoadedAt: Date.now() - 5000,
    servers: [server()],
    pools: { Regular: pool('Regular') },
    poolNames: ['Regular'],
    children: [
      {
        pool: 'Regular',
        state: 'running',
        pid: 42,
        restarts: 0,
        failReason: null,
        retiring: false,
        status: { pool: 'Regular', pid: 42, slots: [{ id: '42-1', stopping: false, job: null, connectedServers: 1 }], counters: { ...zeroCounters(), jobs_completed: 5 } },
        statusError: null,
      },
    ],
    totals: new Map(),
    reloads: { ok: 0, failed: 0 },
    childRestarts: 0,
  };
}

async function start(t: TestContext, extra: Partial<ExporterOptions> = {}): Promise<{ port: number; records: ReturnType<typeof memoryLogger>['records'] }> {
  const { logger, records } = memoryLogger();
  const exporter = new Exporter({ host: '127.0.0.1', port: 0, source: { observe: () => Promise.resolve(observation()), gearmandScrapes: () => [] }, logger, ...extra });
  t.after(() => exporter.close());
  const { port } = await exporter.listen();
  return { port, records };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with exactly these headers (Host included: fetch will not let a test set it). */
function request(port: number, path: string, headers: Record<string, string>, tls?: https.RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, headers, agent: false as const, setHost: false, ...tls };
    const req = (tls === undefined ? http : https).request(options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A bcrypt hash from crypt(3) (libxcrypt), the way htpasswd -B makes one. */
function bcryptHash(password: string, cost: string): string {
  const salt = `$2y$${cost}$abcdefghijklmnopqrstuu`;
  const hash = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, salt], { encoding: 'utf8' });
  assert.match(hash, /^\$2y\$\d\d\$[./A-Za-z0-9]{53}$/, 'crypt(3) made a bcrypt hash');
  return hash;
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

test('Exporter should refuse a Host it does not answer for with 421 and nothing of the status, and answer its own names', async (t) => {
  const { port, records } = await start(t, { allowedHosts: ['metrics.internal', '.corp.example'] });
  for (const host of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', 'corp.example.evil', '127.0.0.1.nip.io']) {
    for (const path of ['/status', '/metrics', '/', '/healthz', '/nope']) {
      const reply = await request(port, path, { host });
      assert.equal(reply.status, 421, `${host} ${path}`);
      assert.doesNotMatch(reply.body, /Regular|jobs_completed|driveshaft_/, 'no status in a refusal');
      assert.equal(reply.headers.connection, 'close');
    }
  }
  const warning = records.find((record) => record.event === 'exporter-host-refused');
  assert.ok(warning !== undefined, 'a refused host is logged');
  assert.equal(records.filter((record) => record.event === 'exporter-host-refused').length, 1, 'once a minute, not per request');

  for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'LOCALHOST.', 'grafana.localhost', '[::1]:9100', '10.1.2.3', 'metrics.internal:443', 'corp.example', 'prom.corp.example']) {
    const metrics = await request(port, '/metrics', { host });
    assert.equal(metrics.status, 200, host);
    assert.match(metrics.body, /driveshaft_slots\{pool="Regular",state="idle"\} 1/);
    const status = await request(port, '/status', { host });
    assert.equal(status.status, 200, host);
    assert.equal((JSON.parse(status.body) as { pools: Array<{ name: string }> }).pools[0]?.name, 'Regular');
  }
});

test('Exporter should refuse an HTTP/1.0 request without a Host with 400', async (t) => {
  const { port } = await start(t);
  const net = await import('node:net');
  const text = await new Promise<string>((resolve, reject) => {
    let received = '';
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /status HTTP/1.0\r\n\r\n'));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 400 /);
  assert.doesNotMatch(text, /Regular/);
});

test('HostCheck should answer for the --exporter_addr host as given', () => {
  const named = new HostCheck('metrics.example.net', []);
  assert.equal(named.allows('metrics.example.net:9100'), true);
  assert.equal(named.allows('other.example.net'), false);
  assert.equal(named.allows(undefined), false);
  assert.equal(new HostCheck('::1', []).allows('[::1]:9100'), true);
});

function webConfig(t: TestContext, yaml: (pki: ReturnType<typeof makeTestPki>) => string): { config: ExporterWebConfig; pki: ReturnType<typeof makeTestPki> } {
  const pki = makeTestPki((fn) => t.after(fn));
  const dir = tempDir(t);
  const file = writeFile(dir, 'web.yml', yaml(pki));
  return { config: loadWebConfig(file), pki };
}

test('Exporter should serve HTTPS and require basic auth from an exporter-toolkit web config file', async (t) => {
  const hash = bcryptHash('scrape-pass', '05');
  const { config, pki } = webConfig(
    t,
    (p) => `# as written for node_exporter
tls_server_config:
  cert_file: ${p.server.certFile}
  key_file: ${p.server.keyFile}
basic_auth_users:
  prometheus: ${hash}
  'grafana': "${bcryptHash('other', '04')}"
`,
  );
  const { port } = await start(t, { web: config });
  const tls = { ca: pki.ca.cert };
  const host = `127.0.0.1:${port}`;

  const anonymous = await request(port, '/metrics', { host }, tls);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.headers['www-authenticate'], 'Basic realm="driveshaft", charset="UTF-8"');
  assert.doesNotMatch(anonymous.body, /driveshaft_/);
  for (const [user, password] of [['prometheus', 'wrong'], ['nobody', 'scrape-pass'], ['prometheus', ''], ['grafana', 'scrape-pass']]) {
    const denied = await request(port, '/status', { host, authorization: basic(user as string, password as string) }, tls);
    assert.equal(denied.status, 401, `${user}:${password}`);
  }
  assert.equal((await request(port, '/healthz', { host, authorization: 'Bearer x' }, tls)).status, 401);

  for (let i = 0; i < 2; i++) {
    const metrics = await request(port, '/metrics', { host, authorization: basic('prometheus', 'scrape-pass') }, tls);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /driveshaft_slots\{pool="Regular",state="idle"\} 1/);
  }
  assert.equal((await request(port, '/status', { host, authorization: basic('grafana', 'other') }, tls)).status, 200);
  // The Host check comes first, also over TLS and with the right password.
  // (node:https checks the certificate against the Host header: that is not what this request tests.)
  const misdirected = await request(port, '/status', { host: 'evil.example', authorization: basic('prometheus', 'scrape-pass') }, { ...tls, checkServerIdentity: () => undefined });
  assert.equal(misdirected.status, 421);
  // The certificate is the one configured: a client that does not trust its CA refuses it.
  await assert.rejects(request(port, '/healthz', { host }, { ca: pki.otherCa.cert }), /self-signed|unable to verify|certificate/i);
  // Plain HTTP on the TLS port gets no status.
  const plain = await request(port, '/status', { host }).catch((error: Error) => ({ status: 0, headers: {}, body: error.message }));
  assert.notEqual(plain.status, 200);
});

test('Exporter should require a client certificate signed by client_ca_file with RequireAndVerifyClientCert', async (t) => {
  const { config, pki } = webConfig(
    t,
    (p) => `tls_server_config:
  cert_file: ${p.server.certFile}
  key_file: ${p.server.keyFile}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ${p.ca.certFile}
  min_version: TLS12
`,
  );
  const { port } = await start(t, { web: config });
  const host = `127.0.0.1:${port}`;
  const ok = await request(port, '/healthz', { host }, { ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key });
  assert.equal(ok.status, 200);
  await assert.rejects(request(port, '/healthz', { host }, { ca: pki.ca.cert }), /certificate|socket hang up|ECONNRESET|alert/i);
});

test('BasicAuth should remember a success, check one at a time, and refuse when too many checks wait', async () => {
  let calls = 0;
  let release: (() => void) | null = null;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const compare = async (password: string): Promise<boolean> => {
    calls++;
    await gate;
    return password === 'right';
  };
  const auth = new BasicAuth({ alice: '$2y$04$abcdefghijklmnopqrstuuXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' }, compare);
  const pending = Array.from({ length: MAX_WAITING_CHECKS }, (_, i) => auth.check(basic('alice', i === 0 ? 'right' : 'wrong')));
  assert.equal(await auth.check(basic('alice', 'right')), AuthVerdict.BUSY, 'the next one is refused, not queued');
  assert.equal(calls, 1, 'one check at a time');
  (release as unknown as () => void)();
  const verdicts = await Promise.all(pending);
  assert.equal(verdicts[0], AuthVerdict.OK);
  assert.ok(verdicts.slice(1).every((verdict) => verdict === AuthVerdict.DENIED));
  const before = calls;
  assert.equal(await auth.check(basic('alice', 'right')), AuthVerdict.OK);
  assert.equal(calls, before, 'a remembered success costs no bcrypt');
  assert.equal(await auth.check(basic('mallory', 'right')), AuthVerdict.DENIED, 'an unknown user is denied even when the decoy matches');
  assert.equal(calls, before + 1, 'an unknown user costs a check like a known one');
  assert.equal(await auth.check('Basic !!!'), AuthVerdict.DENIED);
  assert.equal(await auth.check(undefined), AuthVerdict.DENIED);
});
