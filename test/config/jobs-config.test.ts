import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../src/errors.js';
import { editDistance, loadJobsConfig, parseJobsConfig, suggestKey } from '../../src/config/jobs-config.js';
import { DEFAULT_DELIVERY } from '../../src/config/types.js';
import { DEFAULTS, config, configParser, pool } from './jobs-text.js';
import { tempDir, writeFile } from '../helpers/temp-dir.js';

const FILE = '/etc/jobs.json';
const { parse, problems } = configParser(FILE);

const SEED_README_EXAMPLE = `{
"gearman_servers_list":
[
"localhost"
],
"pools_list":
{
"ShopStats":
{
"job_processing_uri": "http://localhost/job.php",
"worker_count": 0,
"jobs_list":
[
"ShopStats"
]
},
"Newsfeed":
{
"job_processing_uri": "http://localhost/job.php",
"worker_count": 0,
"jobs_list":
[
"Newsfeed"
]
},
"Regular":
{
"job_processing_uri": "http://localhost/job.php",
"worker_count": 0,
"jobs_list":
[
"Sum3",
"Sum",
"Sum2"
]
}
}
}`;

test('parseJobsConfig should accept the seed README example', () => {
  const result = parse(SEED_README_EXAMPLE);
  assert.equal(result.path, FILE);
  assert.deepEqual(result.servers, [{ host: 'localhost', port: 4730, label: 'localhost:4730' }]);
  assert.deepEqual(Object.keys(result.pools), ['ShopStats', 'Newsfeed', 'Regular']);
  assert.deepEqual(result.pools.Regular, {
    name: 'Regular',
    jobProcessingUri: 'http://localhost/job.php',
    workerCount: 0,
    jobsList: ['Sum3', 'Sum', 'Sum2'],
    requestFormat: 'json',
    maxRunningTimeMs: 300_000,
    headers: {},
    keepAlive: true,
    maxWorkloadBytes: 0,
    maxResponseBytes: 64 * 1024 * 1024,
    delivery: DEFAULT_DELIVERY,
    traceParentField: null,
    signingKeys: [],
    bearerToken: null,
    tls: null,
    secretSources: [],
    // Flow control off: no rate limit, every slot takes jobs (what every version before did).
    rateLimit: null,
    concurrency: { mode: 'fixed', min: 2 },
  });
});

test('parseJobsConfig should accept a config with two servers', () => {
  const result = parse(config({ Regular: pool({ jobs_list: ['Sum', 'Sum2'] }) }, ['localhost', '10.0.0.2:4730']));
  assert.deepEqual(
    result.servers.map((s) => s.label),
    ['localhost:4730', '10.0.0.2:4730'],
  );
  assert.equal(result.pools.Regular?.workerCount, 4);
});

test('parseJobsConfig should apply per-pool request_format, max_running_time and headers', () => {
  const result = parse(
    config({
      Legacy: pool({ request_format: 'multipart', max_running_time: 2.5, headers: { Authorization: 'Bearer x', 'X-Pool': 'legacy' } }),
      Plain: pool(),
    }),
  );
  assert.equal(result.pools.Legacy?.requestFormat, 'multipart');
  assert.equal(result.pools.Legacy?.maxRunningTimeMs, 2500);
  assert.deepEqual(result.pools.Legacy?.headers, { authorization: 'Bearer x', 'x-pool': 'legacy' });
  assert.equal(result.pools.Plain?.requestFormat, 'json');
  assert.equal(result.pools.Plain?.maxRunningTimeMs, 300_000);
});

test('parseJobsConfig should use the defaults it is given', () => {
  const result = parseJobsConfig(config({ P: pool() }), FILE, { maxRunningTimeMs: 5000, requestFormat: 'multipart' });
  assert.equal(result.pools.P?.maxRunningTimeMs, 5000);
  assert.equal(result.pools.P?.requestFormat, 'multipart');
});

test('parseJobsConfig should remove duplicate functions keeping the first position', () => {
  const result = parse(config({ P: pool({ jobs_list: ['B', 'A', 'B', 'C', 'A'] }) }));
  assert.deepEqual(result.pools.P?.jobsList, ['B', 'A', 'C']);
});

test('parseJobsConfig should allow the same function in two pools', () => {
  const result = parse(config({ One: pool(), Two: pool() }));
  assert.deepEqual(result.pools.One?.jobsList, ['Sum']);
  assert.deepEqual(result.pools.Two?.jobsList, ['Sum']);
});

test('parseJobsConfig should allow an empty pools_list', () => {
  assert.deepEqual(parse(config({})).pools, {});
});

test('parseJobsConfig should move URL credentials into an authorization header', () => {
  const result = parse(config({ P: pool({ job_processing_uri: 'https://us%40r:p%3Ass@example.com:8443/job.php?x=1#frag' }) }));
  assert.equal(result.pools.P?.jobProcessingUri, 'https://example.com:8443/job.php?x=1');
  assert.equal(result.pools.P?.headers.authorization, `Basic ${Buffer.from('us@r:p:ss').toString('base64')}`);
});

test('parseJobsConfig should reject credentials both in the URL and in headers', () => {
  assert.deepEqual(problems(config({ P: pool({ job_processing_uri: 'http://u:p@h/', headers: { Authorization: 'x' } }) })), [
    `${FILE}: pools_list.P.job_processing_uri: credentials are given both in the URL and in headers.authorization; keep one`,
  ]);
});

test('parseJobsConfig should reject a worker_count that is not an integer >= 0', () => {
  assert.deepEqual(problems(config({ Regular: pool({ worker_count: 'four' }) })), [
    `${FILE}: pools_list.Regular.worker_count: expected an integer >= 0, got "four"`,
  ]);
  assert.deepEqual(problems(config({ Regular: pool({ worker_count: -1 }) })), [
    `${FILE}: pools_list.Regular.worker_count: expected an integer >= 0, got -1`,
  ]);
  assert.deepEqual(problems(config({ Regular: pool({ worker_count: 1.5 }) })), [
    `${FILE}: pools_list.Regular.worker_count: expected an integer >= 0, got 1.5`,
  ]);
});

test('parseJobsConfig should suggest the key a typo was meant to be, without also reporting it missing', () => {
  const { worker_count: _count, ...rest } = pool();
  assert.deepEqual(problems(config({ Regular: { ...rest, worker_cuont: 4 } })), [
    `${FILE}: pools_list.Regular.worker_cuont: unknown key; did you mean "worker_count"?`,
  ]);
  assert.deepEqual(problems(JSON.stringify({ gearman_servers_list: ['localhost'], pool_list: {} })), [
    `${FILE}: pool_list: unknown key; did you mean "pools_list"?`,
  ]);
});

test('parseJobsConfig should list the allowed keys for an unknown key with no close match', () => {
  assert.deepEqual(problems(config({ P: pool({ priority: 1 }) })), [
    `${FILE}: pools_list.P.priority: unknown key; expected one of "job_processing_uri", "worker_count", "jobs_list", "request_format", "max_running_time", "headers", "keep_alive", "max_workload_bytes", "max_response_bytes", "delivery", "trace_parent_field", "signing_secrets", "bearer_token_file", "tls", "rate_limit", "concurrency"`,
  ]);
  assert.deepEqual(problems(JSON.stringify({ gearman_servers_list: ['h'], pools_list: {}, version: 2 })), [
    `${FILE}: version: unknown key; expected one of "gearman_servers_list", "pools_list"`,
  ]);
});

test('parseJobsConfig should report missing keys', () => {
  assert.deepEqual(problems(config({ P: {} })), [
    `${FILE}: pools_list.P.job_processing_uri: missing; expected an http:// or https:// URL`,
    `${FILE}: pools_list.P.worker_count: missing; expected an integer >= 0`,
    `${FILE}: pools_list.P.jobs_list: missing; expected a non-empty array of function names`,
  ]);
  assert.deepEqual(problems('{}'), [
    `${FILE}: gearman_servers_list: missing; expected a non-empty array of gearmand addresses ("host", "host:port" or "[ipv6]:port")`,
    `${FILE}: pools_list: missing; expected an object of pools by name`,
  ]);
});

test('parseJobsConfig should reject a root that is not an object', () => {
  assert.deepEqual(problems('[1,2]'), [`${FILE}: (root): expected an object with "gearman_servers_list" and "pools_list", got [1,2]`]);
});

test('parseJobsConfig should reject bad server lists', () => {
  assert.deepEqual(problems(config({}, [])), [
    `${FILE}: gearman_servers_list: expected a non-empty array of gearmand addresses ("host", "host:port" or "[ipv6]:port"), got []`,
  ]);
  assert.deepEqual(problems(config({}, 'localhost')), [
    `${FILE}: gearman_servers_list: expected a non-empty array of gearmand addresses ("host", "host:port" or "[ipv6]:port"), got "localhost"`,
  ]);
  assert.deepEqual(problems(config({}, ['localhost', 4730, 'host:0'])), [
    `${FILE}: gearman_servers_list[1]: expected a string ("host", "host:port", "[ipv6]" or "[ipv6]:port" with a port from 1 to 65535), got 4730`,
    `${FILE}: gearman_servers_list[2]: expected "host", "host:port", "[ipv6]" or "[ipv6]:port" with a port from 1 to 65535, got "host:0"`,
  ]);
});

test('parseJobsConfig should reject duplicate servers, including the default port written out', () => {
  assert.deepEqual(problems(config({}, ['localhost', 'b:1', 'LOCALHOST:4730'])), [
    `${FILE}: gearman_servers_list[2]: duplicate server localhost:4730 (already gearman_servers_list[0])`,
  ]);
});

test('parseJobsConfig should reject a job_processing_uri that is not http or https', () => {
  for (const uri of ['ftp://host/x', 'localhost/job.php', '/job.php', 'http://', 42]) {
    assert.deepEqual(problems(config({ P: pool({ job_processing_uri: uri }) })), [
      `${FILE}: pools_list.P.job_processing_uri: expected an http:// or https:// URL, got ${JSON.stringify(uri)}`,
    ]);
  }
});

test('parseJobsConfig should reject bad jobs_list values', () => {
  assert.deepEqual(problems(config({ P: pool({ jobs_list: [] }) })), [
    `${FILE}: pools_list.P.jobs_list: expected a non-empty array of function names, got []`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ jobs_list: 'Sum' }) })), [
    `${FILE}: pools_list.P.jobs_list: expected a non-empty array of function names, got "Sum"`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ jobs_list: ['Sum', '', 7, 'a\tb', 'x'.repeat(513)] }) })), [
    `${FILE}: pools_list.P.jobs_list[1]: expected a non-empty string, got ""`,
    `${FILE}: pools_list.P.jobs_list[2]: expected a non-empty string, got 7`,
    `${FILE}: pools_list.P.jobs_list[3]: expected a function name without control characters, got "a\\tb"`,
    `${FILE}: pools_list.P.jobs_list[4]: expected a function name of at most 512 bytes, got "${'x'.repeat(58)}…`,
  ]);
});

test('parseJobsConfig should reject a bad request_format or max_running_time', () => {
  assert.deepEqual(problems(config({ P: pool({ request_format: 'form', max_running_time: 0 }) })), [
    `${FILE}: pools_list.P.request_format: expected "json" or "multipart", got "form"`,
    `${FILE}: pools_list.P.max_running_time: expected a positive number of seconds, got 0`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ max_running_time: '30' }) })), [
    `${FILE}: pools_list.P.max_running_time: expected a positive number of seconds, got "30"`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ max_running_time: 1e7 }) })), [
    `${FILE}: pools_list.P.max_running_time: expected at most 2147483 seconds (the longest wait a Node.js timer can hold), got 10000000`,
  ]);
});

test('parseJobsConfig should reject bad headers', () => {
  const headers = {
    'Content-Type': 'text/plain',
    host: 'x',
    'Bad Name': 'x',
    'X-Inject': 'a\r\nEvil: 1',
    'X-Num': 5,
    'X-Dup': 'a',
    'x-dup': 'b',
  };
  assert.deepEqual(problems(config({ P: pool({ headers }) })), [
    `${FILE}: pools_list.P.headers.Content-Type: driveshaft sets this header itself; a pool may not set any of content-type, content-length, host, transfer-encoding, connection, keep-alive, upgrade, expect, te, trailer`,
    `${FILE}: pools_list.P.headers.host: driveshaft sets this header itself; a pool may not set any of content-type, content-length, host, transfer-encoding, connection, keep-alive, upgrade, expect, te, trailer`,
    `${FILE}: pools_list.P.headers["Bad Name"]: expected an HTTP header name (letters, digits and !#$%&'*+.^_\`|~-)`,
    `${FILE}: pools_list.P.headers.X-Inject: expected a string without control characters, got "a\\r\\nEvil: 1"`,
    `${FILE}: pools_list.P.headers.X-Num: expected a string without control characters, got 5`,
    `${FILE}: pools_list.P.headers.x-dup: header "x-dup" is given more than once (names are case-insensitive)`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ headers: ['a'] }) })), [
    `${FILE}: pools_list.P.headers: expected an object of header names to string values, got ["a"]`,
  ]);
});

test('parseJobsConfig should refuse pool headers that driveshaft sets per job', () => {
  const headers = { Traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'Driveshaft-Unique': 'x' };
  const perJob = 'driveshaft sets this header on every job with the job\'s own value; a pool may not set any of traceparent, driveshaft-attempt, driveshaft-first-attempt, driveshaft-function, driveshaft-job-handle, driveshaft-unique';
  assert.deepEqual(problems(config({ P: pool({ headers }) })), [`${FILE}: pools_list.P.headers.Traceparent: ${perJob}`, `${FILE}: pools_list.P.headers.Driveshaft-Unique: ${perJob}`]);
});

test('parseJobsConfig should read trace_parent_field as a workload member name, null by default', () => {
  const result = parse(config({ Traced: pool({ trace_parent_field: 'traceparent' }), Plain: pool(), Off: pool({ trace_parent_field: null }) }));
  assert.equal(result.pools.Traced?.traceParentField, 'traceparent');
  assert.equal(result.pools.Plain?.traceParentField, null);
  assert.equal(result.pools.Off?.traceParentField, null);
  const expected = 'expected the name of a JSON workload member holding a W3C traceparent (a non-empty string), or null';
  assert.deepEqual(problems(config({ P: pool({ trace_parent_field: '' }), Q: pool({ trace_parent_field: true }) })), [
    `${FILE}: pools_list.P.trace_parent_field: ${expected}, got ""`,
    `${FILE}: pools_list.Q.trace_parent_field: ${expected}, got true`,
  ]);
});

test('parseJobsConfig should reject bad pool names and pool values', () => {
  assert.deepEqual(problems(config({ '': pool(), 'a\tb': pool(), P: 3 })), [
    `${FILE}: pools_list[""]: expected a non-empty pool name`,
    `${FILE}: pools_list["a\\tb"]: expected a pool name without control characters`,
    `${FILE}: pools_list.P: expected a pool object with "job_processing_uri", "worker_count" and "jobs_list", got 3`,
  ]);
});

test('parseJobsConfig should report every problem of the file together', () => {
  const text = JSON.stringify({
    gearman_servers_list: ['localhost', 'bad host'],
    pools_list: {
      Regular: { job_processing_uri: 'http://x/', worker_count: 'four', jobs_list: ['Sum'] },
      Other: { job_processing_uri: 'gopher://x', worker_cuont: 1, jobs_list: [] },
    },
  });
  assert.deepEqual(problems(text), [
    `${FILE}: gearman_servers_list[1]: expected "host", "host:port", "[ipv6]" or "[ipv6]:port" with a port from 1 to 65535, got "bad host"`,
    `${FILE}: pools_list.Regular.worker_count: expected an integer >= 0, got "four"`,
    `${FILE}: pools_list.Other.worker_cuont: unknown key; did you mean "worker_count"?`,
    `${FILE}: pools_list.Other.job_processing_uri: expected an http:// or https:// URL, got "gopher://x"`,
    `${FILE}: pools_list.Other.jobs_list: expected a non-empty array of function names, got []`,
  ]);
});

test('parseJobsConfig should report a duplicate pool name with its line and column', () => {
  const text = '{"gearman_servers_list": ["localhost"],\n "pools_list": {\n  "Regular": {"job_processing_uri": "http://x/", "worker_count": 1, "jobs_list": ["A"]},\n  "Regular": {"job_processing_uri": "http://x/", "worker_count": 2, "jobs_list": ["B"]}\n}}';
  assert.deepEqual(problems(text), [
    `${FILE}: pools_list.Regular: key "Regular" appears more than once (JSON keeps only the last one) (line 4, column 3)`,
  ]);
});

test('parseJobsConfig should report invalid JSON with its line and column', () => {
  const text = '{\n  "gearman_servers_list": ["localhost"],\n  "pools_list": {},\n}';
  assert.deepEqual(problems(text), [`${FILE}: not valid JSON: line 3, column 19: trailing comma before '}'`]);
  assert.deepEqual(problems('{"a": 1'), [`${FILE}: not valid JSON: line 1, column 8: expected ',' or '}' after a property value, found the end of the file`]);
  assert.deepEqual(problems(''), [`${FILE}: not valid JSON: line 1, column 1: expected a JSON value, found the end of the file`]);
});

test('parseJobsConfig should accept a file starting with a byte-order mark', () => {
  assert.deepEqual(parse(`\ufeff${config({})}`).pools, {});
});

test('loadJobsConfig should read a file and resolve its path', (t) => {
  const dir = tempDir(t);
  const file = writeFile(dir, 'jobs.json', SEED_README_EXAMPLE);
  const result = loadJobsConfig(file, DEFAULTS);
  assert.equal(result.path, file);
  assert.deepEqual(Object.keys(result.pools), ['ShopStats', 'Newsfeed', 'Regular']);
  const relative = path.relative(process.cwd(), file);
  assert.equal(loadJobsConfig(relative, DEFAULTS).path, file);
});

test('loadJobsConfig should name the file in every problem', (t) => {
  const dir = tempDir(t);
  const file = writeFile(dir, 'jobs.json', { gearman_servers_list: ['localhost'], pools_list: { R: pool({ worker_count: 'four' }) } });
  assert.throws(() => loadJobsConfig(file, DEFAULTS), {
    name: 'ConfigError',
    code: ErrorCode.CONFIG,
    problems: [`${file}: pools_list.R.worker_count: expected an integer >= 0, got "four"`],
  });
});

test('loadJobsConfig should report a missing file, a folder and an unreadable file', (t) => {
  const dir = tempDir(t);
  const missing = path.join(dir, 'nope.json');
  assert.throws(() => loadJobsConfig(missing, DEFAULTS), { code: ErrorCode.CONFIG, problems: [`${missing}: cannot read jobs config: no such file`] });
  assert.throws(() => loadJobsConfig(dir, DEFAULTS), { problems: [`${dir}: cannot read jobs config: it is a directory`] });
  if (process.getuid?.() !== 0) {
    const locked = writeFile(dir, 'locked.json', '{}');
    fs.chmodSync(locked, 0o000);
    assert.throws(() => loadJobsConfig(locked, DEFAULTS), { problems: [`${locked}: cannot read jobs config: permission denied`] });
  }
});

test('editDistance should count a swap of neighbours as one edit', () => {
  assert.equal(editDistance('worker_cuont', 'worker_count'), 1);
  assert.equal(editDistance('jobs_lst', 'jobs_list'), 1);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('same', 'same'), 0);
  assert.equal(suggestKey('Worker_Count', ['worker_count', 'jobs_list']), 'worker_count');
  assert.equal(suggestKey('priority', ['worker_count', 'jobs_list']), null);
});

test('parseJobsConfig should keep a pool or header named like an Object.prototype member as an own property', () => {
  const headersJson = '{"constructor": "c", "__proto__": "p"}';
  const text = `{"gearman_servers_list": ["h"], "pools_list": {"__proto__": ${JSON.stringify(pool()).slice(0, -1)}, "headers": ${headersJson}}}}`;
  const result = parse(text);
  assert.ok(Object.hasOwn(result.pools, '__proto__'));
  assert.deepEqual(Object.keys(result.pools), ['__proto__']);
  const headers = (Object.getOwnPropertyDescriptor(result.pools, '__proto__')?.value as { headers: Record<string, string> }).headers;
  assert.deepEqual(Object.entries(headers), [
    ['constructor', 'c'],
    ['__proto__', 'p'],
  ]);
});
