/**
 * Endpoint security through the real CLI: a real gearmand, a real https endpoint whose certificates a
 * private CA made in the test signs, requiring a client certificate; the jobs config names a secrets
 * file, a bearer token file and the TLS files; the endpoint verifies every POST with the Standard
 * Webhooks reference verifier.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import { startEndpoint } from '../helpers/http-endpoint.js';
import type { RecordedRequest } from '../helpers/http-endpoint.js';
import { makeTestPki } from '../helpers/tls-certs.js';
import { BIN, startServing } from './daemon.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';

const execFileAsync = promisify(execFile);

function secret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function stringHeaders(request: RecordedRequest): Record<string, string> {
  return Object.fromEntries(Object.entries(request.headers).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

test('driveshaft should sign, authenticate and use mutual TLS to a private-CA endpoint, warn about loose secret files, and re-read the token on reload', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const pki = makeTestPki((fn) => t.after(fn));
  const [current, retiring] = [secret(), secret()];
  const verdicts: string[] = [];
  const endpoint = await startEndpoint(
    (request) => {
      // The endpoint trusts nothing it cannot verify: both rotated secrets must accept the POST.
      for (const key of [current, retiring]) new Webhook(key).verify(request.body, stringHeaders(request));
      verdicts.push(`${request.headers.authorization} ${request.clientCertificate}`);
      return { body: { gearman_ret: 0, response_string: 'verified' } };
    },
    { tls: { key: pki.server.key, cert: pki.server.cert, clientCa: pki.ca.cert } },
  );
  t.after(() => endpoint.close());

  const dir = tempDir(t);
  const secrets = path.join(dir, 'secure.whsec');
  writeFileSync(secrets, `${current}\n${retiring}\n`, { mode: 0o600 });
  const token = path.join(dir, 'secure.token');
  writeFileSync(token, 'first-token\n');
  chmodSync(token, 0o644);
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, [gearmand.label], {
    Secure: {
      uri: endpoint.url,
      count: 1,
      jobs: ['Secure'],
      extra: {
        signing_secrets: { file: 'secure.whsec' },
        bearer_token_file: 'secure.token',
        tls: { ca_file: pki.ca.certFile, cert_file: pki.client.certFile, key_file: pki.client.keyFile },
      },
    },
    Untrusted: { uri: endpoint.url, count: 1, jobs: ['Untrusted'], extra: { delivery: { mode: 'fail_fast' } } },
  });
  chmodSync(file, 0o600);
  const daemon = await startServing(t, ['--jobsconfig', file, '--loop_timeout', '0.5']);
  const warning = await daemon.waitForLog((r) => r.event === 'config-warning', 'the permission warning');
  assert.equal(warning.msg, `${token} (pools_list.Secure.bearer_token_file) is readable by every user (mode 0644); it holds a secret: chmod o-rwx ${token}`);
  // Nothing the daemon logged contains a secret.
  const everything = (): string => JSON.stringify(daemon.logs) + daemon.output();
  for (const text of [current.slice(6), retiring.slice(6), 'first-token']) assert.ok(!everything().includes(text));

  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  const job = await client.submit('Secure', 'payload');
  assert.equal(job.outcome, 'complete');
  assert.equal(job.result?.toString(), 'verified');
  assert.deepEqual(verdicts, ['Bearer first-token driveshaft client']);

  // Without the CA the same endpoint fails, and the line says what to set.
  assert.equal((await client.submit('Untrusted', 'x')).outcome, 'fail');
  const failed = await daemon.waitForLog((r) => r.msg === 'job failed' && r.pool === 'Untrusted', 'the untrusted job to fail');
  assert.match(String(failed.reason), /(?:UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN): .*give the pool's "tls": \{"ca_file": …\}/);

  // bearer_token_file is re-read on reload; the changed token replaces the pool's slots.
  writeFileSync(token, 'second-token\n');
  chmodSync(token, 0o600);
  process.kill(daemon.pid, 'SIGHUP');
  const reloaded = await daemon.waitForLog((r) => r.event === 'reloaded', 'the reload');
  assert.deepEqual(reloaded.replaced, ['Secure']);
  assert.equal((await client.submit('Secure', 'again')).outcome, 'complete');
  assert.equal(verdicts.at(-1), 'Bearer second-token driveshaft client');
  assert.ok(!everything().includes('second-token'));
});

test('NODE_EXTRA_CA_CERTS should let every pool trust a private CA without tls.ca_file', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const pki = makeTestPki((fn) => t.after(fn));
  const endpoint = await startEndpoint(undefined, { tls: { key: pki.server.key, cert: pki.server.cert } });
  t.after(() => endpoint.close());
  const file = path.join(tempDir(t), 'jobs.json');
  writeJobs(file, [gearmand.label], { Plain: { uri: endpoint.url, count: 1, jobs: ['Plain'], extra: { delivery: { mode: 'fail_fast' } } } });
  await startServing(t, ['--jobsconfig', file, '--loop_timeout', '0.5'], { NODE_EXTRA_CA_CERTS: pki.ca.certFile });
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  assert.equal((await client.submit('Plain', 'x')).outcome, 'complete');
});

test('--check should name each secret it read and exit 2 when one cannot be read', async (t) => {
  const dir = tempDir(t);
  const token = path.join(dir, 'token');
  writeFileSync(token, 'a-token\n', { mode: 0o600 });
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, ['127.0.0.1:4730'], { P: { uri: 'https://127.0.0.1:1/job', count: 1, jobs: ['F'], extra: { bearer_token_file: 'token', signing_secrets: { env: 'P_SECRETS' } } } });
  const run = async (env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> => {
    try {
      const { stdout } = await execFileAsync(process.execPath, [BIN, '--jobsconfig', file, '--check'], { env: { ...process.env, ...env } });
      return { code: 0, out: stdout };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  };
  const good = await run({ P_SECRETS: secret() });
  assert.equal(good.code, 0, good.out);
  assert.match(good.out, new RegExp(`pool "P": signing_secrets read from environment variable P_SECRETS \\(1 secret\\), bearer_token_file read from ${token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`));
  assert.ok(!good.out.includes('a-token'));
  rmSync(token);
  const bad = await run({ P_SECRETS: secret() });
  assert.equal(bad.code, 2);
  assert.match(bad.out, /pools_list\.P\.bearer_token_file: cannot read .*token: no such file/);
});
