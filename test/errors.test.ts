import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as errors from '../src/errors.js';
import {
  AdminReplyError,
  ConfigError,
  DeadLetterError,
  DriveshaftError,
  ErrorCode,
  FdBudgetError,
  GearmanConnectionError,
  GearmanServerError,
  HttpRequestError,
  HttpResponseError,
  InternalError,
  IpcError,
  ListenError,
  JobTimeoutError,
  OptionsError,
  PidFileError,
  ProtocolError,
  ShuttingDownError,
  UserError,
  serializeError,
} from '../src/errors.js';

/**
 * Every error class with the code and name it must carry, written out rather than derived: code that
 * handles errors branches on these strings (also across IPC), so changing one is a breaking change.
 */
const EXPECTED: ReadonlyArray<{ make: () => DriveshaftError; name: string; code: string }> = [
  { make: () => new ProtocolError('bad', { offset: 3, packetType: 31, preview: '00' }), name: 'ProtocolError', code: 'DS_PROTOCOL' },
  { make: () => new AdminReplyError('bad'), name: 'AdminReplyError', code: 'DS_ADMIN_REPLY' },
  { make: () => new OptionsError('bad'), name: 'OptionsError', code: 'DS_OPTIONS' },
  { make: () => new ConfigError(['a', 'b']), name: 'ConfigError', code: 'DS_CONFIG' },
  { make: () => new FdBudgetError('bad'), name: 'FdBudgetError', code: 'DS_FD_BUDGET' },
  { make: () => new GearmanConnectionError('bad'), name: 'GearmanConnectionError', code: 'DS_GEARMAN_CONNECTION' },
  { make: () => new GearmanServerError('bad'), name: 'GearmanServerError', code: 'DS_GEARMAN_SERVER' },
  { make: () => new HttpRequestError('bad'), name: 'HttpRequestError', code: 'DS_HTTP_REQUEST' },
  { make: () => new HttpResponseError('bad'), name: 'HttpResponseError', code: 'DS_HTTP_RESPONSE' },
  { make: () => new JobTimeoutError('bad'), name: 'JobTimeoutError', code: 'DS_JOB_TIMEOUT' },
  { make: () => new IpcError('bad'), name: 'IpcError', code: 'DS_IPC' },
  { make: () => new PidFileError('bad'), name: 'PidFileError', code: 'DS_PID_FILE' },
  { make: () => new UserError('bad'), name: 'UserError', code: 'DS_USER' },
  { make: () => new ShuttingDownError('bad'), name: 'ShuttingDownError', code: 'DS_SHUTTING_DOWN' },
  { make: () => new DeadLetterError('/var/spool/dead.jsonl', 'bad'), name: 'DeadLetterError', code: 'DS_DEAD_LETTER' },
  { make: () => new ListenError('bad', { osCode: 'EADDRINUSE' }), name: 'ListenError', code: 'DS_LISTEN' },
  { make: () => new InternalError('bad'), name: 'InternalError', code: 'DS_INTERNAL' },
];

describe('errors', () => {
  test('every error class should carry its expected code and name', () => {
    for (const expected of EXPECTED) {
      const error = expected.make();
      assert.ok(error instanceof DriveshaftError, expected.name);
      assert.ok(error instanceof Error, expected.name);
      assert.equal(error.name, expected.name);
      assert.equal(error.code, expected.code, expected.name);
      assert.ok(Object.values(ErrorCode).includes(error.code), `${expected.name}: code not in ErrorCode`);
      assert.match(String(error.stack), new RegExp(`^${expected.name}: `), `${expected.name}: stack header`);
    }
  });

  test('every exported error class should be covered by this test', () => {
    const exported = Object.entries(errors)
      .filter(([, value]) => typeof value === 'function' && value.prototype instanceof DriveshaftError)
      .map(([name]) => name)
      .sort();
    assert.deepEqual(exported, EXPECTED.map((e) => e.name).sort());
  });

  test('ErrorCode values should be unique and each used by one class', () => {
    const codes = Object.values(ErrorCode);
    assert.equal(new Set(codes).size, codes.length);
    assert.deepEqual([...codes].sort(), EXPECTED.map((e) => e.code).sort());
  });

  test('DriveshaftError should pass cause through and serialize to {name, code, message}', () => {
    const cause = new Error('ECONNRESET');
    const error = new GearmanConnectionError('lost gearmand', { cause });
    assert.equal(error.cause, cause);
    assert.equal(new HttpRequestError('x').cause, undefined);
    assert.deepEqual(error.toJSON(), { name: 'GearmanConnectionError', code: 'DS_GEARMAN_CONNECTION', message: 'lost gearmand' });
    assert.deepEqual(JSON.parse(JSON.stringify(error)), error.toJSON());
    assert.deepEqual(structuredClone(error.toJSON()), error.toJSON());
  });

  test('serializeError should keep string codes of foreign errors and mark the rest UNKNOWN', () => {
    const sys = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    assert.deepEqual(serializeError(sys), { name: 'Error', code: 'ECONNREFUSED', message: 'refused' });
    assert.deepEqual(serializeError(new TypeError('t')), { name: 'TypeError', code: 'UNKNOWN', message: 't' });
    assert.deepEqual(serializeError('text'), { name: 'Error', code: 'UNKNOWN', message: 'text' });
    assert.deepEqual(serializeError(new ShuttingDownError('bye')), { name: 'ShuttingDownError', code: 'DS_SHUTTING_DOWN', message: 'bye' });
  });

  test('ProtocolError should carry offset, packet type and preview, and name them in its message', () => {
    const error = new ProtocolError('bad magic', { offset: 24, packetType: -1, preview: '474554' });
    assert.equal(error.offset, 24);
    assert.equal(error.packetType, -1);
    assert.equal(error.preview, '474554');
    assert.equal(error.message, 'bad magic (offset 24, type -1, bytes 474554)');
  });

  test('ConfigError should keep every problem and join them in its message', () => {
    const error = new ConfigError(['jobs.json: /a: expected a number', 'jobs.json: /b: unknown key']);
    assert.deepEqual(error.problems, ['jobs.json: /a: expected a number', 'jobs.json: /b: unknown key']);
    assert.equal(error.message, 'jobs.json: /a: expected a number; jobs.json: /b: unknown key');
  });
});
