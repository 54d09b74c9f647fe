import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PacketType,
  SubmitKind,
  adminReplyLength,
  encodeCanDo,
  encodeSetClientId,
  encodeSubmitJob,
  isListCommand,
  parseAdminStatus,
  parseAdminVersion,
  parseAdminWorkers,
} from '../../src/codec/index.js';
import { AdminReplyError, ErrorCode } from '../../src/errors.js';
import { ADMIN_CLIENT_ID, startGearmand } from '../helpers/gearmand.js';
import { waitFor } from '../helpers/wait-for.js';
import { PacketSocket } from './packet-socket.js';

/** Captured from gearmand 1.1.20 (see the live test below for the same shapes from a running server). */
const STATUS = 'fn.a\t2\t1\t3\nfn b\t0\t0\t1\n.\n';
const WORKERS = '17 127.0.0.1 - :\n15 127.0.0.1 my id : fn_t fn.a\n.\n';
/** gearmand 1.1.20 listening on ::1 prints IPv6 peers like this (garbage after "::"). */
const WORKERS_IPV6 = '17 ::3336:3037:3800:5f63%1024594496 - :\n15 ::6c69:7374:656e:5f63%1024594496 w1 : resize\n.\n';
const ERR = 'ERR UNKNOWN_COMMAND Unknown+server+command\r\n';

function assertAdminError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof AdminReplyError, `not an AdminReplyError: ${String(error)}`);
    assert.equal(error.code, ErrorCode.ADMIN_REPLY);
    assert.equal(error.code, 'DS_ADMIN_REPLY');
    assert.match(error.message, pattern);
    return true;
  });
}

describe('admin replies', () => {
  test('parseAdminStatus should parse status lines', () => {
    assert.deepEqual(parseAdminStatus(STATUS), [
      { function: 'fn.a', total: 2, running: 1, availableWorkers: 3 },
      { function: 'fn b', total: 0, running: 0, availableWorkers: 1 },
    ]);
    assert.deepEqual(parseAdminStatus('.\n'), []);
    // The counters are the last three fields, so a function name with a tab survives.
    assert.deepEqual(parseAdminStatus('a\tb\t1\t2\t3\n.\n'), [{ function: 'a\tb', total: 1, running: 2, availableWorkers: 3 }]);
  });

  test('parseAdminWorkers should parse workers lines, with and without functions or a client id', () => {
    assert.deepEqual(parseAdminWorkers(WORKERS), [
      { fd: 17, ip: '127.0.0.1', clientId: '-', functions: [] },
      { fd: 15, ip: '127.0.0.1', clientId: 'my id', functions: ['fn_t', 'fn.a'] },
    ]);
    assert.deepEqual(parseAdminWorkers('.\n'), []);
  });

  test('parseAdminWorkers should parse IPv6 peers, whose address starts with ":"', () => {
    // Regression: searching the line for the first " :" ended the client id inside the address.
    assert.deepEqual(parseAdminWorkers(WORKERS_IPV6), [
      { fd: 17, ip: '::3336:3037:3800:5f63%1024594496', clientId: '-', functions: [] },
      { fd: 15, ip: '::6c69:7374:656e:5f63%1024594496', clientId: 'w1', functions: ['resize'] },
    ]);
  });

  test('parseAdminVersion should return the version after OK', () => {
    assert.equal(parseAdminVersion('OK 1.1.20+ds\n'), '1.1.20+ds');
    assert.equal(parseAdminVersion('OK 1.1.21\r\n'), '1.1.21');
  });

  test('admin parsers should throw AdminReplyError (DS_ADMIN_REPLY) on malformed replies', () => {
    assertAdminError(() => parseAdminStatus('fn\t1\t2\t3\n'), /closing "\." line/);
    assertAdminError(() => parseAdminStatus('fn\t1\t2\n.\n'), /4 fields/);
    assertAdminError(() => parseAdminStatus('fn\t1\tx\t3\n.\n'), /non-numeric/);
    assertAdminError(() => parseAdminStatus('fn\t1\t-2\t3\n.\n'), /non-numeric/);
    assertAdminError(() => parseAdminStatus(ERR), /gearmand answered ERR UNKNOWN_COMMAND/);
    assertAdminError(() => parseAdminWorkers('17 127.0.0.1 -\n.\n'), /not "FD IP CLIENT-ID/);
    assertAdminError(() => parseAdminWorkers('x 127.0.0.1 - : f\n.\n'), /not "FD IP CLIENT-ID/);
    assertAdminError(() => parseAdminWorkers(WORKERS.replace('.\n', '')), /closing "\." line/);
    assertAdminError(() => parseAdminWorkers(ERR), /gearmand answered ERR/);
    assertAdminError(() => parseAdminVersion(ERR), /not "OK <version>"/);
    assertAdminError(() => parseAdminVersion(''), /not "OK <version>"/);
  });

  test('isListCommand should know which replies end with "."', () => {
    for (const command of ['status', 'workers', ' workers ', 'show jobs', 'show unique jobs', 'prioritystatus']) {
      assert.equal(isListCommand(command), true, command);
    }
    for (const command of ['version', 'maxqueue fn 3', 'getpid', 'shutdown', 'verbose']) {
      assert.equal(isListCommand(command), false, command);
    }
  });

  test('adminReplyLength should return -1 for every partial reply and the reply length once complete', () => {
    const cases: Array<[string, boolean]> = [
      [STATUS, true],
      [WORKERS, true],
      ['.\n', true],
      [ERR, true],
      ['OK 1.1.20+ds\n', false],
      [ERR, false],
      ['OK\r\n', false],
      // A list whose first function is named like an error reply is still a list.
      ['ERR x\t0\t0\t1\n.\n', true],
    ];
    for (const [reply, list] of cases) {
      for (let i = 0; i < reply.length; i++) {
        assert.equal(adminReplyLength(reply.slice(0, i), list), -1, `${JSON.stringify(reply)} cut at ${i}`);
      }
      assert.equal(adminReplyLength(reply, list), reply.length, JSON.stringify(reply));
      // Followed by the start of the next reply, only the first counts.
      assert.equal(adminReplyLength(`${reply}OK 1.1.20\n`, list), reply.length, `${JSON.stringify(reply)} + more`);
    }
    // A "." inside a line does not end a list.
    assert.equal(adminReplyLength('fn.\t0\t0\t1\n', true), -1);
    assert.equal(adminReplyLength('a\t0\t0\t1\r\n.\r\n', true), 'a\t0\t0\t1\r\n.\r\n'.length);
  });

  test('admin parsers should parse real status, workers and version replies from gearmand', async (t) => {
    const gearmand = await startGearmand();
    t.after(() => gearmand.stop());
    const worker = await PacketSocket.connect(gearmand.port, gearmand.host);
    t.after(() => worker.close());
    const client = await PacketSocket.connect(gearmand.port, gearmand.host);
    t.after(() => client.close());

    worker.write(encodeSetClientId('codec admin'));
    worker.write(encodeCanDo('fn.a'));
    worker.write(encodeCanDo('fn_b'));
    client.write(encodeSubmitJob(SubmitKind.BACKGROUND, 'fn.a', 'u1', 'w'));
    assert.equal((await client.next()).type, PacketType.JOB_CREATED);

    const workersReply = await waitFor(
      async () => {
        const reply = await gearmand.admin('workers');
        const registered = parseAdminWorkers(reply).find((w) => w.clientId === 'codec admin');
        return registered !== undefined && registered.functions.length === 2 ? reply : undefined;
      },
      { timeoutMs: 5_000, message: 'gearmand to list the worker with two functions' },
    );
    assert.equal(adminReplyLength(workersReply, true), workersReply.length);
    const workers = parseAdminWorkers(workersReply);
    const registered = workers.find((w) => w.clientId === 'codec admin');
    assert.equal(registered?.ip, '127.0.0.1');
    assert.ok(Number.isInteger(registered?.fd) && (registered?.fd ?? 0) > 0);
    assert.deepEqual([...(registered?.functions ?? [])].sort(), ['fn.a', 'fn_b']);
    // The client and the helper's own admin connection are listed too, without functions.
    assert.deepEqual(workers.find((w) => w.clientId === ADMIN_CLIENT_ID)?.functions, []);
    assert.ok(workers.some((w) => w.clientId === '-' && w.functions.length === 0));

    const statusReply = await gearmand.admin('status');
    assert.equal(adminReplyLength(statusReply, true), statusReply.length);
    const status = parseAdminStatus(statusReply).sort((a, b) => (a.function < b.function ? -1 : 1));
    assert.deepEqual(status, [
      { function: 'fn.a', total: 1, running: 0, availableWorkers: 1 },
      { function: 'fn_b', total: 0, running: 0, availableWorkers: 1 },
    ]);

    const versionReply = await gearmand.admin('version');
    assert.equal(adminReplyLength(versionReply, false), versionReply.length);
    assert.match(parseAdminVersion(versionReply), /^\d+\.\d+(\.\d+)?/);

    const errorReply = await gearmand.admin('no_such_command');
    assert.equal(adminReplyLength(errorReply, true), errorReply.length);
    assertAdminError(() => parseAdminStatus(errorReply), /gearmand answered ERR/);
    assertAdminError(() => parseAdminVersion(errorReply), /not "OK <version>"/);
  });
});
