/**
 * Test-side Gearman packet encoder. It is written independently of src/codec on purpose (after
 * node-postgres's testing/buffer-list.ts): fixtures built by the encoder under test would agree
 * with its bugs. Numbers are copied from the Gearman protocol document (gearman.org/protocol), not imported.
 */

export const HEADER_SIZE = 12;

/** "\0REQ" goes to the server, "\0RES" comes from it. */
export const MAGIC = {
  REQ: Buffer.from([0x00, 0x52, 0x45, 0x51]),
  RES: Buffer.from([0x00, 0x52, 0x45, 0x53]),
} as const;
export type Magic = keyof typeof MAGIC;

/** Packet type numbers, so tests read `T.JOB_ASSIGN_UNIQ`. */
export const T = {
  CAN_DO: 1,
  CANT_DO: 2,
  RESET_ABILITIES: 3,
  PRE_SLEEP: 4,
  NOOP: 6,
  SUBMIT_JOB: 7,
  JOB_CREATED: 8,
  GRAB_JOB: 9,
  NO_JOB: 10,
  JOB_ASSIGN: 11,
  WORK_STATUS: 12,
  WORK_COMPLETE: 13,
  WORK_FAIL: 14,
  GET_STATUS: 15,
  ECHO_REQ: 16,
  ECHO_RES: 17,
  SUBMIT_JOB_BG: 18,
  ERROR: 19,
  STATUS_RES: 20,
  SUBMIT_JOB_HIGH: 21,
  SET_CLIENT_ID: 22,
  CAN_DO_TIMEOUT: 23,
  ALL_YOURS: 24,
  WORK_EXCEPTION: 25,
  OPTION_REQ: 26,
  OPTION_RES: 27,
  WORK_DATA: 28,
  WORK_WARNING: 29,
  GRAB_JOB_UNIQ: 30,
  JOB_ASSIGN_UNIQ: 31,
  SUBMIT_JOB_HIGH_BG: 32,
  SUBMIT_JOB_LOW: 33,
  SUBMIT_JOB_LOW_BG: 34,
  SUBMIT_JOB_SCHED: 35,
  SUBMIT_JOB_EPOCH: 36,
  SUBMIT_REDUCE_JOB: 37,
  SUBMIT_REDUCE_JOB_BACKGROUND: 38,
  GRAB_JOB_ALL: 39,
  JOB_ASSIGN_ALL: 40,
  GET_STATUS_UNIQUE: 41,
  STATUS_RES_UNIQUE: 42,
} as const;
export type PacketTypeName = keyof typeof T;

/**
 * packet = magic(4) type(uint32 BE) size(uint32 BE) data(size)
 * data   = arg *( NUL arg )        ; the last arg has no terminator and may itself contain NUL
 *
 * No validation on purpose: tests need to build malformed packets too (wrong arity, NULs inside
 * arguments, unknown types). String arguments are encoded as UTF-8.
 */
export function buildPacket(magic: Magic, type: number, args: ReadonlyArray<Buffer | string>): Buffer {
  const parts = args.map((arg) => (typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg));
  let size = parts.length > 0 ? parts.length - 1 : 0;
  for (const part of parts) size += part.length;

  const packet = Buffer.alloc(HEADER_SIZE + size);
  MAGIC[magic].copy(packet, 0);
  packet.writeUInt32BE(type, 4);
  packet.writeUInt32BE(size, 8);
  let offset = HEADER_SIZE;
  parts.forEach((part, i) => {
    if (i > 0) packet[offset++] = 0x00;
    offset += part.copy(packet, offset);
  });
  return packet;
}
