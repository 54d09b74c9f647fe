import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/child/token-bucket.js';

test('TokenBucket should start full, refill at its rate and never hold more than its burst', () => {
  let now = 0;
  const bucket = new TokenBucket(50, 10, () => now);
  for (let i = 0; i < 10; i++) assert.ok(bucket.take());
  assert.equal(bucket.take(), false);
  assert.equal(bucket.msUntilToken(), 20);
  now += 20;
  assert.ok(bucket.take());
  now += 10_000;
  assert.equal(bucket.tokens, 10);
});

test('TokenBucket.giveBack should return an unused token, up to the burst', () => {
  const bucket = new TokenBucket(1, 2, () => 0);
  assert.ok(bucket.take());
  bucket.giveBack();
  bucket.giveBack();
  assert.equal(bucket.tokens, 2);
});

test('TokenBucket.takeOnCredit should go below zero by at most one burst, and new takes wait for the debt', () => {
  let now = 0;
  const bucket = new TokenBucket(10, 3, () => now);
  for (let i = 0; i < 10; i++) bucket.takeOnCredit();
  assert.equal(bucket.tokens, -3);
  assert.equal(bucket.msUntilToken(), 400);
  now += 399;
  assert.equal(bucket.available, false);
  now += 1;
  assert.ok(bucket.take());
});

test('TokenBucket.configure should keep the tokens (at most the new burst) and refill at the new rate', () => {
  let now = 0;
  const bucket = new TokenBucket(10, 10, () => now);
  bucket.configure(2, 4);
  assert.equal(bucket.tokens, 4);
  for (let i = 0; i < 4; i++) assert.ok(bucket.take());
  assert.equal(bucket.msUntilToken(), 500);
  now += 500;
  assert.ok(bucket.take());
});
