import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCheck } from '../../src/config/check.js';
import type { CheckResult } from '../../src/config/check.js';
import type { DaemonOptions } from '../../src/config/types.js';
import { daemonOptions } from '../helpers/daemon-options.js';
import { tempDir, writeFile } from '../helpers/temp-dir.js';

/** --check's options; --dead_letter_dir is `dead-letters` beside the jobs config unless given. */
function options(extra: Partial<DaemonOptions>): DaemonOptions {
  return daemonOptions(extra.jobsconfig ?? '/nonexistent/jobs.json', { check: true, ...extra });
}

/** The delivery line of a pool with the default policy and its default dead-letter file under `dir`. */
function defaultLine(pool: string, dir: string): string {
  return `pool "${pool}": delivery retry, max_attempts 10, breaker_threshold 5, dead_letter_file ${path.join(dir, 'dead-letters', `${pool}.jsonl`)} (the default, under --dead_letter_dir)`;
}

/** The line of a --dead_letter_dir that the daemon will create. */
function createdLine(dir: string, owner = ''): string {
  return `dead-letter folder ${path.join(dir, 'dead-letters')} (--dead_letter_dir) does not exist yet: the daemon creates it at startup (mode 0700${owner})`;
}

const GOOD_JOBS = {
  gearman_servers_list: ['localhost', '10.0.0.2:4730'],
  pools_list: {
    A: { job_processing_uri: 'http://x/', worker_count: 4, jobs_list: ['F'] },
    B: { job_processing_uri: 'http://x/', worker_count: 8, jobs_list: ['G'] },
    C: { job_processing_uri: 'http://x/', worker_count: 0, jobs_list: ['H'] },
  },
};

test('runCheck should report a good jobs config, no log config and the descriptor budget', (t) => {
  const dir = tempDir(t);
  const jobsconfig = writeFile(dir, 'jobs.json', GOOD_JOBS);
  assert.deepEqual(runCheck(options({ jobsconfig }), 1024), {
    ok: true,
    lines: [
      `jobs config ${jobsconfig} OK: 3 pools, 12 slots, 2 servers`,
      'file descriptors OK: at most 56 per process, limit 1024',
      defaultLine('A', dir),
      defaultLine('B', dir),
      defaultLine('C', dir),
      createdLine(dir),
      'log config: none given, JSON lines to stdout at level info',
    ],
  });
});

test('runCheck should report a good log config', (t) => {
  const dir = tempDir(t);
  const jobsconfig = writeFile(dir, 'jobs.json', { gearman_servers_list: ['h'], pools_list: { A: GOOD_JOBS.pools_list.A } });
  const logconfig = writeFile(dir, 'log.json', { name: 'driveshaft', level: 'debug', streams: [{ type: 'file', path: 'd.log' }] });
  const result = runCheck(options({ jobsconfig, logconfig }), Infinity);
  assert.deepEqual(result, {
    ok: true,
    lines: [
      `jobs config ${jobsconfig} OK: 1 pool, 4 slots, 1 server`,
      'file descriptors OK: at most 40 per process, limit unlimited',
      defaultLine('A', dir),
      createdLine(dir),
      `log config ${logconfig} OK`,
    ],
  });
});

test('runCheck should report every problem of both files', (t) => {
  const dir = tempDir(t);
  const jobsconfig = writeFile(dir, 'jobs.json', { gearman_servers_list: [], pools_list: { A: { worker_cuont: 1 } } });
  const logconfig = writeFile(dir, 'log.json', { level: 'loud' });
  const result = runCheck(options({ jobsconfig, logconfig }), 1024);
  assert.equal(result.ok, false);
  assert.deepEqual(result.lines, [
    `${jobsconfig}: gearman_servers_list: expected a non-empty array of gearmand addresses ("host", "host:port" or "[ipv6]:port"), got []`,
    `${jobsconfig}: pools_list.A.worker_cuont: unknown key; did you mean "worker_count"?`,
    `${jobsconfig}: pools_list.A.job_processing_uri: missing; expected an http:// or https:// URL`,
    `${jobsconfig}: pools_list.A.jobs_list: missing; expected a non-empty array of function names`,
    `${logconfig}: level: expected one of trace, debug, info, warn, error, fatal`,
  ]);
});

test('runCheck should report missing files', (t) => {
  const dir = tempDir(t);
  const jobsconfig = path.join(dir, 'jobs.json');
  const logconfig = path.join(dir, 'log.json');
  const result = runCheck(options({ jobsconfig, logconfig }), 1024);
  assert.equal(result.ok, false);
  assert.equal(result.lines[0], `${jobsconfig}: cannot read jobs config: no such file`);
  assert.match(result.lines[1] as string, new RegExp(`^${logconfig.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read log config: `));
  assert.equal(result.lines.length, 2);
});

test('runCheck should refuse a config over the descriptor budget', (t) => {
  const dir = tempDir(t);
  const jobsconfig = writeFile(dir, 'jobs.json', GOOD_JOBS);
  const result = runCheck(options({ jobsconfig }), 50);
  assert.equal(result.ok, false);
  assert.deepEqual(result.lines, [
    `jobs config ${jobsconfig} OK: 3 pools, 12 slots, 2 servers`,
    'pool "B" needs 56 file descriptors (8 slots × 2 servers + 8 HTTP connections + 32 reserved) but the open-file limit is 50; raise it (ulimit -n) or lower worker_count',
    defaultLine('A', dir),
    defaultLine('B', dir),
    defaultLine('C', dir),
    createdLine(dir),
    'log config: none given, JSON lines to stdout at level info',
  ]);
});

test('runCheck should report a bad per-pool max_running_time', (t) => {
  const dir = tempDir(t);
  const jobsconfig = writeFile(dir, 'jobs.json', { gearman_servers_list: ['h'], pools_list: { A: { ...GOOD_JOBS.pools_list.A, max_running_time: -1 } } });
  const result = runCheck(options({ jobsconfig }), 1024);
  assert.deepEqual(result.lines, [
    `${jobsconfig}: pools_list.A.max_running_time: expected a positive number of seconds, got -1`,
    'log config: none given, JSON lines to stdout at level info',
  ]);
  assert.equal(result.ok, false);
});

const CHECK_MODULE = new URL('../../src/config/check.js', import.meta.url).href;
const NOBODY = 65534;

/** A jobs config with pool A (dead-letter file `deadLetterFile`, written as is) in `dir`. */
function deadLetterJobs(dir: string, deadLetterFile: string, delivery: Record<string, unknown> = {}): string {
  return writeFile(dir, 'jobs.json', {
    gearman_servers_list: ['h'],
    pools_list: { A: { ...GOOD_JOBS.pools_list.A, delivery: { ...delivery, dead_letter_file: deadLetterFile } } },
  });
}

/**
 * runCheck as an unprivileged user: root may write anywhere, so an unwritable folder is only
 * unwritable to someone else. As root, it runs in a child process that loads the module as root (the
 * checkout may be private), then becomes nobody; otherwise in-process.
 */
function runCheckUnprivileged(jobsconfig: string): CheckResult {
  if (process.getuid?.() !== 0) return runCheck(options({ jobsconfig }), 1024);
  const script = `import { runCheck } from ${JSON.stringify(CHECK_MODULE)};
    process.setgroups([${NOBODY}]);
    process.setgid(${NOBODY});
    process.setuid(${NOBODY});
    process.stdout.write(JSON.stringify(runCheck(JSON.parse(process.argv[1]), 1024)));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(options({ jobsconfig }))], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as CheckResult;
}

test('runCheck should print each pool\'s delivery policy and accept a writable dead-letter folder', (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'dead'));
  const jobsconfig = writeFile(dir, 'jobs.json', {
    gearman_servers_list: ['h'],
    pools_list: {
      Retry: { ...GOOD_JOBS.pools_list.A, delivery: { max_attempts: 3, breaker_threshold: 0, dead_letter_file: 'dead/retry.jsonl' } },
      Fast: { ...GOOD_JOBS.pools_list.B, delivery: { mode: 'fail_fast', dead_letter_file: path.join(dir, 'fast.jsonl') }, rate_limit: { per_second: 0.5 }, concurrency: { mode: 'adaptive' } },
      Plain: GOOD_JOBS.pools_list.C,
    },
  });
  // An existing, writable dead-letter file is fine too.
  fs.writeFileSync(path.join(dir, 'fast.jsonl'), '');
  assert.deepEqual(runCheck(options({ jobsconfig }), 1024), {
    ok: true,
    lines: [
      `jobs config ${jobsconfig} OK: 3 pools, 12 slots, 1 server`,
      'file descriptors OK: at most 48 per process, limit 1024',
      `pool "Retry": delivery retry, max_attempts 3, breaker_threshold 0 (never opens), dead_letter_file ${path.join(dir, 'dead', 'retry.jsonl')}`,
      `pool "Fast": delivery fail_fast (no retries, no breaker), dead_letter_file ${path.join(dir, 'fast.jsonl')}, rate_limit 0.5/s (burst 1), concurrency adaptive (min 2, at most worker_count ${GOOD_JOBS.pools_list.B.worker_count})`,
      defaultLine('Plain', dir),
      createdLine(dir),
      'log config: none given, JSON lines to stdout at level info',
    ],
  });
});

test('runCheck should refuse a dead-letter file whose folder is missing or not a folder', (t) => {
  const dir = tempDir(t);
  writeFile(dir, 'plain-file', 'x');
  fs.mkdirSync(path.join(dir, 'a-directory'));
  const cases: Array<[string, string]> = [
    ['missing/A.jsonl', `cannot write ${path.join(dir, 'missing', 'A.jsonl')}: directory ${path.join(dir, 'missing')}: does not exist`],
    ['plain-file/A.jsonl', `cannot write ${path.join(dir, 'plain-file', 'A.jsonl')}: ${path.join(dir, 'plain-file')} is not a directory`],
    ['plain-file/sub/A.jsonl', `cannot write ${path.join(dir, 'plain-file', 'sub', 'A.jsonl')}: directory ${path.join(dir, 'plain-file', 'sub')}: a parent of it is not a directory`],
    ['a-directory', `cannot write ${path.join(dir, 'a-directory')}: it exists and is not a regular file`],
  ];
  for (const [deadLetterFile, problem] of cases) {
    const jobsconfig = deadLetterJobs(dir, deadLetterFile);
    const result = runCheck(options({ jobsconfig }), 1024);
    assert.equal(result.ok, false, deadLetterFile);
    assert.deepEqual(result.lines.slice(2, 4), [
      `pool "A": delivery retry, max_attempts 10, breaker_threshold 5, dead_letter_file ${path.resolve(dir, deadLetterFile)}`,
      `${jobsconfig}: pools_list.A.delivery.dead_letter_file: ${problem}`,
    ]);
  }
});

test('runCheck should refuse a dead-letter folder or file the user cannot write', (t) => {
  const dir = tempDir(t);
  // As root the check runs as nobody, who must be able to reach the folder and read the config.
  fs.chmodSync(dir, 0o755);
  const locked = path.join(dir, 'locked');
  fs.mkdirSync(locked, { mode: 0o555 });
  fs.chmodSync(locked, 0o555);
  const open = path.join(dir, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o777);
  const readOnlyFile = writeFile(open, 'read-only.jsonl', '');
  fs.chmodSync(readOnlyFile, 0o444);

  let jobsconfig = deadLetterJobs(dir, 'locked/A.jsonl');
  fs.chmodSync(jobsconfig, 0o644);
  let result = runCheckUnprivileged(jobsconfig);
  assert.equal(result.ok, false);
  assert.equal(result.lines[3], `${jobsconfig}: pools_list.A.delivery.dead_letter_file: cannot write ${path.join(locked, 'A.jsonl')}: directory ${locked}: permission denied`);

  jobsconfig = deadLetterJobs(dir, 'open/read-only.jsonl');
  fs.chmodSync(jobsconfig, 0o644);
  result = runCheckUnprivileged(jobsconfig);
  assert.equal(result.ok, false);
  assert.equal(result.lines[3], `${jobsconfig}: pools_list.A.delivery.dead_letter_file: cannot write ${readOnlyFile}: permission denied`);
});

const asRoot = { skip: process.getuid?.() === 0 ? false : 'needs root (tests --user)' };

test('runCheck as root should test the dead-letter folders as --user and name the folder, the user and the fix', asRoot, (t) => {
  const dir = tempDir(t);
  // nobody must reach the folders; they are root's own (0755): root may write there, nobody may not.
  fs.chmodSync(dir, 0o755);
  const locked = path.join(dir, 'locked');
  fs.mkdirSync(locked, { mode: 0o755 });
  const jobsconfig = deadLetterJobs(dir, 'locked/A.jsonl');
  const asUser = runCheck(options({ jobsconfig, user: 'nobody' }), 1024);
  assert.equal(asUser.ok, false);
  assert.equal(
    asUser.lines[3],
    `${jobsconfig}: pools_list.A.delivery.dead_letter_file: cannot write ${path.join(locked, 'A.jsonl')} as --user nobody: directory ${locked}: permission denied; make ${locked} writable by nobody (e.g. chown nobody ${locked}) or choose another folder`,
  );
  // As root without --user the same folder is fine: the difference is the user.
  assert.equal(runCheck(options({ jobsconfig }), 1024).ok, true);

  // Given to nobody, it passes; and the test file left nothing behind.
  fs.chownSync(locked, 65534, 65534);
  assert.deepEqual(runCheck(options({ jobsconfig, user: 'nobody' }), 1024).ok, true);
  assert.deepEqual(fs.readdirSync(locked), []);

  // The default folder, existing but root's: the line names --dead_letter_dir.
  const deadLetters = path.join(dir, 'dead-letters');
  fs.mkdirSync(deadLetters, { mode: 0o700 });
  const plain = writeFile(dir, 'plain.json', { gearman_servers_list: ['h'], pools_list: { A: GOOD_JOBS.pools_list.A } });
  const result = runCheck(options({ jobsconfig: plain, user: 'nobody' }), 1024);
  assert.equal(result.ok, false);
  assert.deepEqual(result.lines.slice(2, 4), [
    defaultLine('A', dir),
    `--dead_letter_dir ${deadLetters}: cannot write ${path.join(deadLetters, 'A.jsonl')} as --user nobody: directory ${deadLetters}: permission denied; make ${deadLetters} writable by nobody (e.g. chown nobody ${deadLetters}) or choose another folder`,
  ]);
  // An existing letters file nobody cannot append to.
  fs.chownSync(deadLetters, 65534, 65534);
  writeFile(deadLetters, 'A.jsonl', '');
  const fileResult = runCheck(options({ jobsconfig: plain, user: 'nobody' }), 1024);
  assert.equal(fileResult.lines[3], `--dead_letter_dir ${deadLetters}: cannot write ${path.join(deadLetters, 'A.jsonl')} as --user nobody: permission denied; make ${deadLetters} writable by nobody (e.g. chown nobody ${deadLetters}) or choose another folder`);
});

test('runCheck as root should accept a missing --dead_letter_dir nobody can reach once created, and refuse one out of reach', asRoot, (t) => {
  const dir = tempDir(t);
  const plain = writeFile(dir, 'plain.json', { gearman_servers_list: ['h'], pools_list: { A: GOOD_JOBS.pools_list.A } });
  // tempDir is mkdtemp's 0700: nobody could not reach a folder created inside it.
  const hidden = runCheck(options({ jobsconfig: plain, user: 'nobody' }), 1024);
  assert.equal(hidden.ok, false);
  assert.equal(
    hidden.lines[3],
    `--dead_letter_dir ${path.join(dir, 'dead-letters')}: does not exist yet, and --user nobody could not reach it once created: ${dir} is not searchable by nobody; set --dead_letter_dir to a folder nobody can reach`,
  );
  fs.chmodSync(dir, 0o755);
  const reachable = runCheck(options({ jobsconfig: plain, user: 'nobody' }), 1024);
  assert.equal(reachable.ok, true, reachable.lines.join('\n'));
  assert.equal(reachable.lines[3], createdLine(dir, ', owned by nobody'));
  assert.equal(fs.existsSync(path.join(dir, 'dead-letters')), false, '--check creates nothing');

  const unknown = runCheck(options({ jobsconfig: plain, user: 'no-such-user-ds' }), 1024);
  assert.equal(unknown.ok, false);
  assert.equal(unknown.lines[3], '--user no-such-user-ds: no such user');
});
