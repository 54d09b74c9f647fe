/**
 * Gearman binary protocol constants (gearmand PROTOCOL, libgearman-1.0/protocol.h).
 *
 * Framing: 4-byte magic ("\0REQ" to the server, "\0RES" from it), uint32 BE type, uint32 BE size,
 * then `size` bytes of NUL-separated arguments whose LAST argument runs to the end and may hold NULs.
 */

export const HEADER_SIZE = 12;
export const MAGIC_SIZE = 4;
/** "\0REQ" read as a uint32 BE. */
export const MAGIC_REQ = 0x00524551;
/** "\0RES" read as a uint32 BE. */
export const MAGIC_RES = 0x00524553;
/** gearmand's GEARMAN_JOB_HANDLE_SIZE: longer handles are a protocol violation. */
export const MAX_HANDLE_SIZE = 64;
/**
 * Default cap on one packet's data. gearmand itself accepts workloads far beyond this, but a worker
 * must refuse a size field that would make it buffer gigabytes because of one corrupt header.
 */
export const DEFAULT_MAX_PACKET_SIZE = 256 * 1024 * 1024;

/**
 * Largest size a job assignment's header may declare when its workload is counted and dropped instead
 * of buffered (the parser's maxWorkloadSize). Dropping costs no memory, but every declared byte is
 * waited for: a header claiming 0xFFFFFFF0 bytes would hold the connection until the liveness probe
 * gave up on it. gearmand holds every queued workload whole in memory and a client submits it in one
 * packet, so no real job comes near 1 GiB; a header declaring more is corrupt or hostile and is
 * refused as it arrives. (A pool whose max_workload_bytes is larger raises it to that.)
 */
export const MAX_DECLARED_WORKLOAD_SIZE = 1024 * 1024 * 1024;

export const Magic = {
  REQ: 'REQ',
  RES: 'RES',
} as const;
export type Magic = (typeof Magic)[keyof typeof Magic];

export const PacketType = {
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
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/** The highest packet type this codec knows; the arity table is indexed by type. */
export const MAX_PACKET_TYPE = 42;

const T = PacketType;

/**
 * Number of arguments per packet type. The parser splits the first n−1 at NUL bytes and gives the
 * rest of the data, NULs included, to the last. -1 marks a type number gearmand does not define.
 */
export const ARITY: readonly number[] = (() => {
  const arity = new Array<number>(MAX_PACKET_TYPE + 1).fill(-1);
  const table: Array<[number, number]> = [
    [T.CAN_DO, 1], [T.CANT_DO, 1], [T.RESET_ABILITIES, 0], [T.PRE_SLEEP, 0], [T.NOOP, 0],
    [T.SUBMIT_JOB, 3], [T.JOB_CREATED, 1], [T.GRAB_JOB, 0], [T.NO_JOB, 0], [T.JOB_ASSIGN, 3],
    [T.WORK_STATUS, 3], [T.WORK_COMPLETE, 2], [T.WORK_FAIL, 1], [T.GET_STATUS, 1], [T.ECHO_REQ, 1],
    [T.ECHO_RES, 1], [T.SUBMIT_JOB_BG, 3], [T.ERROR, 2], [T.STATUS_RES, 5], [T.SUBMIT_JOB_HIGH, 3],
    [T.SET_CLIENT_ID, 1], [T.CAN_DO_TIMEOUT, 2], [T.ALL_YOURS, 0], [T.WORK_EXCEPTION, 2],
    [T.OPTION_REQ, 1], [T.OPTION_RES, 1], [T.WORK_DATA, 2], [T.WORK_WARNING, 2], [T.GRAB_JOB_UNIQ, 0],
    [T.JOB_ASSIGN_UNIQ, 4], [T.SUBMIT_JOB_HIGH_BG, 3], [T.SUBMIT_JOB_LOW, 3], [T.SUBMIT_JOB_LOW_BG, 3],
    [T.SUBMIT_JOB_SCHED, 8], [T.SUBMIT_JOB_EPOCH, 4], [T.SUBMIT_REDUCE_JOB, 4],
    [T.SUBMIT_REDUCE_JOB_BACKGROUND, 4], [T.GRAB_JOB_ALL, 0], [T.JOB_ASSIGN_ALL, 5],
    [T.GET_STATUS_UNIQUE, 1], [T.STATUS_RES_UNIQUE, 6],
  ];
  for (const [type, n] of table) arity[type] = n;
  return arity;
})();

/**
 * Packet types whose first argument is a job handle, bounded by MAX_HANDLE_SIZE. GET_STATUS_UNIQUE's
 * argument is a unique id, not a handle, so it is not listed.
 */
export const HANDLE_FIRST: readonly boolean[] = (() => {
  const flags = new Array<boolean>(MAX_PACKET_TYPE + 1).fill(false);
  for (const type of [
    T.JOB_CREATED, T.JOB_ASSIGN, T.JOB_ASSIGN_UNIQ, T.JOB_ASSIGN_ALL, T.WORK_STATUS, T.WORK_COMPLETE,
    T.WORK_FAIL, T.WORK_EXCEPTION, T.WORK_DATA, T.WORK_WARNING, T.GET_STATUS, T.STATUS_RES,
  ]) {
    flags[type] = true;
  }
  return flags;
})();

const NAMES: readonly string[] = (() => {
  const names = new Array<string>(MAX_PACKET_TYPE + 1).fill('');
  for (const [name, type] of Object.entries(PacketType)) names[type] = name;
  return names;
})();

/** `JOB_ASSIGN_UNIQ`, or `UNKNOWN(99)` for numbers outside the table. Used in logs and errors. */
export function packetTypeName(type: number): string {
  return (type >= 0 && type <= MAX_PACKET_TYPE && NAMES[type]) || `UNKNOWN(${type})`;
}
