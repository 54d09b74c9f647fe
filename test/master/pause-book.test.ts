import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PauseBook } from '../../src/master/pause-book.js';
import { jobsConfig, pool } from './support.js';

const BY = { since: 1000, by: '127.0.0.1:1' };

test('PauseBook should pause and resume a pool and its functions, keeping the first mark of a repeated pause', () => {
  const book = new PauseBook();
  assert.deepEqual(book.stateOf('Regular'), { pool: false, functions: [] });
  assert.equal(book.pause('Regular', null, BY), null);
  assert.deepEqual(book.pause('Regular', null, { since: 2000, by: 'later' }), BY);
  assert.equal(book.pause('Regular', 'Resize', BY), null);
  assert.deepEqual(book.stateOf('Regular'), { pool: true, functions: ['Resize'] });
  assert.deepEqual(book.resume('Regular', null), BY);
  assert.equal(book.resume('Regular', null), null);
  assert.deepEqual(book.stateOf('Regular'), { pool: false, functions: ['Resize'] });
  assert.deepEqual(book.resume('Regular', 'Resize'), BY);
  assert.equal(book.view(jobsConfig([pool('Regular')])).size, 0, 'nothing paused, nothing shown');
});

test('PauseBook.prune should drop the pauses of removed pools and functions only', () => {
  const book = new PauseBook();
  book.pause('Gone', null, BY);
  book.pause('Regular', null, BY);
  book.pause('Regular', 'Dropped', BY);
  book.pause('Regular', 'Kept', BY);
  book.pause('Parked', null, BY);
  const config = jobsConfig([pool('Regular', { jobsList: ['Kept', 'Other'] }), pool('Parked', { workerCount: 0 })]);
  assert.deepEqual(book.prune(config), [
    { pool: 'Gone', function: null, mark: BY },
    { pool: 'Regular', function: 'Dropped', mark: BY },
  ]);
  assert.deepEqual(book.stateOf('Gone'), { pool: false, functions: [] });
  assert.deepEqual(book.stateOf('Regular'), { pool: true, functions: ['Kept'] });
  assert.deepEqual(book.stateOf('Parked'), { pool: true, functions: [] }, 'a pool scaled to zero keeps its pause');
  assert.deepEqual([...book.view(config)], [
    ['Regular', { pool: BY, functions: [{ function: 'Kept', ...BY }] }],
    ['Parked', { pool: BY, functions: [] }],
  ]);
});
