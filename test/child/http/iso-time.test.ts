/**
 * The Driveshaft-First-Attempt header's time (request-builder.ts, isoTime) is built from a cached
 * second and a padded millisecond: it must equal Date#toISOString for every value, in any order
 * (a retried job's first attempt is older than the job before it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoTime } from '../../../src/child/http/request-builder.js';

function expectSame(ms: number): void {
  assert.equal(isoTime(ms), new Date(ms).toISOString(), `ms ${ms}`);
}

test('every millisecond across second, minute, day and year boundaries formats as toISOString', () => {
  for (const boundary of [Date.UTC(2026, 11, 6, 22, 59, 59, 0), Date.UTC(2026, 11, 31, 23, 59, 59, 0), Date.UTC(2028, 1, 28, 23, 59, 59, 0), 0]) {
    for (let ms = Math.max(0, boundary - 5); ms < boundary + 2_005; ms++) expectSame(ms);
  }
});

test('values out of order, repeated, and far apart format as toISOString', () => {
  const now = Date.now();
  const values = [now, now, now - 1, now + 999, now - 86_400_000, now, 1, 999, 1_000, 253_402_300_799_999];
  for (let i = 0; i < 10_000; i++) values.push(Math.floor(Math.random() * 4_102_444_800_000));
  for (const ms of values) expectSame(ms);
});

test('a fraction of a millisecond and dates past year 9999 take toISOString itself', () => {
  for (const ms of [Date.now() + 0.5, 253_402_300_800_000, 8.64e15]) expectSame(ms);
});
