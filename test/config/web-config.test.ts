import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError } from '../../src/errors.js';
import { parseSimpleYaml } from '../../src/config/simple-yaml.js';
import { runCheck } from '../../src/config/check.js';
import { ClientAuth, describeWebConfig, loadWebConfig, parseWebConfig } from '../../src/config/web-config.js';
import { daemonOptions } from '../helpers/daemon-options.js';
import { jobsJson } from '../helpers/jobs-file.js';
import { tempDir, writeFile } from '../helpers/temp-dir.js';
import { makeTestPki } from '../helpers/tls-certs.js';

const HASH = '$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG';

function problems(text: string, file = '/etc/driveshaft/web.yml'): string[] {
  try {
    parseWebConfig(text, file);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return [...error.problems];
  }
  assert.fail('expected a ConfigError');
}

function pkiDir(t: TestContext): { dir: string; pki: ReturnType<typeof makeTestPki> } {
  const pki = makeTestPki((fn) => t.after(fn));
  return { dir: pki.dir, pki };
}

test('parseSimpleYaml should read the block mappings, lists, quotes and comments a web config uses', () => {
  const text = `---
# comment
tls_server_config:
  cert_file: server.crt   # trailing comment
  key_file: 'it''s.key'
  cipher_suites:
    - TLS_AES_128_GCM_SHA256
    - "TLS_AES_256_GCM_SHA384"
basic_auth_users:
  alice: ${HASH}
  "bob#1": ~
empty:
`;
  assert.deepEqual(parseSimpleYaml(text), {
    tls_server_config: { cert_file: 'server.crt', key_file: "it's.key", cipher_suites: ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384'] },
    basic_auth_users: { alice: HASH, 'bob#1': null },
    empty: null,
  });
  assert.deepEqual(parseSimpleYaml('{"basic_auth_users": {"a": "b"}}'), { basic_auth_users: { a: 'b' } });
  assert.equal(parseSimpleYaml('# nothing\n'), null);
});

test('parseSimpleYaml should refuse what it does not read, naming the line', () => {
  const cases: Array<[string, RegExp]> = [
    ['a: 1\n\tb: 2\n', /line 2/],
    ['a: &anchor x\n', /anchors, tags/],
    ['a: |\n  text\n', /block scalars/],
    ['a: [x, y]\n', /flow collections/],
    ['a: x\na: y\n', /line 2: .*more than once/],
    ['a:\n  - b: c\n', /list of mappings/],
    ['a: "unterminated\n', /line 1/],
    ['a: x\n   b: y\n', /line 2/],
    ['just text\n', /expected "key: value"/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseWebConfig(text, 'web.yml'), (error: unknown) => error instanceof ConfigError && message.test(error.message), text);
  }
});

test('parseWebConfig should read tls_server_config and basic_auth_users as node_exporter writes them', (t) => {
  const { dir, pki } = pkiDir(t);
  const file = writeFile(dir, 'web.yml', `tls_server_config:\n  cert_file: server.pem\n  key_file: ${pki.server.keyFile}\nbasic_auth_users:\n  prometheus: ${HASH}\n`);
  const config = loadWebConfig(file);
  assert.equal(config.tls?.certFile, path.join(dir, 'server.pem'), 'relative to the file');
  assert.equal(config.tls?.cert, pki.server.cert);
  assert.equal(config.tls?.clientAuth, ClientAuth.NONE);
  assert.equal(config.tls?.minVersion, 'TLSv1.2');
  assert.deepEqual(config.basicAuthUsers, { prometheus: HASH });
  assert.deepEqual(config.warnings, []);
  assert.equal(describeWebConfig(config), `web config ${file} OK: TLS with ${path.join(dir, 'server.pem')}, basic auth for 1 user`);
  assert.doesNotMatch(describeWebConfig(config), /\$2y/, 'no hash in --check');
});

test('parseWebConfig should refuse every problem at once, one line each, never showing a password', (t) => {
  const { pki } = pkiDir(t);
  const lines = problems(`tls_server_config:
  cert_file: ${pki.server.certFile}
  key_file: ${pki.client.keyFile}
  client_auth_type: RequestClientCert
  min_version: TLS10
  cipher_suites: [x]
basic_auth_users:
  alice: PlainTextPasswordSECRET
  "b:ob": ${HASH}
http_server_config:
  http2: false
`.replace('cipher_suites: [x]', 'cipher_suites:\n    - x'));
  assert.deepEqual(lines, [
    '/etc/driveshaft/web.yml: http_server_config: not supported by driveshaft (see docs/observability.md for the keys it reads); remove it',
    '/etc/driveshaft/web.yml: tls_server_config.cipher_suites: not supported by driveshaft (see docs/observability.md for the keys it reads); remove it',
    `/etc/driveshaft/web.yml: tls_server_config.key_file: ${pki.client.keyFile} is not the private key of the certificate in ${pki.server.certFile}`,
    '/etc/driveshaft/web.yml: tls_server_config.client_auth_type: expected "NoClientCert" or "RequireAndVerifyClientCert", got "RequestClientCert"',
    '/etc/driveshaft/web.yml: tls_server_config.min_version: expected "TLS12" or "TLS13" (older versions are not offered), got "TLS10"',
    '/etc/driveshaft/web.yml: basic_auth_users.alice: expected a bcrypt hash ($2y$10$… from `htpasswd -nBC 10 "" | tr -d \':\\n\'`, cost 4 to 31), got a string of 23 characters (not shown: it may be a secret)',
    '/etc/driveshaft/web.yml: basic_auth_users["b:ob"]: expected a user name without ":" or control characters (basic auth splits "user:password" at the first ":")',
  ]);
  assert.ok(lines.every((line) => !line.includes('PlainTextPasswordSECRET')));
});

test('parseWebConfig should want both cert_file and key_file, a client CA for client certificates, and readable files', () => {
  assert.deepEqual(problems('tls_server_config:\n  cert_file: /nonexistent/server.pem\n  client_auth_type: RequireAndVerifyClientCert\n'), [
    '/etc/driveshaft/web.yml: tls_server_config.key_file: missing; expected its private key (PEM) file',
    '/etc/driveshaft/web.yml: tls_server_config.cert_file: cannot read /nonexistent/server.pem: no such file',
    '/etc/driveshaft/web.yml: tls_server_config.client_ca_file: missing; RequireAndVerifyClientCert needs the CA that signs the client certificates',
  ]);
  assert.deepEqual(problems('tls_servr_config: {}\n'.replace(' {}', '')), ['/etc/driveshaft/web.yml: tls_servr_config: unknown key; did you mean "tls_server_config"?']);
});

test('parseWebConfig should warn about basic auth without TLS and a key file everyone can read', (t) => {
  const { dir, pki } = pkiDir(t);
  assert.match(parseWebConfig(`basic_auth_users:\n  a: ${HASH}\n`, 'web.yml').warnings[0] ?? '', /without tls_server_config: passwords cross the network in clear text/);
  const key = path.join(dir, 'open.key');
  fs.copyFileSync(pki.server.keyFile, key);
  fs.chmodSync(key, 0o644);
  const config = parseWebConfig(`tls_server_config:\n  cert_file: ${pki.server.certFile}\n  key_file: ${key}\n`, path.join(dir, 'web.yml'));
  assert.match(config.warnings[0] ?? '', /open\.key \(tls_server_config\.key_file\) is readable by every user \(mode 0644\)/);
});

test('loadWebConfig should name an unreadable file', (t) => {
  const dir = tempDir(t);
  assert.throws(() => loadWebConfig(path.join(dir, 'missing.yml')), (error: unknown) => error instanceof ConfigError && /missing\.yml: cannot read web config: no such file/.test(error.message));
});

test('runCheck should check the web config with the other files, one line each, and fail on its problems', (t) => {
  const dir = tempDir(t);
  const jobs = writeFile(dir, 'jobs.json', jobsJson(['127.0.0.1:4730'], { P: { uri: 'http://127.0.0.1/', count: 1, jobs: ['F'] } }));
  const good = writeFile(dir, 'web.yml', `basic_auth_users:\n  prometheus: ${HASH}\n`);
  const ok = runCheck({ ...daemonOptions(jobs), web_config_file: good }, 1_000_000);
  assert.equal(ok.ok, true, ok.lines.join('\n'));
  assert.ok(ok.lines.includes(`web config ${good} OK: no TLS, basic auth for 1 user`));
  assert.ok(ok.lines.some((line) => line.startsWith('warning: ') && line.includes('passwords cross the network in clear text')));
  assert.ok(ok.lines.every((line) => !line.includes(HASH)));
  const bad = writeFile(dir, 'bad.yml', 'basic_auth_users:\n  prometheus: hunter2\n');
  const refused = runCheck({ ...daemonOptions(jobs), web_config_file: bad }, 1_000_000);
  assert.equal(refused.ok, false);
  assert.ok(refused.lines.some((line) => line.startsWith(`${bad}: basic_auth_users.prometheus: expected a bcrypt hash`)));
  assert.ok(refused.lines.every((line) => !line.includes('hunter2')));
});
