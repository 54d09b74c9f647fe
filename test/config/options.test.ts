import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, OptionsError } from '../../src/errors.js';
import { formatListenAddress } from '../../src/config/listen-address.js';
import { defaultDeadLetterDir } from '../../src/config/dead-letter-location.js';
import { helpText, parseCommandLine, versionText } from '../../src/config/options.js';
import type { DaemonOptions } from '../../src/config/types.js';
import { daemonOptions } from '../helpers/daemon-options.js';

const JOBS = ['--jobsconfig', '/etc/driveshaft/jobs.json'];

function run(argv: readonly string[], env: NodeJS.ProcessEnv = {}): DaemonOptions {
  const result = parseCommandLine(argv, env);
  assert.equal(result.kind, 'run');
  return (result as { options: DaemonOptions }).options;
}

/** Asserts that parsing fails with exactly `message`, as an OptionsError with the DS_OPTIONS code. */
function rejects(argv: readonly string[], message: string, env: NodeJS.ProcessEnv = {}): void {
  assert.throws(
    () => parseCommandLine(argv, env),
    (error: unknown) => {
      assert.ok(error instanceof OptionsError);
      assert.equal(error.code, ErrorCode.OPTIONS);
      assert.equal(error.message, message);
      assert.ok(!error.message.includes('\n'), 'one line');
      return true;
    },
  );
}

test('parseCommandLine should apply every default when only --jobsconfig is given', () => {
  // daemonOptions writes the defaults out literally: this also keeps the other tests' builder honest.
  assert.deepEqual(run(JOBS), daemonOptions('/etc/driveshaft/jobs.json', { dead_letter_dir: defaultDeadLetterDir({ env: {}, euid: process.geteuid?.() ?? -1 }) }));
});

test('--dead_letter_dir should default to STATE_DIRECTORY (systemd), else by user, and resolve a relative folder', () => {
  assert.equal(run(JOBS, { STATE_DIRECTORY: '/var/lib/driveshaft' }).dead_letter_dir, '/var/lib/driveshaft/dead-letters');
  assert.equal(run(JOBS, {}).dead_letter_dir, process.geteuid?.() === 0 ? '/var/lib/driveshaft/dead-letters' : defaultDeadLetterDir({ env: {}, euid: -1 }));
  assert.equal(run([...JOBS, '--dead_letter_dir', 'letters'], { STATE_DIRECTORY: '/var/lib/driveshaft' }).dead_letter_dir, path.resolve(process.cwd(), 'letters'));
  assert.equal(run(JOBS, { DRIVESHAFT_DEAD_LETTER_DIR: '/srv/letters' }).dead_letter_dir, '/srv/letters');
  rejects([...JOBS, '--dead_letter_dir', ''], '--dead_letter_dir: expected a file path, got ""');
  assert.match(helpText(), /--dead_letter_dir DIR .*\n.*\(default \$STATE_DIRECTORY\/dead-letters, else \/var\/lib\/driveshaft\/dead-letters as root, else ~\/\.local\/state\/driveshaft\/dead-letters; env DRIVESHAFT_DEAD_LETTER_DIR\)/);
});

test('parseCommandLine should read every option in --name value form', () => {
  const options = run([
    ...JOBS,
    '--logconfig', '/etc/driveshaft/log.json',
    '--max_running_time', '30',
    '--loop_timeout', '0.5',
    '--child_unresponsive_after', '2.5',
    '--child_kill_after', '0',
    '--status_port', '9000',
    '--status_host', '0.0.0.0',
    '--user', 'nobody',
    '--pid_file', '/run/driveshaft.pid',
    '--dead_letter_dir', '/var/spool/driveshaft',
    '--daemonize',
    '--request_format', 'multipart',
    '--check',
    '--exporter_addr', '0.0.0.0:8888',
    '--exporter_allowed_hosts', 'Metrics.Internal,.example.com',
    '--web_config_file', '/etc/driveshaft/web.yml',
  ]);
  assert.deepEqual(options, {
    jobsconfig: '/etc/driveshaft/jobs.json',
    logconfig: '/etc/driveshaft/log.json',
    max_running_time: 30,
    loop_timeout: 0.5,
    child_unresponsive_after: 2.5,
    child_kill_after: 0,
    status_port: 9000,
    status_host: '0.0.0.0',
    user: 'nobody',
    pid_file: '/run/driveshaft.pid',
    dead_letter_dir: '/var/spool/driveshaft',
    daemonize: true,
    request_format: 'multipart',
    check: true,
    exporter_addr: { host: '0.0.0.0', port: 8888 },
    exporter_allowed_hosts: ['metrics.internal', '.example.com'],
    web_config_file: '/etc/driveshaft/web.yml',
  });
});

test('parseCommandLine should read --name=value form', () => {
  const options = run(['--jobsconfig=/a.json', '--status_port=1234', '--max_running_time=0.25', '--daemonize=false', '--check=1']);
  assert.equal(options.jobsconfig, '/a.json');
  assert.equal(options.status_port, 1234);
  assert.equal(options.max_running_time, 0.25);
  assert.equal(options.daemonize, false);
  assert.equal(options.check, true);
});

test('parseCommandLine should resolve relative paths against the working directory', () => {
  const options = run(['--jobsconfig', 'jobs.json', '--logconfig', './conf/log.json', '--pid_file', '../run/d.pid']);
  assert.equal(options.jobsconfig, path.resolve(process.cwd(), 'jobs.json'));
  assert.equal(options.logconfig, path.resolve(process.cwd(), 'conf/log.json'));
  assert.equal(options.pid_file, path.resolve(process.cwd(), '../run/d.pid'));
});

test('parseCommandLine should read every option from DRIVESHAFT_* environment variables', () => {
  const options = run([], {
    DRIVESHAFT_JOBSCONFIG: '/env/jobs.json',
    DRIVESHAFT_LOGCONFIG: '/env/log.json',
    DRIVESHAFT_MAX_RUNNING_TIME: '60',
    DRIVESHAFT_LOOP_TIMEOUT: '2',
    DRIVESHAFT_CHILD_UNRESPONSIVE_AFTER: '5',
    DRIVESHAFT_CHILD_KILL_AFTER: '30',
    DRIVESHAFT_STATUS_PORT: '8080',
    DRIVESHAFT_STATUS_HOST: '::1',
    DRIVESHAFT_USER: 'www-data',
    DRIVESHAFT_PID_FILE: '/env/d.pid',
    DRIVESHAFT_DEAD_LETTER_DIR: '/env/letters',
    DRIVESHAFT_DAEMONIZE: 'yes',
    DRIVESHAFT_REQUEST_FORMAT: 'multipart',
    DRIVESHAFT_CHECK: 'true',
    DRIVESHAFT_EXPORTER_ADDR: '[::1]:9100',
    DRIVESHAFT_EXPORTER_ALLOWED_HOSTS: 'scrape.internal',
    DRIVESHAFT_WEB_CONFIG_FILE: '/env/web.yml',
  });
  assert.deepEqual(options, {
    jobsconfig: '/env/jobs.json',
    logconfig: '/env/log.json',
    max_running_time: 60,
    loop_timeout: 2,
    child_unresponsive_after: 5,
    child_kill_after: 30,
    status_port: 8080,
    status_host: '::1',
    user: 'www-data',
    pid_file: '/env/d.pid',
    dead_letter_dir: '/env/letters',
    daemonize: true,
    request_format: 'multipart',
    check: true,
    exporter_addr: { host: '::1', port: 9100 },
    exporter_allowed_hosts: ['scrape.internal'],
    web_config_file: '/env/web.yml',
  });
});

test('parseCommandLine should refuse exporter options without --exporter_addr, and host lists that are not names', () => {
  rejects([...JOBS, '--web_config_file', '/etc/web.yml'], '--web_config_file: applies to the exporter; give --exporter_addr too');
  rejects(JOBS, 'DRIVESHAFT_EXPORTER_ALLOWED_HOSTS: applies to the exporter; give --exporter_addr too', { DRIVESHAFT_EXPORTER_ALLOWED_HOSTS: 'a.example' });
  rejects(
    [...JOBS, '--exporter_addr', '9100', '--exporter_allowed_hosts', 'ok.example,evil.example:80'],
    '--exporter_allowed_hosts: expected host names separated by commas (a leading "." allows a domain and its subdomains; no ports; "evil.example:80" is not one), got "ok.example,evil.example:80"',
  );
});

test('parseCommandLine should redact a URI password in the line about a bad value', () => {
  assert.throws(
    () => parseCommandLine([...JOBS, '--exporter_addr', 'http://admin:OptPassSECRET@host:9100'], {}),
    (error: unknown) => {
      assert.ok(error instanceof OptionsError);
      assert.doesNotMatch(error.message, /OptPassSECRET/);
      assert.match(error.message, /admin:\*\*\*@host/);
      return true;
    },
  );
  assert.throws(() => parseCommandLine(['http://u:PositionalSECRET@h'], {}), (error: unknown) => !String((error as Error).message).includes('PositionalSECRET'));
});

test('parseCommandLine should let the command line win over the environment', () => {
  const options = run([...JOBS, '--loop_timeout', '3'], { DRIVESHAFT_LOOP_TIMEOUT: '2', DRIVESHAFT_STATUS_PORT: '8080' });
  assert.equal(options.loop_timeout, 3);
  assert.equal(options.status_port, 8080);
  assert.equal(options.jobsconfig, '/etc/driveshaft/jobs.json');
});

test('parseCommandLine should treat an empty environment variable as unset', () => {
  const options = run(JOBS, { DRIVESHAFT_USER: '', DRIVESHAFT_STATUS_PORT: '' });
  assert.equal(options.user, null);
  assert.equal(options.status_port, null);
});

test('parseCommandLine should ignore unrelated and unknown environment variables', () => {
  const options = run(JOBS, { PATH: '/bin', DRIVESHAFT_SOMETHING_ELSE: 'x', HOME: '/root' });
  assert.equal(options.loop_timeout, 10);
});

test('parseCommandLine should name the environment variable when its value is bad', () => {
  rejects(JOBS, 'DRIVESHAFT_STATUS_PORT: expected a TCP port number from 1 to 65535, got "80x"', { DRIVESHAFT_STATUS_PORT: '80x' });
  rejects(JOBS, 'DRIVESHAFT_DAEMONIZE: expected no value, or one of true, false, 1, 0, yes, no, on, off, got "maybe"', {
    DRIVESHAFT_DAEMONIZE: 'maybe',
  });
});

test('parseCommandLine should return help for --help and -h, even beside bad arguments', () => {
  for (const argv of [['--help'], ['-h'], ['--bogus', '--help'], [...JOBS, '--loop_timeout', '-1', '-h']]) {
    const result = parseCommandLine(argv, {});
    assert.equal(result.kind, 'help');
    assert.equal((result as { text: string }).text, helpText());
  }
});

test('parseCommandLine should return the version for --version and -v', () => {
  const manifest = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const argv of [['--version'], ['-v'], [...JOBS, '--version']]) {
    assert.deepEqual(parseCommandLine(argv, {}), { kind: 'version', text: `driveshaft ${manifest.version}` });
  }
  assert.equal(versionText(), `driveshaft ${manifest.version}`);
});

test('helpText should list every option with its default and environment variable', () => {
  const text = helpText();
  for (const name of ['help', 'version', 'jobsconfig', 'logconfig', 'max_running_time', 'loop_timeout', 'child_unresponsive_after', 'child_kill_after', 'status_port', 'status_host', 'user', 'pid_file', 'dead_letter_dir', 'daemonize', 'request_format', 'check', 'exporter_addr']) {
    assert.match(text, new RegExp(`--${name}\\b`), name);
  }
  for (const env of ['JOBSCONFIG', 'LOGCONFIG', 'MAX_RUNNING_TIME', 'LOOP_TIMEOUT', 'CHILD_UNRESPONSIVE_AFTER', 'CHILD_KILL_AFTER', 'STATUS_PORT', 'STATUS_HOST', 'USER', 'PID_FILE', 'DEAD_LETTER_DIR', 'DAEMONIZE', 'REQUEST_FORMAT', 'CHECK', 'EXPORTER_ADDR']) {
    assert.match(text, new RegExp(`env DRIVESHAFT_${env}\\b`), env);
  }
  assert.match(text, /--max_running_time S .*\n.*default 300; env DRIVESHAFT_MAX_RUNNING_TIME/);
  assert.match(text, /--loop_timeout S .*\n.*default 10; env DRIVESHAFT_LOOP_TIMEOUT/);
  assert.match(text, /--child_unresponsive_after S .*\n.*default 10; env DRIVESHAFT_CHILD_UNRESPONSIVE_AFTER/);
  assert.match(text, /--child_kill_after S .*\n.*default 60; env DRIVESHAFT_CHILD_KILL_AFTER/);
  assert.match(text, /--status_host HOST .*\n.*default 127\.0\.0\.1; env DRIVESHAFT_STATUS_HOST/);
  assert.match(text, /--request_format F .*\n.*default json; env DRIVESHAFT_REQUEST_FORMAT/);
});

test('parseCommandLine should require --jobsconfig', () => {
  rejects([], '--jobsconfig: is required: give --jobsconfig PATH or set DRIVESHAFT_JOBSCONFIG');
  rejects(['--daemonize'], '--jobsconfig: is required: give --jobsconfig PATH or set DRIVESHAFT_JOBSCONFIG');
});

test('parseCommandLine should reject an unknown option with a suggestion', () => {
  rejects([...JOBS, '--loop_timout', '1'], '--loop_timout: unknown option; did you mean --loop_timeout? (see --help)');
  rejects([...JOBS, '--statusport=1'], '--statusport: unknown option; did you mean --status_port? (see --help)');
  rejects([...JOBS, '--verbose'], '--verbose: unknown option (see --help)');
  rejects([...JOBS, '-x'], '-x: unknown option (see --help)');
});

test('parseCommandLine should reject a positional argument', () => {
  rejects([...JOBS, 'extra'], '"extra": unexpected argument; every option starts with -- (see --help)');
});

test('parseCommandLine should reject an option without its value', () => {
  rejects(['--jobsconfig'], '--jobsconfig: expected a value (--jobsconfig PATH)');
  rejects(['--status_port', '--jobsconfig', 'a'], '--status_port: expected a value (--status_port N)');
});

test('parseCommandLine should reject an option given twice', () => {
  rejects([...JOBS, '--loop_timeout', '1', '--loop_timeout=2'], '--loop_timeout: given more than once');
});

test('parseCommandLine should bound the child heartbeat options and keep the kill after the warning', () => {
  rejects([...JOBS, '--child_unresponsive_after', '0.5'], '--child_unresponsive_after: expected at least 1 seconds (four heartbeats at the shortest heartbeat interval, 250 ms), got "0.5"');
  rejects([...JOBS, '--child_unresponsive_after', '0'], '--child_unresponsive_after: expected a positive number of seconds, got "0"');
  rejects([...JOBS, '--child_kill_after', '-1'], '--child_kill_after: expected a positive number of seconds or 0 (never), got "-1"');
  rejects([...JOBS, '--child_kill_after', '5'], '--child_kill_after: expected 0 (never) or at least --child_unresponsive_after (10), got "5"');
  rejects([...JOBS, '--child_unresponsive_after', '80'], '--child_kill_after: expected 0 (never) or at least --child_unresponsive_after (80), its default is 60: give --child_kill_after too');
  assert.equal(run([...JOBS, '--child_unresponsive_after', '20', '--child_kill_after', '0']).child_kill_after, 0);
  assert.equal(run([...JOBS, '--child_kill_after', '10']).child_kill_after, 10);
});

test('parseCommandLine should reject a negative loop_timeout', () => {
  rejects([...JOBS, '--loop_timeout', '-1'], '--loop_timeout: expected a positive number of seconds, got "-1"');
});

test('parseCommandLine should reject a zero or non-numeric max_running_time', () => {
  rejects([...JOBS, '--max_running_time', '0'], '--max_running_time: expected a positive number of seconds, got "0"');
  rejects([...JOBS, '--max_running_time', '5abc'], '--max_running_time: expected a positive number of seconds, got "5abc"');
  rejects([...JOBS, '--max_running_time', ''], '--max_running_time: expected a positive number of seconds, got ""');
  rejects([...JOBS, '--max_running_time', '0x10'], '--max_running_time: expected a positive number of seconds, got "0x10"');
});

test('parseCommandLine should reject seconds a timer cannot hold', () => {
  rejects([...JOBS, '--max_running_time', '0.0001'], '--max_running_time: expected at least 0.001 seconds (1 ms), got "0.0001"');
  rejects(
    [...JOBS, '--max_running_time', '2147484'],
    '--max_running_time: expected at most 2147483 seconds (the longest wait a Node.js timer can hold), got "2147484"',
  );
  rejects(
    [...JOBS, '--loop_timeout', '600000'],
    '--loop_timeout: expected at most 536870 seconds (the longest wait a Node.js timer can hold), got "600000"',
  );
  assert.equal(run([...JOBS, '--max_running_time', '2147483']).max_running_time, 2147483);
});

test('parseCommandLine should reject a status_port outside 1-65535 or not an integer', () => {
  for (const port of ['0', '65536', '80.5', '-1', 'http']) {
    rejects([...JOBS, '--status_port', port], `--status_port: expected a TCP port number from 1 to 65535, got "${port}"`);
  }
  assert.equal(run([...JOBS, '--status_port', '65535']).status_port, 65535);
  assert.equal(run([...JOBS, '--status_port', '1']).status_port, 1);
});

test('parseCommandLine should reject a request_format other than json or multipart', () => {
  rejects([...JOBS, '--request_format', 'xml'], '--request_format: expected "json" or "multipart", got "xml"');
  rejects([...JOBS, '--request_format', 'JSON'], '--request_format: expected "json" or "multipart", got "JSON"');
});

test('parseCommandLine should reject an empty user, status_host or path', () => {
  rejects([...JOBS, '--user', ''], '--user: expected a user name (non-empty, no spaces), got ""');
  rejects([...JOBS, '--status_host', 'local host'], '--status_host: expected a host name or IP address (non-empty, no spaces), got "local host"');
  rejects(['--jobsconfig='], '--jobsconfig: expected a file path, got ""');
  rejects([...JOBS, '--pid_file', ''], '--pid_file: expected a file path, got ""');
});

test('parseCommandLine should reject a value given to a flag that is not a boolean', () => {
  rejects([...JOBS, '--check=maybe'], '--check: expected no value, or one of true, false, 1, 0, yes, no, on, off, got "maybe"');
});

test('parseCommandLine should report several bad values together on one line', () => {
  rejects(
    [...JOBS, '--loop_timeout', '0', '--status_port', '99999'],
    '--loop_timeout: expected a positive number of seconds, got "0"; --status_port: expected a TCP port number from 1 to 65535, got "99999"',
  );
});

test('parseCommandLine should read --exporter_addr as host:port, [IPv6]:port or a port alone on 127.0.0.1', () => {
  assert.deepEqual(run([...JOBS, '--exporter_addr', '9100']).exporter_addr, { host: '127.0.0.1', port: 9100 });
  assert.deepEqual(run([...JOBS, '--exporter_addr=:9100']).exporter_addr, { host: '127.0.0.1', port: 9100 });
  assert.deepEqual(run([...JOBS, '--exporter_addr', '0.0.0.0:8888']).exporter_addr, { host: '0.0.0.0', port: 8888 });
  assert.deepEqual(run([...JOBS, '--exporter_addr', 'localhost:1']).exporter_addr, { host: 'localhost', port: 1 });
  assert.deepEqual(run([...JOBS, '--exporter_addr', '[::]:65535']).exporter_addr, { host: '::', port: 65535 });
  assert.deepEqual(run(JOBS, { DRIVESHAFT_EXPORTER_ADDR: '10.0.0.1:9100' }).exporter_addr, { host: '10.0.0.1', port: 9100 });
  assert.equal(run(JOBS, { DRIVESHAFT_EXPORTER_ADDR: '' }).exporter_addr, null);
  assert.deepEqual(run([...JOBS, '--exporter_addr', '9101'], { DRIVESHAFT_EXPORTER_ADDR: '9100' }).exporter_addr, { host: '127.0.0.1', port: 9101 });
});

test('parseCommandLine should reject a malformed --exporter_addr with one line naming the option', () => {
  const expected = 'expected HOST:PORT, [IPv6]:PORT or a port alone (binds 127.0.0.1), with a port from 1 to 65535';
  for (const bad of ['0', '65536', 'localhost', 'localhost:', 'host:port', ':', '[::1]', '[nothost]:9100', 'a b:9100', '1.2.3.4:99999']) {
    rejects([...JOBS, '--exporter_addr', bad], `--exporter_addr: ${expected}, got ${JSON.stringify(bad)}`);
  }
  rejects([...JOBS, '--exporter_addr', '::1:9100'], `--exporter_addr: ${expected} (put an IPv6 address in brackets: [::1]:9100), got "::1:9100"`);
  rejects(JOBS, `DRIVESHAFT_EXPORTER_ADDR: ${expected}, got "nope"`, { DRIVESHAFT_EXPORTER_ADDR: 'nope' });
  rejects([...JOBS, '--exporter_addr'], '--exporter_addr: expected a value (--exporter_addr ADDR)');
});

test('formatListenAddress should put IPv6 hosts in brackets for messages', () => {
  assert.equal(formatListenAddress({ host: '127.0.0.1', port: 9100 }), '127.0.0.1:9100');
  assert.equal(formatListenAddress({ host: '::1', port: 9100 }), '[::1]:9100');
  assert.equal(formatListenAddress({ host: 'metrics.local', port: 80 }), 'metrics.local:80');
});
