import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runCheck } from '../../src/config/check.js';
import type { DaemonOptions } from '../../src/config/types.js';
import { tempDir, writeFile } from './temp-dir.js';

function options(extra: Partial<DaemonOptions>): DaemonOptions {
  return {
    jobsconfig: '/nonexistent/jobs.json',
    logconfig: null,
    max_running_time: 300,
    loop_timeout: 10,
    status_port: null,
    status_host: '127.0.0.1',
    user: null,
    pid_file: null,
    daemonize: false,
    request_format: 'json',
    check: true,
    exporter_addr: null,
    ...extra,
  };
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
      'pool "A": delivery retry, max_attempts 5, breaker_threshold 5, dead_letter_file none',
      'pool "B": delivery retry, max_attempts 5, breaker_threshold 5, dead_letter_file none',
      'pool "C": delivery retry, max_attempts 5, breaker_threshold 5, dead_letter_file none',
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
      'pool "A": delivery retry, max_attempts 5, breaker_threshold 5, dead_letter_file none',
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
    'pool "A": delivery retry, max_attempts 5, breaker_threshold 5, dead_letter_file none',
    'pool "B": delivery retry, max_attempts 5, breaker_threshold 5, dead_letter_file none',
    'pool "C": delivery retry, max_attempts 5, breaker_threshold 5, dead_letter_file none',
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
