import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { deadLetterFileName, defaultDeadLetterDir, defaultDeadLetterFile } from '../../src/config/dead-letter-location.js';
import { MAX_CAN_DO_REGISTRATIONS, MAX_FUNCTIONS_PER_POOL, loadJobsConfig, parseJobsConfig, type JobsConfigDefaults } from '../../src/config/jobs-config.js';
import type { ConfigError } from '../../src/errors.js';
import { DEFAULT_DELIVERY } from '../../src/config/types.js';
import type { JobsConfig } from '../../src/config/types.js';
import { DEFAULTS, config, configParser, pool } from './jobs-text.js';
import { tempDir, writeFile } from '../helpers/temp-dir.js';

const FILE = '/etc/driveshaft/jobs.json';
const D = 'pools_list.P.delivery';
const { parse, problems } = configParser(FILE);

/** Problems of one pool P with `delivery` set to `delivery`. */
function deliveryProblems(delivery: unknown): readonly string[] {
  return problems(config({ P: pool({ delivery }) }));
}

function delivery(settings: Record<string, unknown>): JobsConfig['pools'][string]['delivery'] {
  const result = parse(config({ P: pool({ delivery: settings }) })).pools.P;
  assert.ok(result !== undefined);
  return result.delivery;
}

function functions(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `f${i}`);
}

// ---------------------------------------------------------------------------------------------------
// Defaults and accepted values

test('a pool without delivery keys should get keep-alive, no workload limit and DEFAULT_DELIVERY', () => {
  const result = parse(config({ P: pool() })).pools.P;
  assert.equal(result?.keepAlive, true);
  assert.equal(result?.maxWorkloadBytes, 0);
  assert.deepEqual(result?.delivery, DEFAULT_DELIVERY);
  assert.deepEqual(delivery({}), DEFAULT_DELIVERY);
});

test('each pool should get its own copy of the default retry_on_status', () => {
  const pools = parse(config({ A: pool(), B: pool() })).pools;
  assert.notEqual(pools.A?.delivery.retryOnStatus, pools.B?.delivery.retryOnStatus);
  assert.notEqual(pools.A?.delivery.retryOnStatus, DEFAULT_DELIVERY.retryOnStatus);
});

test('keep_alive and max_workload_bytes should be read', () => {
  const pools = parse(config({ Off: pool({ keep_alive: false, max_workload_bytes: 1_048_576 }), On: pool({ keep_alive: true, max_workload_bytes: 0 }) })).pools;
  assert.equal(pools.Off?.keepAlive, false);
  assert.equal(pools.Off?.maxWorkloadBytes, 1_048_576);
  assert.equal(pools.On?.keepAlive, true);
  assert.equal(pools.On?.maxWorkloadBytes, 0);
});

test('every delivery key should be read, seconds turned into milliseconds', () => {
  assert.deepEqual(
    delivery({
      mode: 'fail_fast',
      max_attempts: 1,
      max_retry_duration: 0,
      min_backoff: 0.25,
      max_backoff: 0.25,
      max_doublings: 30,
      retry_on_status: [503, 429],
      breaker_threshold: 0,
      breaker_cooloff: 2,
      breaker_max_cooloff: 2,
      health_url: 'https://api.example.com:8443/health?deep=1#section',
      dead_letter_file: '/var/lib/driveshaft/P.jsonl',
    }),
    {
      mode: 'fail_fast',
      maxAttempts: 1,
      maxRetryDurationMs: 0,
      minBackoffMs: 250,
      maxBackoffMs: 250,
      maxDoublings: 30,
      retryOnStatus: [503, 429],
      breakerThreshold: 0,
      breakerCooloffMs: 2000,
      breakerMaxCooloffMs: 2000,
      healthUrl: 'https://api.example.com:8443/health?deep=1',
      deadLetterFile: '/var/lib/driveshaft/P.jsonl',
    },
  );
});

test('a partial delivery object should keep the defaults of the keys it does not set', () => {
  assert.deepEqual(delivery({ max_attempts: 10, retry_on_status: [], health_url: null, dead_letter_file: null }), {
    ...DEFAULT_DELIVERY,
    maxAttempts: 10,
    retryOnStatus: [],
  });
  assert.equal(delivery({ mode: 'retry', max_doublings: 0, max_retry_duration: 600 }).maxRetryDurationMs, 600_000);
});

// ---------------------------------------------------------------------------------------------------
// dead_letter_file paths

const DEAD_LETTER_DIR = '/var/lib/driveshaft/dead-letters';
const withDir = parseJobsConfigWith(FILE, { ...DEFAULTS, deadLetterDir: DEAD_LETTER_DIR });

/** parse() and problems() with other defaults. */
function parseJobsConfigWith(file: string, defaults: JobsConfigDefaults): { parse: (text: string) => JobsConfig; problems: (text: string) => readonly string[] } {
  return {
    parse: (text) => parseJobsConfig(text, file, defaults),
    problems: (text) => {
      try {
        parseJobsConfig(text, file, defaults);
      } catch (error) {
        return (error as ConfigError).problems;
      }
      return assert.fail('expected a ConfigError');
    },
  };
}

test('with --dead_letter_dir, a retry pool without dead_letter_file (absent or null) should get <dir>/<pool>.jsonl; false and fail_fast none', () => {
  const pools = withDir.parse(
    config({
      Absent: pool(),
      NoDelivery: pool({ delivery: { max_attempts: 3 } }),
      Null: pool({ delivery: { dead_letter_file: null } }),
      Off: pool({ delivery: { dead_letter_file: false } }),
      Explicit: pool({ delivery: { dead_letter_file: 'explicit.jsonl' } }),
      FailFast: pool({ delivery: { mode: 'fail_fast' } }),
      FailFastNull: pool({ delivery: { mode: 'fail_fast', dead_letter_file: null } }),
      FailFastExplicit: pool({ delivery: { mode: 'fail_fast', dead_letter_file: '/srv/ff.jsonl' } }),
    }),
  ).pools;
  const files = Object.fromEntries(Object.entries(pools).map(([name, settings]) => [name, settings.delivery.deadLetterFile]));
  assert.deepEqual(files, {
    Absent: `${DEAD_LETTER_DIR}/Absent.jsonl`,
    NoDelivery: `${DEAD_LETTER_DIR}/NoDelivery.jsonl`,
    Null: `${DEAD_LETTER_DIR}/Null.jsonl`,
    Off: null,
    Explicit: '/etc/driveshaft/explicit.jsonl',
    FailFast: null,
    FailFastNull: null,
    FailFastExplicit: '/srv/ff.jsonl',
  });
  // The resolved path is all the child gets: the rest of the policy is the default one.
  assert.deepEqual(pools.Absent?.delivery, { ...DEFAULT_DELIVERY, deadLetterFile: `${DEAD_LETTER_DIR}/Absent.jsonl` });
});

test('a default dead-letter file name should percent-encode every byte outside [A-Za-z0-9._-], one file per pool name', () => {
  const cases: Array<[string, string]> = [
    ['Regular', 'Regular.jsonl'],
    ['a.b_c-D9', 'a.b_c-D9.jsonl'],
    ['../../etc/passwd', '..%2F..%2Fetc%2Fpasswd.jsonl'],
    ['.', '..jsonl'],
    ['..', '...jsonl'],
    ['with space', 'with%20space.jsonl'],
    ['100%', '100%25.jsonl'],
    ['%25', '%2525.jsonl'],
    ['ünï', '%C3%BCn%C3%AF.jsonl'],
    ['\ufffd', '%EF%BF%BD.jsonl'],
    ['\ud800', '%uD800.jsonl'],
    ['😀', '%F0%9F%98%80.jsonl'],
    ['a/b', 'a%2Fb.jsonl'],
    ['a%2Fb', 'a%252Fb.jsonl'],
  ];
  for (const [name, file] of cases) assert.equal(deadLetterFileName(name), file, JSON.stringify(name));
  const names = cases.map(([name]) => name);
  assert.equal(new Set(names.map(deadLetterFileName)).size, names.length, 'no two pool names share a file');
  // Every file stays in the folder, whatever the name.
  for (const name of names) assert.equal(path.dirname(defaultDeadLetterFile(DEAD_LETTER_DIR, name)), DEAD_LETTER_DIR);
  // And the same through a config (a JSON key may hold a lone surrogate).
  const pools = withDir.parse('{"gearman_servers_list":["h"],"pools_list":{"\\ud800":' + JSON.stringify(pool()) + ',"\\ufffd":' + JSON.stringify(pool()) + '}}').pools;
  assert.deepEqual(Object.values(pools).map((p) => path.basename(p.delivery.deadLetterFile ?? '')), ['%uD800.jsonl', '%EF%BF%BD.jsonl']);
});

test('a pool whose default dead-letter file name would be too long should be told to set dead_letter_file', () => {
  const long = 'x'.repeat(249);
  assert.equal(withDir.parse(config({ [long]: pool() })).pools[long]?.delivery.deadLetterFile, `${DEAD_LETTER_DIR}/${long}.jsonl`);
  const tooLong = `${long}y`;
  assert.deepEqual(withDir.problems(config({ [tooLong]: pool() })), [
    `${FILE}: pools_list.${tooLong}: its default dead-letter file name (the pool name, percent-encoded, plus .jsonl) has 256 bytes, more than the 255 a file name may have; set delivery.dead_letter_file`,
  ]);
  // Not a problem when the pool names its own file or keeps none.
  assert.deepEqual(Object.keys(withDir.parse(config({ [tooLong]: pool({ delivery: { dead_letter_file: false } }) })).pools), [tooLong]);
});

test('an explicit dead_letter_file that is another pool\'s default file should be refused, naming the default', () => {
  assert.deepEqual(withDir.problems(config({ A: pool({ delivery: { dead_letter_file: `${DEAD_LETTER_DIR}/B.jsonl` } }), B: pool() })), [
    `${FILE}: pools_list.B.delivery.dead_letter_file: ${DEAD_LETTER_DIR}/B.jsonl (its default file under --dead_letter_dir) is already the dead-letter file of pools_list.A.delivery.dead_letter_file; every pool needs its own file`,
  ]);
});

test('defaultDeadLetterDir should follow STATE_DIRECTORY, then root, then XDG_STATE_HOME, then HOME', () => {
  assert.equal(defaultDeadLetterDir({ env: { STATE_DIRECTORY: '/var/lib/driveshaft' }, euid: 0 }), '/var/lib/driveshaft/dead-letters');
  assert.equal(defaultDeadLetterDir({ env: { STATE_DIRECTORY: '/var/lib/ds:/var/lib/other', HOME: '/home/u' }, euid: 1000 }), '/var/lib/ds/dead-letters');
  assert.equal(defaultDeadLetterDir({ env: { XDG_STATE_HOME: '/xdg', HOME: '/root' }, euid: 0 }), '/var/lib/driveshaft/dead-letters');
  assert.equal(defaultDeadLetterDir({ env: { XDG_STATE_HOME: '/xdg', HOME: '/home/u' }, euid: 1000 }), '/xdg/driveshaft/dead-letters');
  assert.equal(defaultDeadLetterDir({ env: { XDG_STATE_HOME: 'relative', HOME: '/home/u' }, euid: 1000 }), '/home/u/.local/state/driveshaft/dead-letters');
  assert.equal(defaultDeadLetterDir({ env: { HOME: '/home/u' }, euid: 1000 }), '/home/u/.local/state/driveshaft/dead-letters');
  assert.equal(defaultDeadLetterDir({ env: {}, euid: 1000, homedir: '/home/from-passwd' }), '/home/from-passwd/.local/state/driveshaft/dead-letters');
  assert.equal(defaultDeadLetterDir({ env: { STATE_DIRECTORY: '' }, euid: 0 }), '/var/lib/driveshaft/dead-letters', 'an empty STATE_DIRECTORY counts as unset');
});

test('without --dead_letter_dir (a config loaded alone), a pool without dead_letter_file should have none', () => {
  assert.equal(parse(config({ P: pool() })).pools.P?.delivery.deadLetterFile, null);
});

test('a relative dead_letter_file should resolve against the jobs config folder, not the working directory', () => {
  assert.equal(delivery({ dead_letter_file: 'dead/P.jsonl' }).deadLetterFile, '/etc/driveshaft/dead/P.jsonl');
  assert.equal(delivery({ dead_letter_file: '../log/P.jsonl' }).deadLetterFile, '/etc/log/P.jsonl');
  assert.equal(delivery({ dead_letter_file: './P.jsonl' }).deadLetterFile, '/etc/driveshaft/P.jsonl');
});

test('loadJobsConfig should resolve a relative dead_letter_file against the file even when given a relative config path', (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'conf'));
  const file = writeFile(dir, 'conf/jobs.json', config({ P: pool({ delivery: { dead_letter_file: 'P.jsonl' } }) }));
  const relative = path.relative(process.cwd(), file);
  assert.equal(loadJobsConfig(relative, DEFAULTS).pools.P?.delivery.deadLetterFile, path.join(dir, 'conf', 'P.jsonl'));
});

test('two pools may not share one dead_letter_file, however it is written', () => {
  const text = config({
    A: pool({ delivery: { dead_letter_file: '/etc/driveshaft/dead.jsonl' } }),
    B: pool({ delivery: { dead_letter_file: 'dead.jsonl' } }),
    C: pool({ delivery: { dead_letter_file: './x/../dead.jsonl' } }),
    D: pool({ delivery: { dead_letter_file: 'other.jsonl' } }),
    E: pool(),
    F: pool(),
  });
  assert.deepEqual(problems(text), [
    `${FILE}: pools_list.B.delivery.dead_letter_file: /etc/driveshaft/dead.jsonl is already the dead-letter file of pools_list.A.delivery.dead_letter_file; every pool needs its own file`,
    `${FILE}: pools_list.C.delivery.dead_letter_file: /etc/driveshaft/dead.jsonl is already the dead-letter file of pools_list.A.delivery.dead_letter_file; every pool needs its own file`,
  ]);
});

test('a dead_letter_file may not be the jobs config file itself', () => {
  assert.deepEqual(deliveryProblems({ dead_letter_file: 'jobs.json' }), [
    `${FILE}: ${D}.dead_letter_file: /etc/driveshaft/jobs.json is the jobs config file itself; choose another file`,
  ]);
});

test('a bad dead_letter_file should be one line each', () => {
  const cases: Array<[unknown, string]> = [
    ['', 'expected a file path, null (the default file under --dead_letter_dir) or false (none), got ""'],
    [5, 'expected a file path, null (the default file under --dead_letter_dir) or false (none), got 5'],
    [true, 'expected a file path, null (the default file under --dead_letter_dir) or false (none), got true'],
    ['dead\nletters', 'expected a file path without control characters, got "dead\\nletters"'],
    ['/var/lib/driveshaft/', 'expected a path naming a file, not a directory, got "/var/lib/driveshaft/"'],
    ['/var/lib/..', 'expected a path naming a file, not a directory, got "/var/lib/.."'],
    ['.', 'expected a path naming a file, not a directory, got "."'],
  ];
  for (const [value, text] of cases) {
    assert.deepEqual(deliveryProblems({ dead_letter_file: value }), [`${FILE}: ${D}.dead_letter_file: ${text}`]);
  }
});

// ---------------------------------------------------------------------------------------------------
// Errors, key by key

test('a bad keep_alive or max_workload_bytes should be one line each', () => {
  assert.deepEqual(problems(config({ P: pool({ keep_alive: 'yes', max_workload_bytes: -1 }) })), [
    `${FILE}: pools_list.P.keep_alive: expected true or false, got "yes"`,
    `${FILE}: pools_list.P.max_workload_bytes: expected an integer >= 0 (0 = no limit), got -1`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ keep_alive: 1, max_workload_bytes: 1.5 }) })), [
    `${FILE}: pools_list.P.keep_alive: expected true or false, got 1`,
    `${FILE}: pools_list.P.max_workload_bytes: expected an integer >= 0 (0 = no limit), got 1.5`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ keep_alive: null, max_workload_bytes: '1MB' }) })), [
    `${FILE}: pools_list.P.keep_alive: expected true or false, got null`,
    `${FILE}: pools_list.P.max_workload_bytes: expected an integer >= 0 (0 = no limit), got "1MB"`,
  ]);
});

test('max_response_bytes should default to 64 MiB, be read, and refuse what is not an integer from 1 to 256 MiB', () => {
  const pools = parse(config({ Default: pool(), Small: pool({ max_response_bytes: 1 }), Large: pool({ max_response_bytes: 256 * 1024 * 1024 }) })).pools;
  assert.equal(pools.Default?.maxResponseBytes, 64 * 1024 * 1024);
  assert.equal(pools.Small?.maxResponseBytes, 1);
  assert.equal(pools.Large?.maxResponseBytes, 256 * 1024 * 1024);
  for (const value of [0, -1, 1.5, '64MB', null, 256 * 1024 * 1024 + 1]) {
    assert.deepEqual(problems(config({ P: pool({ max_response_bytes: value }) })), [`${FILE}: pools_list.P.max_response_bytes: expected an integer from 1 to 268435456 (256 MiB), got ${JSON.stringify(value)}`]);
  }
});

test('a delivery that is not an object should be one line', () => {
  for (const value of [null, [], 'retry', 3]) {
    assert.deepEqual(deliveryProblems(value), [`${FILE}: ${D}: expected an object of delivery settings, got ${JSON.stringify(value)}`]);
  }
});

test('an unknown key inside delivery should get a did-you-mean or the list of keys', () => {
  assert.deepEqual(deliveryProblems({ max_attemps: 3, breaker_treshold: 2, priority: 1 }), [
    `${FILE}: ${D}.max_attemps: unknown key; did you mean "max_attempts"?`,
    `${FILE}: ${D}.breaker_treshold: unknown key; did you mean "breaker_threshold"?`,
    `${FILE}: ${D}.priority: unknown key; expected one of "mode", "max_attempts", "max_retry_duration", "min_backoff", "max_backoff", "max_doublings", "retry_on_status", "breaker_threshold", "breaker_cooloff", "breaker_max_cooloff", "health_url", "dead_letter_file"`,
  ]);
});

test('a bad mode, max_attempts, max_doublings or breaker_threshold should be one line each', () => {
  assert.deepEqual(deliveryProblems({ mode: 'Retry', max_attempts: 0, max_doublings: 31, breaker_threshold: -1 }), [
    `${FILE}: ${D}.mode: expected "retry" or "fail_fast", got "Retry"`,
    `${FILE}: ${D}.max_attempts: expected an integer >= 1, got 0`,
    `${FILE}: ${D}.max_doublings: expected an integer from 0 to 30, got 31`,
    `${FILE}: ${D}.breaker_threshold: expected an integer >= 0 (0 = the breaker never opens), got -1`,
  ]);
  assert.deepEqual(deliveryProblems({ mode: null, max_attempts: 2.5, max_doublings: -1, breaker_threshold: '5' }), [
    `${FILE}: ${D}.mode: expected "retry" or "fail_fast", got null`,
    `${FILE}: ${D}.max_attempts: expected an integer >= 1, got 2.5`,
    `${FILE}: ${D}.max_doublings: expected an integer from 0 to 30, got -1`,
    `${FILE}: ${D}.breaker_threshold: expected an integer >= 0 (0 = the breaker never opens), got "5"`,
  ]);
});

test('a bad number of seconds should be one line each, 0 allowed only for max_retry_duration', () => {
  assert.deepEqual(deliveryProblems({ max_retry_duration: -1, min_backoff: 0, max_backoff: '5', breaker_cooloff: 0, breaker_max_cooloff: -3 }), [
    `${FILE}: ${D}.max_retry_duration: expected 0 (no limit) or a positive number of seconds, got -1`,
    `${FILE}: ${D}.min_backoff: expected a positive number of seconds, got 0`,
    `${FILE}: ${D}.max_backoff: expected a positive number of seconds, got "5"`,
    `${FILE}: ${D}.breaker_cooloff: expected a positive number of seconds, got 0`,
    `${FILE}: ${D}.breaker_max_cooloff: expected a positive number of seconds, got -3`,
  ]);
  assert.deepEqual(deliveryProblems({ max_retry_duration: 0.0001, min_backoff: 0.0005, breaker_max_cooloff: 1e7 }), [
    `${FILE}: ${D}.max_retry_duration: expected at least 0.001 seconds (1 ms), got 0.0001`,
    `${FILE}: ${D}.min_backoff: expected at least 0.001 seconds (1 ms), got 0.0005`,
    `${FILE}: ${D}.breaker_max_cooloff: expected at most 2147483 seconds (the longest wait a Node.js timer can hold), got 10000000`,
  ]);
  assert.deepEqual(deliveryProblems({ max_retry_duration: null }), [
    `${FILE}: ${D}.max_retry_duration: expected 0 (no limit) or a positive number of seconds, got null`,
  ]);
});

test('max_backoff below min_backoff and breaker_max_cooloff below breaker_cooloff should be one line each', () => {
  assert.deepEqual(deliveryProblems({ min_backoff: 2, max_backoff: 1, breaker_cooloff: 10, breaker_max_cooloff: 5 }), [
    `${FILE}: ${D}.max_backoff: expected at least min_backoff (2 seconds), got 1`,
    `${FILE}: ${D}.breaker_max_cooloff: expected at least breaker_cooloff (10 seconds), got 5`,
  ]);
  // Against a default, the line names the key the file set and says the other one is the default.
  assert.deepEqual(deliveryProblems({ max_backoff: 0.05 }), [`${FILE}: ${D}.max_backoff: expected at least min_backoff (0.1 seconds, the default), got 0.05`]);
  assert.deepEqual(deliveryProblems({ min_backoff: 10 }), [`${FILE}: ${D}.min_backoff: expected at most max_backoff (5 seconds, the default), got 10`]);
  assert.deepEqual(deliveryProblems({ breaker_cooloff: 60 }), [
    `${FILE}: ${D}.breaker_cooloff: expected at most breaker_max_cooloff (30 seconds, the default), got 60`,
  ]);
  // A value already refused is not compared again.
  assert.deepEqual(deliveryProblems({ min_backoff: 'slow', max_backoff: 0.01 }), [`${FILE}: ${D}.min_backoff: expected a positive number of seconds, got "slow"`]);
});

test('a bad retry_on_status should name each bad entry', () => {
  assert.deepEqual(deliveryProblems({ retry_on_status: 503 }), [
    `${FILE}: ${D}.retry_on_status: expected an array of HTTP status codes from 400 to 599 (may be empty), got 503`,
  ]);
  assert.deepEqual(deliveryProblems({ retry_on_status: [200, 503, 399, 600, '429', 502.5, 503, 429] }), [
    `${FILE}: ${D}.retry_on_status[0]: expected an HTTP status code from 400 to 599, got 200`,
    `${FILE}: ${D}.retry_on_status[2]: expected an HTTP status code from 400 to 599, got 399`,
    `${FILE}: ${D}.retry_on_status[3]: expected an HTTP status code from 400 to 599, got 600`,
    `${FILE}: ${D}.retry_on_status[4]: expected an HTTP status code from 400 to 599, got "429"`,
    `${FILE}: ${D}.retry_on_status[5]: expected an HTTP status code from 400 to 599, got 502.5`,
    `${FILE}: ${D}.retry_on_status[6]: 503 is already listed (retry_on_status[1])`,
  ]);
  assert.deepEqual(delivery({ retry_on_status: [400, 599] }).retryOnStatus, [400, 599]);
});

test('a bad health_url should be one line', () => {
  const cases: Array<[unknown, string]> = [
    ['ftp://h/health', 'expected an http:// or https:// URL, or null, got "ftp://h/health"'],
    ['/health', 'expected an http:// or https:// URL, or null, got "/health"'],
    [42, 'expected an http:// or https:// URL, or null, got 42'],
    // The password is redacted even in the line that refuses it (issue #22).
    ['https://u:p@h/health', 'expected an http:// or https:// URL without user:password, got "https://u:***@h/health"'],
  ];
  for (const [value, text] of cases) {
    assert.deepEqual(deliveryProblems({ health_url: value }), [`${FILE}: ${D}.health_url: ${text}`]);
  }
});

test('problems in delivery should come with the pool\'s other problems, and the pool should not be kept', () => {
  assert.deepEqual(problems(config({ P: pool({ worker_count: -1, delivery: { mode: 'never' } }), Q: pool() })), [
    `${FILE}: pools_list.P.worker_count: expected an integer >= 0, got -1`,
    `${FILE}: ${D}.mode: expected "retry" or "fail_fast", got "never"`,
  ]);
});

// ---------------------------------------------------------------------------------------------------
// Registration limits

test('the registration limits should be 10,000 functions per pool and 100,000 CAN_DO in total', () => {
  assert.equal(MAX_FUNCTIONS_PER_POOL, 10_000);
  assert.equal(MAX_CAN_DO_REGISTRATIONS, 100_000);
});

test('a jobs_list of more than 10,000 distinct functions should be refused', () => {
  assert.equal(parse(config({ P: pool({ worker_count: 1, jobs_list: functions(10_000) }) })).pools.P?.jobsList.length, 10_000);
  // Duplicates are dropped before counting.
  assert.equal(parse(config({ P: pool({ worker_count: 1, jobs_list: [...functions(10_000), 'f0'] }) })).pools.P?.jobsList.length, 10_000);
  assert.deepEqual(problems(config({ P: pool({ worker_count: 1, jobs_list: functions(10_001) }) })), [
    `${FILE}: pools_list.P.jobs_list: 10001 functions; at most 10000 per pool (gearmand answers no other connection while it registers a long list)`,
  ]);
});

test('more than 100,000 CAN_DO registrations (workers × functions × servers, over all pools) should be refused', () => {
  // Exactly at the limit: 10 × 10,000 × 1, and 5 × 10,000 × 2.
  parse(config({ P: pool({ worker_count: 10, jobs_list: functions(10_000) }) }));
  parse(config({ P: pool({ worker_count: 5, jobs_list: functions(10_000) }) }, ['g1', 'g2']));
  // Over, in each factor.
  assert.deepEqual(problems(config({ P: pool({ worker_count: 11, jobs_list: functions(10_000) }) })), [
    `${FILE}: pools_list: 110000 CAN_DO registrations (worker_count × functions × 1 server, summed over the pools; the most: pools_list.P with 110000); at most 100000, because gearmand answers no other connection while it registers them; lower worker_count or shorten jobs_list`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ worker_count: 5, jobs_list: functions(10_000) }) }, ['g1', 'g2', 'g3'])), [
    `${FILE}: pools_list: 150000 CAN_DO registrations (worker_count × functions × 3 servers, summed over the pools; the most: pools_list.P with 150000); at most 100000, because gearmand answers no other connection while it registers them; lower worker_count or shorten jobs_list`,
  ]);
  // Summed over pools; a pool at worker_count 0 registers nothing.
  const pools = (bFunctions: number): Record<string, unknown> => ({
    A: pool({ worker_count: 6, jobs_list: functions(10_000) }),
    B: pool({ worker_count: 5, jobs_list: functions(bFunctions) }),
    Off: pool({ worker_count: 0, jobs_list: functions(10_000) }),
  });
  parse(config(pools(8_000)));
  assert.deepEqual(problems(config(pools(8_001))), [
    `${FILE}: pools_list: 100005 CAN_DO registrations (worker_count × functions × 1 server, summed over the pools; the most: pools_list.A with 60000); at most 100000, because gearmand answers no other connection while it registers them; lower worker_count or shorten jobs_list`,
  ]);
});
