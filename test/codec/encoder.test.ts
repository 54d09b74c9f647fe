import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ALL_YOURS_PACKET,
  GRAB_JOB_ALL_PACKET,
  GRAB_JOB_PACKET,
  GRAB_JOB_UNIQ_PACKET,
  Magic,
  NOOP_PACKET,
  NO_JOB_PACKET,
  PRE_SLEEP_PACKET,
  Parser,
  RESET_ABILITIES_PACKET,
  SubmitKind,
  encodeCanDo,
  encodeCanDoTimeout,
  encodeCantDo,
  encodeEchoReq,
  encodeGetStatus,
  encodeJobAssignUniq,
  encodeOptionReq,
  encodePacket,
  encodeSetClientId,
  encodeSubmitJob,
  encodeWorkComplete,
  encodeWorkCompleteHead,
  encodeWorkData,
  encodeWorkException,
  encodeWorkFail,
  encodeWorkStatus,
  encodeWorkWarning,
  type Packet,
} from '../../src/codec/index.js';
import { InternalError } from '../../src/errors.js';
import { buildPacket, T } from '../helpers/packet-builder.js';
import { ARGS, BINARY } from './fixtures.js';

const HANDLE = 'H:gearman-1.example:4711';
const HANDLE_BUFFER = Buffer.from(HANDLE);

/** Byte equality with a hex diff on failure. */
function assertBytes(actual: Buffer, expected: Buffer, message: string): void {
  assert.equal(actual.toString('hex'), expected.toString('hex'), message);
}

describe('encoder', () => {
  test('encode* should produce the same bytes as the test-side builder', () => {
    const cases: Array<[string, Buffer, Buffer]> = [
      ['encodeCanDo', encodeCanDo('resize'), buildPacket('REQ', T.CAN_DO, ['resize'])],
      ['encodeCanDo UTF-8', encodeCanDo('größe_ändern'), buildPacket('REQ', T.CAN_DO, ['größe_ändern'])],
      ['encodeCantDo', encodeCantDo('resize'), buildPacket('REQ', T.CANT_DO, ['resize'])],
      ['encodeCanDoTimeout', encodeCanDoTimeout('resize', 30_000), buildPacket('REQ', T.CAN_DO_TIMEOUT, ['resize', '30000'])],
      ['encodeSetClientId', encodeSetClientId('driveshaft:host:1'), buildPacket('REQ', T.SET_CLIENT_ID, ['driveshaft:host:1'])],
      ['encodeEchoReq string', encodeEchoReq('ping'), buildPacket('REQ', T.ECHO_REQ, ['ping'])],
      ['encodeEchoReq binary', encodeEchoReq(BINARY), buildPacket('REQ', T.ECHO_REQ, [BINARY])],
      ['encodeWorkFail', encodeWorkFail(HANDLE), buildPacket('REQ', T.WORK_FAIL, [HANDLE])],
      ['encodeWorkFail buffer', encodeWorkFail(HANDLE_BUFFER), buildPacket('REQ', T.WORK_FAIL, [HANDLE])],
      ['encodeWorkComplete', encodeWorkComplete(HANDLE, BINARY), buildPacket('REQ', T.WORK_COMPLETE, [HANDLE, BINARY])],
      ['encodeWorkComplete empty', encodeWorkComplete(HANDLE_BUFFER, ''), buildPacket('REQ', T.WORK_COMPLETE, [HANDLE, ''])],
      ['encodeWorkException', encodeWorkException(HANDLE, 'boom'), buildPacket('REQ', T.WORK_EXCEPTION, [HANDLE, 'boom'])],
      ['encodeWorkData', encodeWorkData(HANDLE, BINARY), buildPacket('REQ', T.WORK_DATA, [HANDLE, BINARY])],
      ['encodeWorkWarning', encodeWorkWarning(HANDLE, BINARY), buildPacket('REQ', T.WORK_WARNING, [HANDLE, BINARY])],
      ['encodeWorkStatus', encodeWorkStatus(HANDLE, 3, 10), buildPacket('REQ', T.WORK_STATUS, [HANDLE, '3', '10'])],
      ['encodeOptionReq', encodeOptionReq('exceptions'), buildPacket('REQ', T.OPTION_REQ, ['exceptions'])],
      ['encodeGetStatus', encodeGetStatus(HANDLE), buildPacket('REQ', T.GET_STATUS, [HANDLE])],
      [
        'encodeJobAssignUniq',
        encodeJobAssignUniq(HANDLE, 'resize', 'u-1', BINARY),
        buildPacket('RES', T.JOB_ASSIGN_UNIQ, [HANDLE, 'resize', 'u-1', BINARY]),
      ],
    ];
    for (const [name, actual, expected] of cases) assertBytes(actual, expected, name);
  });

  test('encodeSubmitJob should produce every submit kind with its own type', () => {
    const kinds: Array<[SubmitKind, number]> = [
      [SubmitKind.NORMAL, T.SUBMIT_JOB],
      [SubmitKind.BACKGROUND, T.SUBMIT_JOB_BG],
      [SubmitKind.HIGH, T.SUBMIT_JOB_HIGH],
      [SubmitKind.HIGH_BACKGROUND, T.SUBMIT_JOB_HIGH_BG],
      [SubmitKind.LOW, T.SUBMIT_JOB_LOW],
      [SubmitKind.LOW_BACKGROUND, T.SUBMIT_JOB_LOW_BG],
    ];
    for (const [kind, type] of kinds) {
      assertBytes(encodeSubmitJob(kind, 'resize', 'u-1', BINARY), buildPacket('REQ', type, ['resize', 'u-1', BINARY]), `kind ${kind}`);
    }
  });

  test('encodePacket should produce the builder bytes for every type, both magics', () => {
    for (const [typeText, arity] of Object.entries(ARGS)) {
      const type = Number(typeText);
      const args = Array.from({ length: arity }, (_, i) => (i === arity - 1 ? BINARY : `arg${i}`));
      assertBytes(encodePacket(Magic.REQ, type, args), buildPacket('REQ', type, args), `REQ type ${type}`);
      assertBytes(encodePacket(Magic.RES, type, args), buildPacket('RES', type, args), `RES type ${type}`);
    }
  });

  test('*_PACKET constants should equal the builder bytes', () => {
    const cases: Array<[string, Buffer, Buffer]> = [
      ['RESET_ABILITIES_PACKET', RESET_ABILITIES_PACKET, buildPacket('REQ', T.RESET_ABILITIES, [])],
      ['PRE_SLEEP_PACKET', PRE_SLEEP_PACKET, buildPacket('REQ', T.PRE_SLEEP, [])],
      ['GRAB_JOB_PACKET', GRAB_JOB_PACKET, buildPacket('REQ', T.GRAB_JOB, [])],
      ['GRAB_JOB_UNIQ_PACKET', GRAB_JOB_UNIQ_PACKET, buildPacket('REQ', T.GRAB_JOB_UNIQ, [])],
      ['GRAB_JOB_ALL_PACKET', GRAB_JOB_ALL_PACKET, buildPacket('REQ', T.GRAB_JOB_ALL, [])],
      ['ALL_YOURS_PACKET', ALL_YOURS_PACKET, buildPacket('REQ', T.ALL_YOURS, [])],
      ['NOOP_PACKET', NOOP_PACKET, buildPacket('RES', T.NOOP, [])],
      ['NO_JOB_PACKET', NO_JOB_PACKET, buildPacket('RES', T.NO_JOB, [])],
    ];
    for (const [name, actual, expected] of cases) assertBytes(actual, expected, name);
  });

  test('encodePacket should throw an InternalError on a wrong argument count', () => {
    assert.throws(() => encodePacket(Magic.REQ, T.WORK_COMPLETE, [HANDLE]), {
      name: 'InternalError',
      code: 'DS_INTERNAL',
      message: 'WORK_COMPLETE takes 2 arguments, got 1',
    });
    assert.throws(() => encodePacket(Magic.REQ, T.WORK_COMPLETE, [HANDLE, 'a', 'b']), InternalError);
    assert.throws(() => encodePacket(Magic.REQ, T.NOOP, ['']), InternalError);
    assert.throws(() => encodePacket(Magic.REQ, T.JOB_ASSIGN_UNIQ, []), InternalError);
  });

  test('encodePacket should throw an InternalError on an unknown type', () => {
    for (const type of [0, 5, 43, -1, 1.5]) {
      assert.throws(() => encodePacket(Magic.REQ, type, []), { name: 'InternalError', code: 'DS_INTERNAL', message: `unknown packet type ${type}` });
    }
  });

  test('encodePacket should refuse a NUL in any argument but the last', () => {
    // Sent, "a\0b" as a function name would reach gearmand as function "a" and unique "b…".
    assert.throws(() => encodeSubmitJob(SubmitKind.NORMAL, 'a\0b', 'u', 'w'), /argument 0 contains a NUL/);
    assert.throws(() => encodeSubmitJob(SubmitKind.NORMAL, 'f', Buffer.from([0x75, 0]), 'w'), /argument 1 contains a NUL/);
    assert.throws(() => encodeWorkComplete(Buffer.from('H:\0'), 'r'), InternalError);
    assert.throws(() => encodeWorkCompleteHead('H:\0', 1), InternalError);
    // The last argument is opaque.
    assert.doesNotThrow(() => encodeSubmitJob(SubmitKind.NORMAL, 'f', 'u', Buffer.from([0, 0])));
  });

  test('encodeWorkCompleteHead + result should equal the whole WORK_COMPLETE packet', () => {
    const results = [Buffer.alloc(0), BINARY, Buffer.alloc(1024 * 1024 + 3, 0)];
    for (const handle of [HANDLE, HANDLE_BUFFER]) {
      for (const result of results) {
        const head = encodeWorkCompleteHead(handle, result.length);
        assertBytes(Buffer.concat([head, result]), buildPacket('REQ', T.WORK_COMPLETE, [HANDLE, result]), `${result.length} bytes`);
        // The head is the header, the handle and one NUL: it never holds any result bytes.
        assert.equal(head.length, 12 + HANDLE.length + 1);
      }
    }
  });

  test('a job answer with `then` should be the answer packet followed by that packet, in one buffer', () => {
    const grab = buildPacket('REQ', T.GRAB_JOB_UNIQ, []);
    const cases: Array<[string, Buffer, Buffer]> = [
      ['WORK_COMPLETE', encodeWorkComplete(HANDLE_BUFFER, BINARY, GRAB_JOB_UNIQ_PACKET), buildPacket('REQ', T.WORK_COMPLETE, [HANDLE, BINARY])],
      ['WORK_COMPLETE empty', encodeWorkComplete(HANDLE_BUFFER, '', GRAB_JOB_UNIQ_PACKET), buildPacket('REQ', T.WORK_COMPLETE, [HANDLE, ''])],
      ['WORK_EXCEPTION', encodeWorkException(HANDLE_BUFFER, 'boom', GRAB_JOB_UNIQ_PACKET), buildPacket('REQ', T.WORK_EXCEPTION, [HANDLE, 'boom'])],
      ['WORK_FAIL', encodeWorkFail(HANDLE_BUFFER, GRAB_JOB_UNIQ_PACKET), buildPacket('REQ', T.WORK_FAIL, [HANDLE])],
    ];
    for (const [name, actual, answer] of cases) assertBytes(actual, Buffer.concat([answer, grab]), name);
    // Parsed back: two packets, the answer then the grab.
    const types: number[] = [];
    const parser = new Parser({ onPacket: (packet: Packet) => types.push(packet.type), onError: (error) => assert.fail(error) });
    parser.push(encodeWorkComplete(HANDLE_BUFFER, BINARY, GRAB_JOB_UNIQ_PACKET));
    assert.deepEqual(types, [T.WORK_COMPLETE, T.GRAB_JOB_UNIQ]);
  });

  test('encodeWorkCompleteHead should refuse a length that is not a byte count or does not fit the size field', () => {
    for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => encodeWorkCompleteHead(HANDLE, bad), InternalError, String(bad));
    }
    assert.throws(() => encodeWorkCompleteHead(HANDLE, 2 ** 32 - HANDLE.length - 1), InternalError);
    assert.doesNotThrow(() => encodeWorkCompleteHead(HANDLE, 2 ** 32 - HANDLE.length - 2));
  });

  test('encodeCanDoTimeout should send milliseconds, raising 1–999 to 1000 and rounding up', () => {
    const timeout = (ms: number): string => {
      const packet = encodeCanDoTimeout('f', ms);
      return packet.subarray(12 + 2).toString();
    };
    assert.equal(timeout(1), '1000');
    assert.equal(timeout(999), '1000');
    assert.equal(timeout(0.001), '1000');
    assert.equal(timeout(1000), '1000');
    assert.equal(timeout(1500), '1500');
    assert.equal(timeout(1500.2), '1501');
    assert.equal(timeout(300_000), '300000');
    assert.equal(timeout(2 ** 31 - 1), String(2 ** 31 - 1));
    for (const bad of [0, -5, Number.NaN, Infinity, 2 ** 31]) {
      assert.throws(() => encodeCanDoTimeout('f', bad), InternalError, String(bad));
    }
  });

  test('encodeWorkStatus should refuse numbers that are not non-negative integers', () => {
    for (const bad of [-1, 0.5, Number.NaN, Infinity, 2 ** 60]) {
      assert.throws(() => encodeWorkStatus(HANDLE, bad, 10), InternalError, String(bad));
      assert.throws(() => encodeWorkStatus(HANDLE, 1, bad), InternalError, String(bad));
    }
    assertBytes(encodeWorkStatus(HANDLE, 0, 0), buildPacket('REQ', T.WORK_STATUS, [HANDLE, '0', '0']), '0/0');
  });

  test('encode* output should parse back to the same arguments', () => {
    const packets: Packet[] = [];
    const parser = new Parser({ onPacket: (packet) => packets.push(packet), onError: (error) => assert.fail(error) });
    parser.push(encodeJobAssignUniq(HANDLE, 'größe', 'u', BINARY));
    parser.push(encodeWorkComplete(HANDLE, BINARY));
    assert.deepEqual(
      packets.map((p) => [p.magic, p.type, p.args.map((a) => a.toString('hex'))]),
      [
        ['RES', T.JOB_ASSIGN_UNIQ, [HANDLE, 'größe', 'u'].map((s) => Buffer.from(s).toString('hex')).concat(BINARY.toString('hex'))],
        ['REQ', T.WORK_COMPLETE, [Buffer.from(HANDLE).toString('hex'), BINARY.toString('hex')]],
      ],
    );
  });
});
