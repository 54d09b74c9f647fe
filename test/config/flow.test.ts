import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultBurst } from '../../src/config/flow.js';
import { config, configParser, pool } from './jobs-text.js';

const FILE = '/etc/driveshaft/jobs.json';
const { parse, problems } = configParser(FILE);

function flowOf(extra: Record<string, unknown>): { rateLimit: unknown; concurrency: unknown } {
  const result = parse(config({ P: pool(extra) })).pools.P;
  assert.ok(result !== undefined);
  return { rateLimit: result.rateLimit, concurrency: result.concurrency };
}

test('a pool without flow keys should have no rate limit and fixed concurrency', () => {
  assert.deepEqual(flowOf({}), { rateLimit: null, concurrency: { mode: 'fixed', min: 2 } });
  assert.deepEqual(flowOf({ rate_limit: null }).rateLimit, null);
});

test('rate_limit should read per_second and burst, burst defaulting to a tenth of a second of tokens', () => {
  assert.deepEqual(flowOf({ rate_limit: { per_second: 50, burst: 10 } }).rateLimit, { perSecond: 50, burst: 10 });
  assert.deepEqual(flowOf({ rate_limit: { per_second: 50 } }).rateLimit, { perSecond: 50, burst: 5 });
  assert.deepEqual(flowOf({ rate_limit: { per_second: 0.5 } }).rateLimit, { perSecond: 0.5, burst: 1 });
  assert.equal(defaultBurst(1000), 100);
  assert.equal(defaultBurst(0.01), 1);
});

test('concurrency should read mode and min', () => {
  assert.deepEqual(flowOf({ concurrency: { mode: 'adaptive' } }).concurrency, { mode: 'adaptive', min: 2 });
  assert.deepEqual(flowOf({ concurrency: { mode: 'adaptive', min: 5 } }).concurrency, { mode: 'adaptive', min: 5 });
  assert.deepEqual(flowOf({ concurrency: { mode: 'fixed' } }).concurrency, { mode: 'fixed', min: 2 });
});

test('bad flow keys should each be one line with the JSON path and what was expected', () => {
  const at = 'pools_list.P';
  assert.deepEqual(problems(config({ P: pool({ rate_limit: 50 }) })), [
    `${FILE}: ${at}.rate_limit: expected an object {"per_second": N, "burst": N}, or null for no limit, got 50`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ rate_limit: { burst: 3 } }) })), [
    `${FILE}: ${at}.rate_limit.per_second: missing; expected a number of jobs per second > 0, at most 1000000`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ rate_limit: { per_second: 0 } }) })), [
    `${FILE}: ${at}.rate_limit.per_second: expected a number of jobs per second > 0, at most 1000000 (0.5 = one job every 2 s), got 0`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ rate_limit: { per_second: 5, burst: 0.5, per_minute: 3 } }) })), [
    `${FILE}: ${at}.rate_limit.per_minute: unknown key; expected one of "per_second", "burst"`,
    `${FILE}: ${at}.rate_limit.burst: expected an integer from 1 to 1000000, got 0.5`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ concurrency: 'adaptive' }) })), [
    `${FILE}: ${at}.concurrency: expected an object {"mode": "fixed" or "adaptive", "min": N}, got "adaptive"`,
  ]);
  assert.deepEqual(problems(config({ P: pool({ concurrency: { mode: 'auto', min: 0, mni: 2 } }) })), [
    `${FILE}: ${at}.concurrency.mni: unknown key; did you mean "min"?`,
    `${FILE}: ${at}.concurrency.mode: expected "fixed" or "adaptive", got "auto"`,
    `${FILE}: ${at}.concurrency.min: expected an integer from 1 to 100000 (worker_count caps it), got 0`,
  ]);
});
