/**
 * ServerState's connect turns (server-state.ts): at most MAX_CONNECTS_IN_FLIGHT at once, first come
 * first served, and a turn declined by a link closed while it waited passes on at once. The real
 * connects in turns are in connection.test.ts; these are the bookkeeping at sizes a test server
 * would take minutes to reach.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_CONNECTS_IN_FLIGHT, ServerState } from '../../../src/child/gearman/server-state.js';
import { memoryLogger } from '../../helpers/memory-logger.js';

test('ServerState should give connect turns in order, at most MAX_CONNECTS_IN_FLIGHT at once', () => {
  const state = new ServerState('127.0.0.1:4730', memoryLogger().logger);
  const started: number[] = [];
  for (let i = 0; i < MAX_CONNECTS_IN_FLIGHT + 3; i++) {
    state.connectTurn(() => {
      started.push(i);
      return true;
    });
  }
  assert.equal(started.length, MAX_CONNECTS_IN_FLIGHT);
  assert.equal(state.connectsInFlight, MAX_CONNECTS_IN_FLIGHT);
  state.connectEnded();
  assert.deepEqual(started.slice(-1), [MAX_CONNECTS_IN_FLIGHT], 'the first one waiting got the turn');
  assert.equal(state.connectsInFlight, MAX_CONNECTS_IN_FLIGHT);
});

test('ServerState should pass a turn over 100,000 declined ones without a deep stack, to the next link that takes it', () => {
  const state = new ServerState('127.0.0.1:4730', memoryLogger().logger);
  for (let i = 0; i < MAX_CONNECTS_IN_FLIGHT; i++) state.connectTurn(() => true);
  // Links closed while they waited (a reload during an outage): each declines its turn.
  let declined = 0;
  for (let i = 0; i < 100_000; i++) {
    state.connectTurn(() => {
      declined++;
      return false;
    });
  }
  let taken = false;
  state.connectTurn(() => {
    taken = true;
    return true;
  });
  state.connectEnded();
  assert.equal(declined, 100_000);
  assert.equal(taken, true);
  assert.equal(state.connectsInFlight, MAX_CONNECTS_IN_FLIGHT);
  // Every turn ended: nothing is left in flight, and a new connect goes at once.
  for (let i = 0; i < MAX_CONNECTS_IN_FLIGHT; i++) state.connectEnded();
  assert.equal(state.connectsInFlight, 0);
  let now = false;
  state.connectTurn(() => (now = true));
  assert.equal(now, true);
});
