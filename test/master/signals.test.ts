import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { SignalRouter } from '../../src/master/signals.js';

function router(): { source: EventEmitter; calls: string[]; signals: SignalRouter } {
  const source = new EventEmitter();
  const calls: string[] = [];
  const signals = new SignalRouter(
    {
      reload: (s) => calls.push(`reload:${s}`),
      gracefulStop: (s) => calls.push(`graceful:${s}`),
      hardStop: (s) => calls.push(`hard:${s}`),
      reopenLogs: (s) => calls.push(`reopen:${s}`),
    },
    source as unknown as import('../../src/master/signals.js').SignalSource,
  );
  signals.install();
  return { source, calls, signals };
}

test('SignalRouter should map HUP to reload and USR2 to reopening logs, any number of times', () => {
  const { source, calls } = router();
  source.emit('SIGHUP', 'SIGHUP');
  source.emit('SIGHUP', 'SIGHUP');
  source.emit('SIGUSR2', 'SIGUSR2');
  assert.deepEqual(calls, ['reload:SIGHUP', 'reload:SIGHUP', 'reopen:SIGUSR2']);
});

test('SignalRouter should stop gracefully on the first TERM and hard on the second', () => {
  const { source, calls } = router();
  source.emit('SIGTERM', 'SIGTERM');
  source.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(calls, ['graceful:SIGTERM', 'hard:SIGTERM']);
});

test('SignalRouter should treat INT then TERM as two stop signals, and USR1 as a graceful stop only', () => {
  const { source, calls } = router();
  source.emit('SIGUSR1', 'SIGUSR1');
  source.emit('SIGUSR1', 'SIGUSR1');
  source.emit('SIGINT', 'SIGINT');
  assert.deepEqual(calls, ['graceful:SIGUSR1', 'hard:SIGINT']);
});

test('SignalRouter should stop hard on QUIT at any time', () => {
  const { source, calls } = router();
  source.emit('SIGQUIT', 'SIGQUIT');
  source.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(calls, ['hard:SIGQUIT', 'hard:SIGTERM']);
});

test('SignalRouter.uninstall should remove every listener and be idempotent', () => {
  const { source, signals } = router();
  assert.equal(source.listenerCount('SIGTERM'), 1);
  signals.uninstall();
  signals.uninstall();
  for (const name of ['SIGHUP', 'SIGTERM', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGQUIT']) assert.equal(source.listenerCount(name), 0, name);
});
