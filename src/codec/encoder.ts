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
import { InternalError } from '../errors.js';

export type PacketArg = Buffer | string;

/** The size field is a uint32. */
const MAX_DATA_SIZE = 0xffffffff;
/** gearmand reads CAN_DO_TIMEOUT's timeout with atoi() into an int. */
const MAX_TIMEOUT_MS = 0x7fffffff;
/** gearmand 1.1.19+ raises 1–999 ms to one second; sending what it will do keeps logs honest. */
const MIN_TIMEOUT_MS = 1000;

function byteLength(arg: PacketArg): number {
  return typeof arg === 'string' ? Buffer.byteLength(arg) : arg.length;
}

/**
 * Whether an argument that the receiver splits at NUL contains one. Such an argument would shift every
 * argument after it (a function name "a\0b" becomes function "a" and unique "b…"), so it is refused.
 */
function hasNul(arg: PacketArg): boolean {
  if (typeof arg === 'string') return arg.includes('\0');
  // A loop, not indexOf: these are short names and handles, where the native call costs more.
  for (let i = 0; i < arg.length; i++) if (arg[i] === 0) return true;
  return false;
}

function checkDataSize(type: number, size: number): void {
  if (size > MAX_DATA_SIZE) {
    throw new InternalError(`${packetTypeName(type)} data of ${size} bytes does not fit the 32-bit size field`);
  }
}

function writeHeader(buffer: Buffer, magic: Magic, type: number, size: number): void {
  buffer.writeUInt32BE(magic === Magic.REQ ? MAGIC_REQ : MAGIC_RES, 0);
  buffer.writeUInt32BE(type, 4);
  buffer.writeUInt32BE(size, 8);
}

function writeArg(buffer: Buffer, arg: PacketArg, offset: number): number {
  return typeof arg === 'string' ? offset + buffer.write(arg, offset) : offset + arg.copy(buffer, offset);
}

/**
 * Any packet, from its arguments. Throws an InternalError on an unknown type, a wrong argument count or
 * a NUL inside an argument other than the last: each is a bug in the caller that would corrupt framing.
 * `then`: an already encoded packet copied in right after this one, in the same buffer.
 */
export function encodePacket(magic: Magic, type: number, args: readonly PacketArg[], then: Buffer | null = null): Buffer {
  const arity = ARITY[type];
  if (arity === undefined || arity === -1) throw new InternalError(`unknown packet type ${type}`);
  if (arity !== args.length) {
    throw new InternalError(`${packetTypeName(type)} takes ${arity} arguments, got ${args.length}`);
  }
  let size = args.length > 0 ? args.length - 1 : 0;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as PacketArg;
    if (i < args.length - 1 && hasNul(arg)) {
      throw new InternalError(`${packetTypeName(type)} argument ${i} contains a NUL byte; only the last argument may`);
    }
    size += byteLength(arg);
  }
  checkDataSize(type, size);
  const buffer = Buffer.allocUnsafe(HEADER_SIZE + size + (then === null ? 0 : then.length));
  writeHeader(buffer, magic, type, size);
  let offset = HEADER_SIZE;
  for (let i = 0; i < args.length; i++) {
    if (i > 0) buffer[offset++] = 0;
    offset = writeArg(buffer, args[i] as PacketArg, offset);
  }
  if (then !== null) then.copy(buffer, offset);
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

/**
 * CAN_DO_TIMEOUT: function NUL timeout — ASCII decimal milliseconds since gearmand 1.1.19, which
 * raises 1–999 to 1000. Fractions round up (a timeout is never shortened). 0 is refused rather than
 * sent: gearmand would read it as "no timeout", which is what encodeCanDo says; NaN, Infinity and
 * values past gearmand's int are refused because they would go out as text atoi() misreads.
 */
export function encodeCanDoTimeout(functionName: string, timeoutMs: number): Buffer {
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new InternalError(`CAN_DO_TIMEOUT timeout must be above 0 and at most ${MAX_TIMEOUT_MS} ms, got ${timeoutMs}`);
  }
  return request(PacketType.CAN_DO_TIMEOUT, functionName, String(Math.max(MIN_TIMEOUT_MS, Math.ceil(timeoutMs))));
}

/** SET_CLIENT_ID: id (shown by gearmand's admin `workers` command) */
export function encodeSetClientId(id: string): Buffer {
  return request(PacketType.SET_CLIENT_ID, id);
}

/** ECHO_REQ: data */
export function encodeEchoReq(data: PacketArg): Buffer {
  return request(PacketType.ECHO_REQ, data);
}

/*
 * The answers to a job take `then`, a packet sent right after in the same buffer: a worker's answer and
 * its next GRAB_JOB_UNIQ then leave in one plain write instead of a corked pair (writev), 0.6 µs less
 * CPU per job (same-process A/B on a loopback socket).
 */

/** WORK_FAIL: handle */
export function encodeWorkFail(handle: PacketArg, then: Buffer | null = null): Buffer {
  return encodePacket(Magic.REQ, PacketType.WORK_FAIL, [handle], then);
}

/** WORK_COMPLETE: handle NUL result — one buffer, the result copied. For small results. */
export function encodeWorkComplete(handle: PacketArg, result: PacketArg, then: Buffer | null = null): Buffer {
  return encodePacket(Magic.REQ, PacketType.WORK_COMPLETE, [handle, result], then);
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
export function encodeWorkException(handle: PacketArg, data: PacketArg, then: Buffer | null = null): Buffer {
  return encodePacket(Magic.REQ, PacketType.WORK_EXCEPTION, [handle, data], then);
}

/** WORK_DATA: handle NUL data */
export function encodeWorkData(handle: PacketArg, data: PacketArg): Buffer {
  return request(PacketType.WORK_DATA, handle, data);
}

/** WORK_WARNING: handle NUL data */
export function encodeWorkWarning(handle: PacketArg, data: PacketArg): Buffer {
  return request(PacketType.WORK_WARNING, handle, data);
}

/** WORK_STATUS: handle NUL numerator NUL denominator (ASCII decimal, non-negative integers) */
export function encodeWorkStatus(handle: PacketArg, numerator: number, denominator: number): Buffer {
  for (const value of [numerator, denominator]) {
    // String(NaN) or "1.5e+21" would reach clients as text gearmand's atoi() misreads.
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new InternalError(`WORK_STATUS numerator and denominator must be non-negative integers, got ${value}`);
    }
  }
  return request(PacketType.WORK_STATUS, handle, String(numerator), String(denominator));
}

/** OPTION_REQ: option name */
export function encodeOptionReq(option: string): Buffer {
  return request(PacketType.OPTION_REQ, option);
}

function encodeHead(type: number, first: PacketArg, lastLength: number): Buffer {
  if (!Number.isSafeInteger(lastLength) || lastLength < 0) {
    throw new InternalError(`${packetTypeName(type)} body length must be a non-negative integer, got ${lastLength}`);
  }
  if (hasNul(first)) throw new InternalError(`${packetTypeName(type)} argument 0 contains a NUL byte; only the last argument may`);
  const firstLength = byteLength(first);
  checkDataSize(type, firstLength + 1 + lastLength);
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
