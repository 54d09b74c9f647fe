/**
 * Encoder for the Gearman binary protocol. Every packet is built with one allocation of exactly its
 * size; packets without arguments are built once at load. Large results are not copied:
 * `encodeWorkCompleteHead` builds only the header and handle, and the caller writes the result buffer
 * after it (under `socket.cork()`), so the wire carries one packet and the result is never copied.
 *
 * Grammar of every packet: MAGIC(4) TYPE(uint32 BE) SIZE(uint32 BE) ARG0 NUL ARG1 NUL … ARGn-1,
 * the last argument unterminated.
 */
import { ARITY, HEADER_SIZE, MAGIC_REQ, MAGIC_RES, Magic, PacketType, packetTypeName } from './constants.js';

export type PacketArg = Buffer | string;

function byteLength(arg: PacketArg): number {
  return typeof arg === 'string' ? Buffer.byteLength(arg) : arg.length;
}

function writeHeader(buffer: Buffer, magic: Magic, type: number, size: number): void {
  buffer.writeUInt32BE(magic === Magic.REQ ? MAGIC_REQ : MAGIC_RES, 0);
  buffer.writeUInt32BE(type, 4);
  buffer.writeUInt32BE(size, 8);
}

function writeArg(buffer: Buffer, arg: PacketArg, offset: number): number {
  return typeof arg === 'string' ? offset + buffer.write(arg, offset) : offset + arg.copy(buffer, offset);
}

/** Any packet, from its arguments. Throws on a wrong argument count: that is a bug in the caller. */
export function encodePacket(magic: Magic, type: number, args: readonly PacketArg[]): Buffer {
  if (ARITY[type] !== args.length) {
    throw new TypeError(`${packetTypeName(type)} takes ${ARITY[type]} arguments, got ${args.length}`);
  }
  let size = args.length > 0 ? args.length - 1 : 0;
  for (const arg of args) size += byteLength(arg);
  const buffer = Buffer.allocUnsafe(HEADER_SIZE + size);
  writeHeader(buffer, magic, type, size);
  let offset = HEADER_SIZE;
  for (let i = 0; i < args.length; i++) {
    if (i > 0) buffer[offset++] = 0;
    offset = writeArg(buffer, args[i] as PacketArg, offset);
  }
  return buffer;
}

function request(type: number, ...args: PacketArg[]): Buffer {
  return encodePacket(Magic.REQ, type, args);
}

// Packets with no arguments never change: built once, shared by every connection. Sockets only read
// them, so sharing is safe.
export const RESET_ABILITIES_PACKET = request(PacketType.RESET_ABILITIES);
export const PRE_SLEEP_PACKET = request(PacketType.PRE_SLEEP);
export const GRAB_JOB_PACKET = request(PacketType.GRAB_JOB);
export const GRAB_JOB_UNIQ_PACKET = request(PacketType.GRAB_JOB_UNIQ);
export const GRAB_JOB_ALL_PACKET = request(PacketType.GRAB_JOB_ALL);
export const ALL_YOURS_PACKET = request(PacketType.ALL_YOURS);
/** Server-side packets, for fake servers in tests and benchmarks. */
export const NOOP_PACKET = encodePacket(Magic.RES, PacketType.NOOP, []);
export const NO_JOB_PACKET = encodePacket(Magic.RES, PacketType.NO_JOB, []);

// ── Worker → server ───────────────────────────────────────────────────────────────────────────────

/** CAN_DO: function */
export function encodeCanDo(functionName: string): Buffer {
  return request(PacketType.CAN_DO, functionName);
}

/** CANT_DO: function */
export function encodeCantDo(functionName: string): Buffer {
  return request(PacketType.CANT_DO, functionName);
}

/** CAN_DO_TIMEOUT: function NUL timeout — ASCII decimal milliseconds since gearmand 1.1.19. */
export function encodeCanDoTimeout(functionName: string, timeoutMs: number): Buffer {
  return request(PacketType.CAN_DO_TIMEOUT, functionName, String(Math.max(1000, Math.round(timeoutMs))));
}

/** SET_CLIENT_ID: id (shown by gearmand's admin `workers` command) */
export function encodeSetClientId(id: string): Buffer {
  return request(PacketType.SET_CLIENT_ID, id);
}

/** ECHO_REQ: data */
export function encodeEchoReq(data: PacketArg): Buffer {
  return request(PacketType.ECHO_REQ, data);
}

/** WORK_FAIL: handle */
export function encodeWorkFail(handle: PacketArg): Buffer {
  return request(PacketType.WORK_FAIL, handle);
}

/** WORK_COMPLETE: handle NUL result — one buffer, the result copied. For small results. */
export function encodeWorkComplete(handle: PacketArg, result: PacketArg): Buffer {
  return request(PacketType.WORK_COMPLETE, handle, result);
}

/**
 * The first part of WORK_COMPLETE: header, handle and the NUL after it, sized for a result of
 * `resultLength` bytes that the caller writes right after this buffer. Used for large results, which
 * are then never copied.
 */
export function encodeWorkCompleteHead(handle: PacketArg, resultLength: number): Buffer {
  return encodeHead(PacketType.WORK_COMPLETE, handle, resultLength);
}

/** WORK_EXCEPTION: handle NUL data */
export function encodeWorkException(handle: PacketArg, data: PacketArg): Buffer {
  return request(PacketType.WORK_EXCEPTION, handle, data);
}

/** WORK_DATA: handle NUL data */
export function encodeWorkData(handle: PacketArg, data: PacketArg): Buffer {
  return request(PacketType.WORK_DATA, handle, data);
}

/** WORK_STATUS: handle NUL numerator NUL denominator */
export function encodeWorkStatus(handle: PacketArg, numerator: number, denominator: number): Buffer {
  return request(PacketType.WORK_STATUS, handle, String(numerator), String(denominator));
}

/** OPTION_REQ: option name */
export function encodeOptionReq(option: string): Buffer {
  return request(PacketType.OPTION_REQ, option);
}

function encodeHead(type: number, first: PacketArg, lastLength: number): Buffer {
  const firstLength = byteLength(first);
  const buffer = Buffer.allocUnsafe(HEADER_SIZE + firstLength + 1);
  writeHeader(buffer, Magic.REQ, type, firstLength + 1 + lastLength);
  const offset = writeArg(buffer, first, HEADER_SIZE);
  buffer[offset] = 0;
  return buffer;
}

// ── Client → server (tests, benchmarks, the demo) ─────────────────────────────────────────────────

export const SubmitKind = {
  NORMAL: PacketType.SUBMIT_JOB,
  BACKGROUND: PacketType.SUBMIT_JOB_BG,
  HIGH: PacketType.SUBMIT_JOB_HIGH,
  HIGH_BACKGROUND: PacketType.SUBMIT_JOB_HIGH_BG,
  LOW: PacketType.SUBMIT_JOB_LOW,
  LOW_BACKGROUND: PacketType.SUBMIT_JOB_LOW_BG,
} as const;
export type SubmitKind = (typeof SubmitKind)[keyof typeof SubmitKind];

/** SUBMIT_JOB*: function NUL unique NUL workload */
export function encodeSubmitJob(kind: SubmitKind, functionName: string, unique: PacketArg, workload: PacketArg): Buffer {
  return request(kind, functionName, unique, workload);
}

/** GET_STATUS: handle */
export function encodeGetStatus(handle: PacketArg): Buffer {
  return request(PacketType.GET_STATUS, handle);
}

// ── Server → worker (fake servers in tests and benchmarks) ────────────────────────────────────────

/** JOB_ASSIGN_UNIQ: handle NUL function NUL unique NUL workload */
export function encodeJobAssignUniq(handle: PacketArg, functionName: PacketArg, unique: PacketArg, workload: PacketArg): Buffer {
  return encodePacket(Magic.RES, PacketType.JOB_ASSIGN_UNIQ, [handle, functionName, unique, workload]);
}
