/**
 * The jobs config's security keys: signing_secrets, bearer_token_file and tls, read from real files
 * (certificates from a private CA made with openssl), every problem one line that never shows a secret,
 * the permission warnings, the reload diff and --check's report.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCheck } from '../../src/config/check.js';
import { diffJobsConfig } from '../../src/config/diff.js';
import { loadJobsConfig } from '../../src/config/jobs-config.js';
import type { DaemonOptions, JobsConfig } from '../../src/config/types.js';
import { ConfigError } from '../../src/errors.js';
import { makeTestPki } from '../helpers/tls-certs.js';
import { daemonOptions } from '../helpers/daemon-options.js';
import { tempDir, writeFile } from '../helpers/temp-dir.js';

const DEFAULTS = { maxRunningTimeMs: 300_000, requestFormat: 'json' } as const;

function secret(bytes = 32): string {
  return `whsec_${randomBytes(bytes).toString('base64')}`;
}

function jobs(dir: string, poolExtra: Record<string, unknown>, uri = 'https://127.0.0.1/job'): string {
  const file = writeFile(dir, 'jobs.json', { gearman_servers_list: ['localhost'], pools_list: { P: { job_processing_uri: uri, worker_count: 1, jobs_list: ['F'], ...poolExtra } } });
  fs.chmodSync(file, 0o640);
  return file;
}

function secretFile(dir: string, name: string, content: string, mode = 0o600): string {
  const file = writeFile(dir, name, content);
  fs.chmodSync(file, mode);
  return file;
}

function load(file: string, env: NodeJS.ProcessEnv = {}): JobsConfig {
  return loadJobsConfig(file, { ...DEFAULTS, env });
}

function problems(file: string, env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    load(file, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

test('signing_secrets should read whsec_ secrets from a file (one a line, comments skipped) or an environment variable', (t) => {
  const dir = tempDir(t);
  const [a, b] = [secret(), secret(24)];
  secretFile(dir, 'pool.whsec', `# current\n${a}\n\n# retiring\n  ${b}  \n`);
  const config = load(jobs(dir, { signing_secrets: { file: 'pool.whsec' } }));
  const pool = config.pools.P;
  assert.deepEqual(pool?.signingKeys, [a.slice(6), b.slice(6)]);
  assert.deepEqual(pool?.secretSources, [{ key: 'signing_secrets', kind: 'file', name: path.join(dir, 'pool.whsec') }]);
  assert.deepEqual(config.warnings, []);

  const fromEnv = load(jobs(dir, { signing_secrets: { env: 'POOL_SECRETS' } }), { POOL_SECRETS: `${b} ${a}` });
  assert.deepEqual(fromEnv.pools.P?.signingKeys, [b.slice(6), a.slice(6)]);
  assert.deepEqual(fromEnv.pools.P?.secretSources, [{ key: 'signing_secrets', kind: 'env', name: 'POOL_SECRETS' }]);
});

test('signing_secrets problems should be one line each, name the file, line or variable, and never show a secret', (t) => {
  const dir = tempDir(t);
  const short = secret(16);
  const unprefixed = randomBytes(32).toString('base64');
  secretFile(dir, 'bad.whsec', `${secret()}\n${short}\n${unprefixed}\nwhsec_***notbase64***\n`);
  const file = jobs(dir, { signing_secrets: { file: 'bad.whsec' } });
  const lines = problems(file);
  const at = `${file}: pools_list.P.signing_secrets.file: `;
  const origin = path.join(dir, 'bad.whsec');
  assert.deepEqual(lines, [
    `${at}line 2 of ${origin}: expected a secret of the form whsec_<base64 of 24 to 64 random bytes> (it decodes to 16 bytes)`,
    `${at}line 3 of ${origin}: expected a secret of the form whsec_<base64 of 24 to 64 random bytes> (it does not start with "whsec_")`,
    `${at}line 4 of ${origin}: expected a secret of the form whsec_<base64 of 24 to 64 random bytes> (what follows "whsec_" is not base64)`,
  ]);
  for (const line of lines) assert.ok(!line.includes(short.slice(6)) && !line.includes(unprefixed), line);

  // Inline in the jobs config: refused without echoing it.
  const inline = secret();
  const inlineLines = problems(jobs(dir, { signing_secrets: inline }));
  assert.equal(inlineLines.length, 1);
  assert.match(inlineLines[0] ?? '', /signing_secrets: expected \{"file": "<path>"\} or \{"env": "<VARIABLE>"\}; secrets are never written in the jobs config itself/);
  assert.ok(!(inlineLines[0] ?? '').includes(inline.slice(6)));

  assert.match(problems(jobs(dir, { signing_secrets: { env: 'NOT_SET' } }))[0] ?? '', /signing_secrets\.env: environment variable NOT_SET is not set/);
  assert.match(problems(jobs(dir, { signing_secrets: { file: 'missing.whsec' } }))[0] ?? '', /signing_secrets\.file: cannot read .*missing\.whsec: no such file/);
  assert.match(problems(jobs(dir, { signing_secrets: { file: 'bad.whsec', env: 'X' } }))[0] ?? '', /expected exactly one of "file"/);
  secretFile(dir, 'empty.whsec', '# nothing yet\n');
  assert.match(problems(jobs(dir, { signing_secrets: { file: 'empty.whsec' } }))[0] ?? '', /holds no secret/);
});

test('bearer_token_file should be read and trimmed, and refuse a second authorization source', (t) => {
  const dir = tempDir(t);
  secretFile(dir, 'token', 'abc.DEF-123_~+/=\n');
  assert.equal(load(jobs(dir, { bearer_token_file: 'token' })).pools.P?.bearerToken, 'abc.DEF-123_~+/=');
  secretFile(dir, 'two-lines', 'abc\ndef\n');
  assert.match(problems(jobs(dir, { bearer_token_file: 'two-lines' }))[0] ?? '', /expected one bearer token .* on one line; it has spaces, line breaks/);
  assert.match(problems(jobs(dir, { bearer_token_file: 'token', headers: { Authorization: 'Basic x' } }))[0] ?? '', /bearer_token_file: headers\.authorization also sets the authorization header; keep one/);
  assert.match(problems(jobs(dir, { bearer_token_file: 'token' }, 'https://u:p@127.0.0.1/job'))[0] ?? '', /user:password in job_processing_uri also sets/);
});

test('secret files readable by every user, and a world-readable jobs config holding credentials, should be warnings naming file and mode', (t) => {
  const dir = tempDir(t);
  secretFile(dir, 'token', 'abc\n', 0o644);
  secretFile(dir, 'pool.whsec', `${secret()}\n`, 0o640);
  const config = load(jobs(dir, { bearer_token_file: 'token', signing_secrets: { file: 'pool.whsec' } }));
  const token = path.join(dir, 'token');
  // Group-readable is how a root-owned file is shared with --user: no warning for pool.whsec.
  assert.deepEqual(config.warnings, [`${token} (pools_list.P.bearer_token_file) is readable by every user (mode 0644); it holds a secret: chmod o-rwx ${token}`]);

  const file = jobs(dir, { headers: { 'X-Api-Key': 'k' } });
  fs.chmodSync(file, 0o644);
  assert.match(load(file).warnings?.[0] ?? '', /jobs\.json is readable by every user \(mode 0644\) and holds credentials \(headers or user:password of pool "P"\)/);
  fs.chmodSync(file, 0o600);
  assert.deepEqual(load(file).warnings, []);
});

test('tls should read the CA, client certificate and key, check they belong together, and refuse what would not work', (t) => {
  const dir = tempDir(t);
  const pki = makeTestPki((fn) => t.after(fn));
  const config = load(jobs(dir, { tls: { ca_file: pki.ca.certFile, cert_file: pki.client.certFile, key_file: pki.client.keyFile, server_name: 'Endpoint.Test' } }));
  assert.deepEqual(config.pools.P?.tls, {
    ca: pki.ca.cert,
    caFile: pki.ca.certFile,
    cert: pki.client.cert,
    certFile: pki.client.certFile,
    key: pki.client.key,
    keyFile: pki.client.keyFile,
    serverName: 'endpoint.test',
  });
  assert.deepEqual(config.pools.P?.secretSources, [{ key: 'tls.key_file', kind: 'file', name: pki.client.keyFile }]);

  const at = (file: string): string => `${file}: pools_list.P.tls`;
  let file = jobs(dir, { tls: { cert_file: pki.client.certFile, key_file: pki.server.keyFile } });
  assert.deepEqual(problems(file), [`${at(file)}.key_file: ${pki.server.keyFile} is not the private key of the certificate in ${pki.client.certFile} (their public keys differ)`]);
  file = jobs(dir, { tls: { cert_file: pki.client.certFile } });
  assert.deepEqual(problems(file), [`${at(file)}.key_file: missing; mutual TLS needs both cert_file (the client certificate) and key_file (its private key)`]);
  file = jobs(dir, { tls: { ca_file: pki.client.keyFile } });
  assert.deepEqual(problems(file), [`${at(file)}.ca_file: ${pki.client.keyFile}: expected PEM certificates ("-----BEGIN CERTIFICATE-----"), found none`]);
  file = jobs(dir, { tls: { ca_file: pki.ca.certFile } }, 'http://127.0.0.1/job');
  assert.deepEqual(problems(file), [`${at(file)}: applies to an https:// job_processing_uri only; this pool's is http:// ("http://127.0.0.1/job")`]);
  file = jobs(dir, { tls: { server_name: '10.0.0.1' } });
  assert.match(problems(file)[0] ?? '', /server_name: expected a host name, not an IP address/);
  file = jobs(dir, { tls: { ca_flie: 'x' } });
  assert.match(problems(file)[0] ?? '', /tls\.ca_flie: unknown key; did you mean "ca_file"\?/);

  // An expired client certificate loads, with a warning (every handshake would fail on it).
  const later = loadJobsConfig(jobs(dir, { tls: { cert_file: pki.client.certFile, key_file: pki.client.keyFile } }), { ...DEFAULTS, now: Date.now() + 10 * 86_400_000 });
  assert.match(later.warnings?.[0] ?? '', /tls\.cert_file\): certificate "CN=driveshaft client" expired on /);
});

test('a reload should count a changed secret (same file, new content) as a change, and a renamed file with the same content as none', (t) => {
  const dir = tempDir(t);
  const token = secretFile(dir, 'token', 'first\n');
  const file = jobs(dir, { bearer_token_file: 'token', signing_secrets: { file: 'pool.whsec' } });
  const whsec = secretFile(dir, 'pool.whsec', `${secret()}\n`);
  const before = load(file);
  fs.writeFileSync(token, 'second\n');
  assert.deepEqual(diffJobsConfig(before, load(file)).replaced, ['P']);
  const rotated = load(file);
  fs.appendFileSync(whsec, `${secret()}\n`);
  assert.deepEqual(diffJobsConfig(rotated, load(file)).replaced, ['P']);
  const current = load(file);
  fs.copyFileSync(whsec, path.join(dir, 'renamed.whsec'));
  const renamed = load(jobs(dir, { bearer_token_file: 'token', signing_secrets: { file: 'renamed.whsec' } }));
  assert.deepEqual(diffJobsConfig(current, renamed).unchanged, ['P']);
});

function checkOptions(jobsconfig: string): DaemonOptions {
  return daemonOptions(jobsconfig, { check: true });
}

test('--check should list the secret sources it read (never their content), the warnings, and fail on an unreadable secret', (t) => {
  const dir = tempDir(t);
  const pki = makeTestPki((fn) => t.after(fn));
  const token = secretFile(dir, 'token', 'sekrit-token\n', 0o644);
  const whsec = secretFile(dir, 'pool.whsec', `${secret()}\n${secret()}\n`);
  const file = jobs(dir, { bearer_token_file: 'token', signing_secrets: { file: 'pool.whsec' }, tls: { ca_file: pki.ca.certFile } });
  const good = runCheck(checkOptions(file), 1_000_000);
  assert.equal(good.ok, true, good.lines.join('\n'));
  assert.ok(good.lines.includes(`pool "P": signing_secrets read from ${whsec} (2 secrets), bearer_token_file read from ${token}, tls.ca_file ${pki.ca.certFile}`), good.lines.join('\n'));
  assert.ok(good.lines.some((line) => line.startsWith(`warning: ${token} (pools_list.P.bearer_token_file) is readable by every user (mode 0644)`)));
  assert.ok(!good.lines.join('\n').includes('sekrit-token'));

  fs.rmSync(whsec);
  const bad = runCheck(checkOptions(file), 1_000_000);
  assert.equal(bad.ok, false);
  assert.ok(bad.lines.includes(`${file}: pools_list.P.signing_secrets.file: cannot read ${whsec}: no such file`), bad.lines.join('\n'));
});
