import assert from 'node:assert/strict';
import { test } from 'node:test';
import bunyan from 'bunyan';
import { createForwardingLogger, serializeErr } from '../../src/log/forwarding-logger.js';
import { levelNumber, LogLevel, type Logger } from '../../src/log/logger.js';
import { memoryLogger } from '../helpers/memory-logger.js';

type LogRecord = Record<string, unknown>;

/** Records as the master receives them over IPC (JSON), `time` checked and dropped. */
function comparable(records: LogRecord[]): LogRecord[] {
  return records.map((record) => {
    assert.ok(record.time instanceof Date, 'time is a Date, as bunyan makes it');
    return JSON.parse(JSON.stringify({ ...record, time: undefined })) as LogRecord;
  });
}

class CodedError extends Error {
  readonly code = 'DS_TEST';
}

// Made once: both loggers must see the same stacks.
const boom = new CodedError('boom');
const inner = new CodedError('inner');
const onlyErr = new CodedError('only err');

/** Every call form the daemon uses, plus the odd ones bunyan defines. */
function exercise(log: Logger): void {
  const child = log.child({ pool: 'Regular' }).child({ slot: 3 });
  child.info('plain message');
  child.info('formatted %s and %d', 'text', 42);
  child.warn({ server: 'localhost:4730', retryInMs: 100 }, 'cannot connect to gearmand');
  child.error(boom);
  child.error(boom, 'with a message %s', 'too');
  child.warn({ err: inner, server: 'x' }, 'fields with an err');
  child.warn({ err: onlyErr });
  child.warn({ err: 'not an error' }, 'err that is a string');
  child.info(Buffer.from('abc'));
  child.info(['an', 'array']);
  child.debug({ hidden: true }, 'below the level');
  child.fatal({ level: 99 }, 'a field named level wins, as in bunyan');
  log.info({ pool: 'other' }, 'call fields override logger fields');
}

test('forwarded records should match what bunyan builds for the same calls', () => {
  // A bunyan logger configured as the children's used to be: raw stream, err serializer.
  const { logger, records: fromBunyan } = memoryLogger('info');
  const forwarded: LogRecord[] = [];
  exercise(logger);
  exercise(createForwardingLogger('driveshaft', 'info', (record) => forwarded.push(record)));
  assert.equal(forwarded.length, fromBunyan.length);
  assert.deepEqual(comparable(forwarded), comparable(fromBunyan));
  // Same key order too: the master writes the records it is given as they are.
  assert.deepEqual(
    comparable(forwarded).map((record) => Object.keys(record).join(',')),
    comparable(fromBunyan).map((record) => Object.keys(record).join(',')),
  );
});

test('a call without arguments should tell whether the level is enabled, as bunyan does', () => {
  const sent: LogRecord[] = [];
  const log = createForwardingLogger('driveshaft', 'warn', (record) => sent.push(record));
  const child = log.child({ slot: 1 });
  assert.equal(child.debug(), false);
  assert.equal(child.info(), false);
  assert.equal(child.warn(), true);
  assert.equal(child.fatal(), true);
  assert.equal(child.level(), LogLevel.warn);
  assert.equal(sent.length, 0, 'asking sends nothing');
  child.info('dropped');
  child.error('kept');
  assert.deepEqual(sent.map((record) => record.msg), ['kept']);
});

test('an unknown level name should mean info', () => {
  const log = createForwardingLogger('driveshaft', 'verbose', () => undefined);
  assert.equal(log.level(), LogLevel.info);
  assert.equal(levelNumber('debug'), LogLevel.debug);
  assert.equal(levelNumber('toString'), LogLevel.info, 'inherited properties are not level names');
});

test('child() should not change its parent', () => {
  const sent: LogRecord[] = [];
  const log = createForwardingLogger('driveshaft', 'info', (record) => sent.push(record));
  log.child({ pool: 'A' }).info('from the child');
  log.info('from the parent');
  assert.equal(sent[0]?.pool, 'A');
  assert.equal('pool' in (sent[1] ?? {}), false);
});

test('serializeErr should follow VError-style causes and pass non-errors through', () => {
  const cause = new Error('root cause');
  const outer = Object.assign(new Error('outer'), { cause: () => cause });
  const serialized = serializeErr(outer) as { stack: string; message: string };
  assert.equal(serialized.message, 'outer');
  assert.match(serialized.stack, /outer[\s\S]*\nCaused by: Error: root cause/);
  assert.deepEqual(serialized, bunyan.stdSerializers.err(outer));
  assert.equal(serializeErr('text'), 'text');
  assert.equal(serializeErr(null), null);
  const plain = { message: 'no stack' };
  assert.equal(serializeErr(plain), plain);
});
