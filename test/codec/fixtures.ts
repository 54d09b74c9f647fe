/**
 * Shared inputs for the codec tests. Every packet's bytes come from the test-side builder
 * (test/helpers/packet-builder.ts), never from src/codec's encoder, so an encoder bug cannot hide a
 * parser bug. Argument counts are copied from the Gearman protocol document (gearman.org/protocol).
 */
import { buildPacket, T, type Magic } from '../helpers/packet-builder.js';

/** Arguments per packet type, from the protocol reference; independent of src/codec/constants.ts. */
export const ARGS: Readonly<Record<number, number>> = {
  [T.CAN_DO]: 1, [T.CANT_DO]: 1, [T.RESET_ABILITIES]: 0, [T.PRE_SLEEP]: 0, [T.NOOP]: 0, [T.SUBMIT_JOB]: 3,
  [T.JOB_CREATED]: 1, [T.GRAB_JOB]: 0, [T.NO_JOB]: 0, [T.JOB_ASSIGN]: 3, [T.WORK_STATUS]: 3,
  [T.WORK_COMPLETE]: 2, [T.WORK_FAIL]: 1, [T.GET_STATUS]: 1, [T.ECHO_REQ]: 1, [T.ECHO_RES]: 1,
  [T.SUBMIT_JOB_BG]: 3, [T.ERROR]: 2, [T.STATUS_RES]: 5, [T.SUBMIT_JOB_HIGH]: 3, [T.SET_CLIENT_ID]: 1,
  [T.CAN_DO_TIMEOUT]: 2, [T.ALL_YOURS]: 0, [T.WORK_EXCEPTION]: 2, [T.OPTION_REQ]: 1, [T.OPTION_RES]: 1,
  [T.WORK_DATA]: 2, [T.WORK_WARNING]: 2, [T.GRAB_JOB_UNIQ]: 0, [T.JOB_ASSIGN_UNIQ]: 4,
  [T.SUBMIT_JOB_HIGH_BG]: 3, [T.SUBMIT_JOB_LOW]: 3, [T.SUBMIT_JOB_LOW_BG]: 3, [T.SUBMIT_JOB_SCHED]: 8,
  [T.SUBMIT_JOB_EPOCH]: 4, [T.SUBMIT_REDUCE_JOB]: 4, [T.SUBMIT_REDUCE_JOB_BACKGROUND]: 4,
  [T.GRAB_JOB_ALL]: 0, [T.JOB_ASSIGN_ALL]: 5, [T.GET_STATUS_UNIQUE]: 1, [T.STATUS_RES_UNIQUE]: 6,
};

/** Types whose first argument is a job handle (at most 64 bytes, gearmand's GEARMAN_JOB_HANDLE_SIZE). */
export const HANDLE_FIRST_TYPES: readonly number[] = [
  T.JOB_CREATED, T.JOB_ASSIGN, T.JOB_ASSIGN_UNIQ, T.JOB_ASSIGN_ALL, T.WORK_STATUS, T.WORK_COMPLETE,
  T.WORK_FAIL, T.WORK_EXCEPTION, T.WORK_DATA, T.WORK_WARNING, T.GET_STATUS, T.STATUS_RES,
];

export interface Fixture {
  name: string;
  magic: Magic;
  type: number;
  args: Buffer[];
  bytes: Buffer;
}

export function fixture(name: string, magic: Magic, type: number, args: ReadonlyArray<Buffer | string>): Fixture {
  const buffers = args.map((arg) => (typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg));
  return { name, magic, type, args: buffers, bytes: buildPacket(magic, type, buffers) };
}

/** Bytes that are not text: NULs, bytes that are never valid UTF-8, a lone continuation byte. */
export const BINARY = Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x00, 0x80, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x00, 0x0a, 0x00]);

/** Deterministic pseudo-random bytes (mulberry32), so a failing case can be reproduced. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(random: () => number, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}

const HANDLE = 'H:gearman-1.example:4711';

/** One packet of every shape a worker or a client meets, small enough to cut at every offset. */
export const FIXTURES: readonly Fixture[] = [
  fixture('NOOP', 'RES', T.NOOP, []),
  fixture('NO_JOB', 'RES', T.NO_JOB, []),
  fixture('JOB_CREATED', 'RES', T.JOB_CREATED, [HANDLE]),
  fixture('JOB_ASSIGN_UNIQ binary workload', 'RES', T.JOB_ASSIGN_UNIQ, [HANDLE, 'resize', 'u-1', BINARY]),
  fixture('JOB_ASSIGN_UNIQ all empty', 'RES', T.JOB_ASSIGN_UNIQ, ['', '', '', '']),
  fixture('JOB_ASSIGN', 'RES', T.JOB_ASSIGN, [HANDLE, 'fünction', 'workload']),
  fixture('JOB_ASSIGN_ALL', 'RES', T.JOB_ASSIGN_ALL, [HANDLE, 'f', 'uniq', 'reducer', BINARY]),
  fixture('WORK_COMPLETE result with NULs', 'REQ', T.WORK_COMPLETE, [HANDLE, Buffer.from('a\0b\0\0')]),
  fixture('WORK_STATUS', 'REQ', T.WORK_STATUS, [HANDLE, '3', '10']),
  fixture('ECHO_RES empty', 'RES', T.ECHO_RES, ['']),
  fixture('ERROR', 'RES', T.ERROR, ['ERR_CODE', 'some text']),
  fixture('STATUS_RES', 'RES', T.STATUS_RES, [HANDLE, '1', '1', '5', '7']),
  fixture('STATUS_RES_UNIQUE', 'RES', T.STATUS_RES_UNIQUE, ['uniq', '1', '0', '0', '0', '2']),
  fixture('SUBMIT_JOB_SCHED', 'REQ', T.SUBMIT_JOB_SCHED, ['f', 'u', '1', '2', '3', '4', '5', BINARY]),
  fixture('CAN_DO_TIMEOUT', 'REQ', T.CAN_DO_TIMEOUT, ['resize', '30000']),
  fixture('GRAB_JOB_UNIQ', 'REQ', T.GRAB_JOB_UNIQ, []),
];

/** All fixtures back to back: a stream where packet boundaries fall everywhere. */
export const STREAM: Buffer = Buffer.concat(FIXTURES.map((f) => f.bytes));
