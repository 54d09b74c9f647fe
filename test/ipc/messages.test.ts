/**
 * The checks the master and a child run on what crossed IPC (src/ipc): a malformed field becomes zero
 * or is refused with a line naming it, never a NaN in a sum or a crash.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { addCounters, COUNTER_NAMES, sanitizeCounters, zeroCounters } from '../../src/ipc/counters.js';
import { sanitizeDelivery } from '../../src/ipc/messages.js';
import type { DeliveryStatus } from '../../src/ipc/messages.js';
import { validateSettings } from '../../src/ipc/settings.js';
import { makeSettings } from '../child/fixtures.js';

test('sanitizeDelivery should keep a well-formed delivery status and refuse or zero what is malformed', () => {
  const good: DeliveryStatus = { breaker: 'half-open', since: 1, lastReason: 'timeout', admitted: 1, retrying: 0, opened: 2, functions: {} };
  assert.deepEqual(sanitizeDelivery(good), good);
  assert.deepEqual(sanitizeDelivery({ ...good, functions: undefined }), good, 'an older child without function breakers: none');
  assert.equal(sanitizeDelivery(undefined), null);
  assert.equal(sanitizeDelivery({ ...good, breaker: 'ajar' as DeliveryStatus['breaker'] }), null, 'an unknown state is not shown');
  assert.deepEqual(sanitizeDelivery({ ...good, opened: Number.NaN, retrying: -3, lastReason: 7 as unknown as string }), { ...good, opened: 0, retrying: 0, lastReason: null });
});

test('sanitizeDelivery should keep well-formed function breakers, drop malformed ones, and keep a function named __proto__ as a function', () => {
  const open = { breaker: 'open', since: 5, lastReason: 'HTTP 503', opened: 1 } as const;
  const reported = JSON.parse(JSON.stringify({ breaker: 'closed', since: 1, lastReason: null, admitted: 2, retrying: 0, opened: 0, functions: { Sum: open, Bad: { breaker: 'ajar' }, Worse: null } })) as DeliveryStatus;
  // What crossed IPC as JSON may hold any key, __proto__ included, as an own property.
  Object.defineProperty(reported.functions, '__proto__', { value: { ...open, opened: Number.NaN }, enumerable: true });
  const clean = sanitizeDelivery(reported);
  assert.deepEqual(Object.keys(clean?.functions ?? {}), ['Sum', '__proto__']);
  assert.deepEqual(clean?.functions?.['Sum'], open);
  assert.equal(Object.getPrototypeOf(clean?.functions), Object.prototype, 'the map keeps its prototype');
  assert.equal((Object.getOwnPropertyDescriptor(clean?.functions, '__proto__')?.value as { opened: number } | undefined)?.opened, 0);
});

test('sanitizeCounters should keep finite counts and zero what is missing or not a number', () => {
  const reported = { ...zeroCounters(), jobs_completed: 5, jobs_failed: Number.NaN, http_errors: 'x', jobs_retried: Infinity, extra: 9 };
  const clean = sanitizeCounters(reported);
  assert.deepEqual(clean, { ...zeroCounters(), jobs_completed: 5 });
  assert.deepEqual(Object.keys(clean), [...COUNTER_NAMES], 'exactly the counters, nothing the child made up');
  assert.deepEqual(sanitizeCounters(undefined), zeroCounters());
  assert.deepEqual(sanitizeCounters({ jobs_completed: 2 }), { ...zeroCounters(), jobs_completed: 2 }, 'an older child without the newer counters');
  assert.equal(addCounters(clean, sanitizeCounters({ jobs_completed: 2 })).jobs_completed, 7);
});

test('validateSettings should accept a full settings object and name every malformed field', () => {
  const settings = makeSettings([{ host: '127.0.0.1', port: 4730, label: '127.0.0.1:4730' }], 'http://127.0.0.1:1/');
  assert.equal(validateSettings(settings), settings);
  assert.equal(validateSettings({ ...settings, heartbeatIntervalMs: 500 }).heartbeatIntervalMs, 500);
  assert.throws(
    () => validateSettings({ ...settings, loopTimeoutMs: 0, heartbeatIntervalMs: Number.NaN }),
    (error: Error & { code?: string; problems?: string[] }) => {
      assert.equal(error.code, ErrorCode.CONFIG);
      assert.deepEqual(error.problems, ['settings.loopTimeoutMs: expected a number > 0', 'settings.heartbeatIntervalMs: expected a number > 0 or nothing']);
      return true;
    },
  );
  assert.throws(() => validateSettings(null), /settings: expected an object/);
});
