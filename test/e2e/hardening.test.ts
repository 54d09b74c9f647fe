/**
 * Issue #22 through the real CLI: no password reaches any output (startup errors, --check, a reload
 * error in the log file, the status port, /status, /metrics, /readyz, the page), log files are created
 * without read access for others, and a secret given as an environment variable never reaches a
 * child's environment while the child still signs with it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import { startEndpoint } from '../helpers/http-endpoint.js';
import { jobsJson } from '../helpers/jobs-file.js';
import { makeTestPki } from '../helpers/tls-certs.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';
import { BIN, spawnDaemon, startServing, statusExchange } from './daemon.js';

const execFileAsync = promisify(execFile);

/** Every password below contains this; no output may. */
const MARK = 'SECRET';

/**
 * One pool per config error path that formats a URI or a value: a wrong scheme, tls on http://, a
 * health_url with credentials, a URI that does not parse, a password longer than a preview, an inline
 * credential header with a control character, a server address with credentials, an environment
 * secret that is not a whsec_ secret.
 */
function badPools(dir: string, pkiCa: string): string {
  const base = { worker_count: 1, jobs_list: ['F'] };
  const config = {
    gearman_servers_list: ['127.0.0.1:4730', `http://su:Server${MARK}7@h:4730`],
    pools_list: {
      WrongScheme: { ...base, job_processing_uri: `ftp://ftpuser:FtpPass${MARK}1@files.example/x` },
      TlsOnHttp: { ...base, job_processing_uri: `http://rtuser:UriPassw0rd${MARK}2@127.0.0.1/`, tls: { ca_file: pkiCa } },
      HealthUrl: { ...base, job_processing_uri: 'http://127.0.0.1/', delivery: { health_url: `https://hu:HealthPass${MARK}3@127.0.0.1/health` } },
      Unparsable: { ...base, job_processing_uri: `http://u:Pass/${MARK}4@h` },
      LongPassword: { ...base, job_processing_uri: `gopher://u:${`Long${MARK}5`.repeat(12)}@h/` },
      InlineHeader: { ...base, job_processing_uri: 'http://127.0.0.1/', headers: { authorization: `Bearer Header${MARK}6\n` } },
      EnvSecret: { ...base, job_processing_uri: 'http://127.0.0.1/', signing_secrets: { env: 'DS_TEST_BAD_SIGNING' } },
    },
  };
  const file = path.join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}
const BAD_ENV = { DS_TEST_BAD_SIGNING: `notwhsec_Env${MARK}8` };
/** The paths each bad pool must be reported at: the test proves every path ran, not only that nothing leaked. */
const REPORTED = [
  'gearman_servers_list[1]',
  'pools_list.WrongScheme.job_processing_uri',
  'pools_list.TlsOnHttp.tls',
  'pools_list.HealthUrl.delivery.health_url',
  'pools_list.Unparsable.job_processing_uri',
  'pools_list.LongPassword.job_processing_uri',
  'pools_list.InlineHeader.headers.authorization',
  'pools_list.EnvSecret.signing_secrets.env',
];

function assertClean(what: string, text: string): void {
  assert.ok(!text.includes(MARK), `${what} shows a password:\n${text.split('\n').filter((line) => line.includes(MARK)).join('\n')}`);
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

test('no config error, --check line, log line or status view should show a password, and log files should be created 0640', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const pki = makeTestPki((fn) => t.after(fn));
  const dir = tempDir(t);
  const bad = badPools(dir, pki.ca.certFile);

  // Startup: every problem at once, exit 2.
  const startup = await cli(['--jobsconfig', bad], BAD_ENV);
  assert.equal(startup.code, 2, startup.out);
  for (const at of REPORTED) assert.ok(startup.out.includes(at), `startup reports ${at}:\n${startup.out}`);
  assert.match(startup.out, /ftpuser:\*\*\*@files\.example/, 'the URI is shown, redacted');
  assertClean('the startup error', startup.out);
  // --check: the same problems, the same rule.
  const check = await cli(['--jobsconfig', bad, '--check'], BAD_ENV);
  assert.equal(check.code, 2);
  for (const at of REPORTED) assert.ok(check.out.includes(at), `--check reports ${at}`);
  assertClean('--check', check.out);
  // An option's value.
  const option = await cli(['--jobsconfig', bad, '--exporter_addr', `http://ou:Opt${MARK}9@h:1`]);
  assert.equal(option.code, 2);
  assert.match(option.out, /--exporter_addr: .*ou:\*\*\*@h/);
  assertClean('an option error', option.out);

  // A running daemon whose pool URI carries credentials, logging at debug to a file, a rotating file and stdout.
  const uriPassword = `GoodPass${MARK}0`;
  const jobs = path.join(dir, 'jobs.json');
  const goodUri = endpoint.url.replace('http://', `http://okuser:${uriPassword}@`);
  writeFileSync(jobs, jobsJson([gearmand.label], { Regular: { uri: goodUri, count: 1, jobs: ['Sum'] } }), { mode: 0o600 });
  const logFile = path.join(dir, 'driveshaft.log');
  const rotatingFile = path.join(dir, 'rotating.log');
  const logConfig = path.join(dir, 'log.json');
  writeFileSync(logConfig, JSON.stringify({ name: 'driveshaft', level: 'debug', streams: [{ type: 'stdout' }, { type: 'file', path: logFile }, { type: 'rotating-file', path: rotatingFile, period: '1d', count: 2 }] }));
  const statusPort = await freePort();
  const exporterPort = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', jobs, '--logconfig', logConfig, '--status_port', String(statusPort), '--exporter_addr', String(exporterPort), '--loop_timeout', '0.5']);
  for (const file of [logFile, rotatingFile]) {
    const mode = statSync(file).mode & 0o777;
    assert.equal(mode & 0o007, 0, `${file} is not readable by others (mode 0${mode.toString(8)})`);
    assert.equal(mode & 0o600, 0o600, `${file} is the owner's`);
  }
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  assert.equal((await client.submit('Sum', '[1,2]')).outcome, 'complete');
  assert.equal(endpoint.requests[0]?.headers.authorization, `Basic ${Buffer.from(`okuser:${uriPassword}`).toString('base64')}`);

  // A reload to the bad file: refused, logged with every problem, redacted.
  writeFileSync(jobs, readFileSync(bad));
  process.kill(daemon.pid, 'SIGHUP');
  const failed = await daemon.waitForLog((r) => r.event === 'reload-failed', 'the reload to fail');
  for (const at of ['pools_list.WrongScheme.job_processing_uri', 'pools_list.TlsOnHttp.tls']) assert.ok(failed.msg.includes(at), `the reload error names ${at}`);
  assert.match(failed.msg, /rtuser:\*\*\*@127\.0\.0\.1/);
  await waitFor(() => readFileSync(logFile, 'utf8').includes('reload-failed') || undefined, { timeoutMs: 5000, message: 'the reload error in the log file' });

  const views: Array<[string, string]> = [];
  for (const command of ['threads', 'counters', 'gauges']) views.push([`status port ${command}`, await statusExchange(statusPort, `${command}\n`)]);
  for (const route of ['/status', '/metrics', '/readyz', '/']) {
    const response = await fetch(`http://127.0.0.1:${exporterPort}${route}`);
    views.push([route, await response.text()]);
  }
  const status = JSON.parse(views.find(([name]) => name === '/status')?.[1] ?? '{}') as { pools: Array<{ uri: string }> };
  assert.equal(status.pools[0]?.uri, endpoint.url, '/status shows the endpoint without credentials');
  const basic = Buffer.from(`okuser:${uriPassword}`).toString('base64');
  const outputs: Array<[string, string]> = [
    ...views,
    ['stdout and stderr', JSON.stringify(daemon.logs) + daemon.output()],
    ['the log file', readFileSync(logFile, 'utf8')],
    ['the rotating log file', readFileSync(rotatingFile, 'utf8')],
  ];
  for (const [what, text] of outputs) {
    assertClean(what, text);
    assert.ok(!text.includes(basic), `${what} shows the Authorization header`);
  }
});

test('a signing secret from the environment should reach no child environment, and the pool should still sign with it', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const key = `whsec_${randomBytes(32).toString('base64')}`;
  const signatures: boolean[] = [];
  const endpoint = await startEndpoint((request) => {
    if (request.headers['webhook-signature'] !== undefined) {
      const headers = Object.fromEntries(Object.entries(request.headers).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
      new Webhook(key).verify(request.body, headers);
      signatures.push(true);
    }
    return { body: { gearman_ret: 0, response_string: 'ok' } };
  });
  t.after(() => endpoint.close());
  const dir = tempDir(t);
  const jobs = path.join(dir, 'jobs.json');
  writeFileSync(
    jobs,
    jobsJson([gearmand.label], {
      Signed: { uri: endpoint.url, count: 1, jobs: ['Signed'], extra: { signing_secrets: { env: 'DS_TEST_SIGNING' } } },
      Plain: { uri: endpoint.url, count: 1, jobs: ['Plain'] },
      Other: { uri: endpoint.url, count: 2, jobs: ['Other'] },
    }),
  );
  chmodSync(jobs, 0o600);
  const daemon = spawnDaemon(t, ['--jobsconfig', jobs, '--loop_timeout', '0.5'], { DS_TEST_SIGNING: key, DS_TEST_VISIBLE: 'visible-to-children' });
  await daemon.waitForLog((r) => r.event === 'started', 'the daemon to start');
  const children = daemon.logs.filter((r) => r.event === 'ready').map((r) => r.childPid as number);
  assert.equal(children.length, 3, 'one child per pool');

  const environ = (pid: number): Map<string, string> =>
    new Map(
      readFileSync(`/proc/${pid}/environ`, 'latin1')
        .split('\0')
        .filter((entry) => entry !== '')
        .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] as [string, string]),
    );
  assert.equal(environ(daemon.pid).get('DS_TEST_SIGNING'), key, 'the master keeps it (a reload reads it again)');
  for (const pid of children) {
    const env = environ(pid);
    assert.equal(env.get('DS_TEST_VISIBLE'), 'visible-to-children', `child ${pid}: the rest of the environment is inherited`);
    assert.ok(env.has('DRIVESHAFT_POOL'), `child ${pid} is a pool child`);
    assert.equal(env.has('DS_TEST_SIGNING'), false, `child ${pid} has the secret variable`);
    assert.ok(![...env.values()].some((value) => value.includes(key.slice(6))), `child ${pid} has the secret in another variable`);
  }

  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  assert.equal((await client.submit('Signed', 'x')).outcome, 'complete');
  assert.deepEqual(signatures, [true], 'the child signed with the key it got over IPC');
});
