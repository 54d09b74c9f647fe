/**
 * Push parser for the Gearman binary protocol.
 *
 * `push(chunk)` emits every complete packet synchronously through `onPacket`. Arguments are views
 * into the chunk they arrived in; a packet split across chunks is assembled once into a buffer of
 * exactly its size and its arguments are views into that buffer. Memory handed out is never written
 * again: a consumer may keep a packet's arguments as long as it likes. The parser keeps no reference
 * to a chunk or a packet after `push` returns, except the bytes of a packet still being assembled.
 *
 * A framing error (bad magic, unknown type, oversize, wrong arity, over-long job handle) is fatal for
 * the stream: it is reported once through `onError` and the parser refuses input until `reset()`,
 * because after a bad header nothing says where the next packet starts. A size no packet of its type
 * can have is refused on the header, before any of its data is waited for: none for a packet without
 * arguments, a job handle's 64 bytes for one that carries only a handle, maxPacketSize for the rest,
 * and for a job assignment whose workload would be dropped, MAX_DECLARED_WORKLOAD_SIZE.
 *
 * With `maxWorkloadSize`, a job assignment whose workload is larger is never assembled: its leading
 * arguments (handle, function, unique…) are kept, the workload bytes are counted and dropped as they
 * arrive, and `onOversizedPacket` reports it once the packet has ended. The stream stays in step, so
 * the worker can fail that one job and carry on.
 *
 * Callbacks may call `reset()` (the rest of the current input is dropped) and `push()` (the bytes are
 * queued behind the chunk being parsed, as a socket would deliver them). If `onPacket` throws, the
 * exception leaves `push` and the parser turns `failed`: the bytes after that packet were never parsed,
 * so the stream position is lost.
 */
import { InternalError, ProtocolError } from '../errors.js';
import {
  ARITY,
  DEFAULT_MAX_PACKET_SIZE,
  HANDLE_FIRST,
  HEADER_SIZE,
  MAGIC_REQ,
  MAGIC_RES,
  MAGIC_SIZE,
  MAX_DECLARED_WORKLOAD_SIZE,
  MAX_HANDLE_SIZE,
  MAX_PACKET_TYPE,
  Magic,
  PacketType,
  packetTypeName,
} from './constants.js';

export interface Packet {
  magic: Magic;
  type: number;
  /** Exactly ARITY[type] arguments; views, not copies. */
  args: Buffer[];
}

/** A job assignment whose workload was over `maxWorkloadSize`: everything but the workload. */
export interface OversizedPacket {
  magic: Magic;
  /** JOB_ASSIGN, JOB_ASSIGN_UNIQ or JOB_ASSIGN_ALL. */
  type: number;
  /** The ARITY[type] − 1 arguments before the workload; views into a buffer of their own. */
  args: Buffer[];
  /** The workload's size in bytes (received and dropped). */
  workloadSize: number;
}

export interface ParserOptions {
  onPacket: (packet: Packet) => void;
  onError: (error: ProtocolError) => void;
  /**
   * Largest data size accepted in one packet; bigger headers are framing errors. Job assignments are
   * exempt when `maxWorkloadSize` is set: that bounds what they can make the parser buffer, and their
   * declared size is bounded by MAX_DECLARED_WORKLOAD_SIZE (or maxWorkloadSize, if larger) instead.
   */
  maxPacketSize?: number;
  /**
   * Largest workload (the last argument of JOB_ASSIGN, JOB_ASSIGN_UNIQ, JOB_ASSIGN_ALL) delivered
   * through onPacket; a larger one goes to onOversizedPacket without ever being buffered. Default: no
   * limit, and assignments obey maxPacketSize like any packet.
   */
  maxWorkloadSize?: number;
  /** Required with maxWorkloadSize. */
  onOversizedPacket?: (packet: OversizedPacket) => void;
}

/** The size field is a uint32: no limit above this means anything. */
const MAX_SIZE_FIELD = 0xffffffff;
/**
 * Cap on the arguments before an oversized workload: gearmand's handle (64), function name (512) and
 * unique (64) limits, a reducer name (512) and the NULs fit many times over.
 */
export const MAX_LEADING_BYTES = 4096;
const LEADING_TOO_LONG = `has no workload within its first ${MAX_LEADING_BYTES} bytes (the arguments before it are longer)`;
/** Packet types whose last argument is a workload, the ones `maxWorkloadSize` applies to. */
const WORKLOAD_LAST: readonly boolean[] = (() => {
  const flags = new Array<boolean>(MAX_PACKET_TYPE + 1).fill(false);
  for (const type of [PacketType.JOB_ASSIGN, PacketType.JOB_ASSIGN_UNIQ, PacketType.JOB_ASSIGN_ALL]) flags[type] = true;
  return flags;
})();
const PREVIEW_BYTES = 32;
const NUL = 0;
/** Zero-length, so sharing it between packets cannot leak bytes. */
const EMPTY = Buffer.alloc(0);
/** The magic's bytes 0..2 are the same both ways ("\0RE"); byte 3 is 'Q' or 'S'. */
const MAGIC_BYTE_0 = 0x00;
const MAGIC_BYTE_1 = 0x52;
const MAGIC_BYTE_2 = 0x45;
const MAGIC_BYTE_3_REQ = 0x51;
const MAGIC_BYTE_3_RES = 0x53;

/**
 * Whether bytes [from, to) of a header's first MAGIC_SIZE bytes can still be a Gearman magic. Lets a
 * partial header fail at its first wrong byte: text sent to a binary connection ("GET / …", an admin
 * reply) is reported at once instead of after 12 bytes that may never come.
 */
function magicPrefixValid(header: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to && i < MAGIC_SIZE; i++) {
    const byte = header[i];
    const ok =
      i === 0 ? byte === MAGIC_BYTE_0
      : i === 1 ? byte === MAGIC_BYTE_1
      : i === 2 ? byte === MAGIC_BYTE_2
      : byte === MAGIC_BYTE_3_REQ || byte === MAGIC_BYTE_3_RES;
    if (!ok) return false;
  }
  return true;
}

export class Parser {
  readonly #onPacket: (packet: Packet) => void;
  readonly #onError: (error: ProtocolError) => void;
  /** The largest data size a header of each type may declare (indexed by type). */
  readonly #sizeLimits: readonly number[];
  /** Infinity when no limit was given: the hot path's check is then one comparison that is false. */
  readonly #maxWorkloadSize: number;
  readonly #onOversizedPacket: ((packet: OversizedPacket) => void) | null;
  /**
   * The header of the packet being assembled across chunks (a split header, or the header of a split
   * body, kept for error previews). Private and never handed out, so it is reused.
   */
  readonly #header = Buffer.alloc(HEADER_SIZE);
  #headerFilled = 0;
  /** Data of a split packet whose header is known: exact size, handed out once full. */
  #body: Buffer | null = null;
  #bodyFilled = 0;
  /**
   * An assignment over maxWorkloadSize whose leading arguments are still arriving: its first bytes
   * (up to MAX_LEADING_BYTES), and how many NULs were seen in them.
   */
  #leading: Buffer | null = null;
  #leadingFilled = 0;
  #leadingNuls = 0;
  /** An oversized assignment being dropped: what to report, and how many of its bytes are still due. */
  #oversized: OversizedPacket | null = null;
  #discardRemaining = 0;
  #magic: Magic = Magic.RES;
  #type = 0;
  /** Data size from the last header #checkHeader accepted. */
  #size = 0;
  /** Stream offset of the packet being read, for error reports. */
  #packetOffset = 0;
  /** Stream offset of the next byte pushed. */
  #streamOffset = 0;
  #failed = false;
  /** Bumped by reset(): lets push() notice a reset made from inside a callback and stop. */
  #generation = 0;
  /** True while push() runs: a push() from inside a callback is queued, not parsed in the middle. */
  #pushing = false;
  /** Chunks pushed from inside a callback, parsed in order once the current chunk is done. */
  #queue: Buffer[] | null = null;

  constructor(options: ParserOptions) {
    const maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
    // NaN would compare false with every size and silently disable the limit.
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < 0 || maxPacketSize > MAX_SIZE_FIELD) {
      throw new InternalError(`maxPacketSize must be an integer from 0 to ${MAX_SIZE_FIELD}, got ${maxPacketSize}`);
    }
    const maxWorkloadSize = options.maxWorkloadSize;
    if (maxWorkloadSize !== undefined) {
      if (!Number.isInteger(maxWorkloadSize) || maxWorkloadSize < 0 || maxWorkloadSize > MAX_SIZE_FIELD) {
        throw new InternalError(`maxWorkloadSize must be an integer from 0 to ${MAX_SIZE_FIELD}, got ${maxWorkloadSize}`);
      }
      if (options.onOversizedPacket === undefined) throw new InternalError('maxWorkloadSize needs an onOversizedPacket callback');
    }
    this.#onPacket = options.onPacket;
    this.#onError = options.onError;
    this.#maxWorkloadSize = maxWorkloadSize ?? Infinity;
    this.#onOversizedPacket = options.onOversizedPacket ?? null;
    this.#sizeLimits = sizeLimits(maxPacketSize, maxWorkloadSize);
  }

  /** True after a framing error (or a throwing onPacket), until reset(). */
  get failed(): boolean {
    return this.#failed;
  }

  /** True while part of a packet is buffered (a header or a body split across chunks). */
  get partial(): boolean {
    return this.#headerFilled > 0 || this.#inBody();
  }

  /** A header was accepted and its data is still arriving (assembled, scanned or dropped). */
  #inBody(): boolean {
    return this.#body !== null || this.#leading !== null || this.#oversized !== null;
  }

  /** Forget any partial packet, queued input and earlier failure: for a fresh connection. */
  reset(): void {
    this.#dropBuffered();
    this.#streamOffset = 0;
    this.#failed = false;
    this.#generation++;
  }

  push(chunk: Buffer): void {
    if (this.#failed) return;
    if (this.#pushing) {
      (this.#queue ??= []).push(chunk);
      return;
    }
    this.#pushing = true;
    try {
      this.#parse(chunk);
      while (this.#queue !== null && !this.#failed) {
        const queue = this.#queue;
        const next = queue.shift() as Buffer;
        if (queue.length === 0) this.#queue = null;
        this.#parse(next);
      }
    } catch (error) {
      // Only a callback can throw here. The bytes after the packet it was given were not parsed, so
      // parsing on would start in the middle of a packet.
      this.#failed = true;
      this.#dropBuffered();
      throw error;
    } finally {
      this.#pushing = false;
    }
  }

  #dropBuffered(): void {
    this.#headerFilled = 0;
    this.#body = null;
    this.#bodyFilled = 0;
    this.#leading = null;
    this.#oversized = null;
    this.#discardRemaining = 0;
    this.#queue = null;
  }

  #parse(chunk: Buffer): void {
    const generation = this.#generation;
    const length = chunk.length;
    let pos = 0;

    if (this.#headerFilled > 0 || this.#inBody()) {
      pos = this.#continueSplit(chunk);
      if (pos < 0 || this.#generation !== generation) return;
    }

    // Fast path: whole packets inside this chunk are emitted as views into it.
    while (length - pos >= HEADER_SIZE) {
      const start = pos;
      this.#packetOffset = this.#streamOffset;
      if (!this.#checkHeader(chunk, start)) return;
      const size = this.#size;
      const dataStart = start + HEADER_SIZE;
      if (length - dataStart >= size) {
        pos = dataStart + size;
        this.#streamOffset += HEADER_SIZE + size;
        if (!this.#emit(chunk, dataStart, pos, false)) return;
        if (this.#generation !== generation) return;
      } else {
        // The body continues in a later chunk: copy what is here into a buffer of exactly its size
        // (or, for an oversized workload, keep only the leading arguments). The header is kept too,
        // only so that an error in this packet can show its first bytes.
        chunk.copy(this.#header, 0, start, dataStart);
        this.#streamOffset += HEADER_SIZE;
        this.#beginBody(size);
        this.#feedBody(chunk, dataStart);
        return;
      }
    }

    if (pos < length) {
      this.#packetOffset = this.#streamOffset;
      this.#headerFilled = chunk.copy(this.#header, 0, pos, length);
      this.#streamOffset += length - pos;
      if (!magicPrefixValid(this.#header, 0, this.#headerFilled)) this.#failBadMagic();
    }
  }

  /** Feeds the start of `chunk` to a packet split across chunks. Returns where whole packets resume, or -1. */
  #continueSplit(chunk: Buffer): number {
    let pos = 0;
    if (!this.#inBody()) {
      const filled = this.#headerFilled;
      const take = Math.min(HEADER_SIZE - filled, chunk.length);
      chunk.copy(this.#header, filled, 0, take);
      this.#headerFilled = filled + take;
      this.#streamOffset += take;
      pos = take;
      if (!magicPrefixValid(this.#header, filled, this.#headerFilled)) {
        this.#failBadMagic();
        return -1;
      }
      if (this.#headerFilled < HEADER_SIZE) return -1;
      this.#headerFilled = 0;
      if (!this.#checkHeader(this.#header, 0)) return -1;
      const size = this.#size;
      if (size === 0) {
        return this.#emit(EMPTY, 0, 0, true) ? pos : -1;
      }
      this.#beginBody(size);
    }
    return this.#feedBody(chunk, pos);
  }

  /** Sets up the data of the packet whose header was just accepted: assembled, or scanned then dropped. */
  #beginBody(size: number): void {
    if (size > this.#maxWorkloadSize && WORKLOAD_LAST[this.#type] === true) {
      this.#leading = Buffer.allocUnsafe(Math.min(size, MAX_LEADING_BYTES));
      this.#leadingFilled = 0;
      this.#leadingNuls = 0;
    } else {
      this.#body = Buffer.allocUnsafe(size);
      this.#bodyFilled = 0;
    }
  }

  /** Feeds `chunk` from `pos` to the packet whose data is arriving. Returns where it ended in `chunk`, or -1. */
  #feedBody(chunk: Buffer, from: number): number {
    let pos = from;
    if (this.#leading !== null) {
      pos = this.#feedLeading(chunk, pos);
      if (pos < 0) return -1;
    }
    const oversized = this.#oversized;
    if (oversized !== null) {
      const take = Math.min(this.#discardRemaining, chunk.length - pos);
      this.#discardRemaining -= take;
      this.#streamOffset += take;
      pos += take;
      if (this.#discardRemaining > 0) return -1;
      this.#oversized = null;
      (this.#onOversizedPacket as (packet: OversizedPacket) => void)(oversized);
      return pos;
    }
    const body = this.#body as Buffer;
    const take = Math.min(body.length - this.#bodyFilled, chunk.length - pos);
    chunk.copy(body, this.#bodyFilled, pos, pos + take);
    this.#bodyFilled += take;
    this.#streamOffset += take;
    pos += take;
    if (this.#bodyFilled < body.length) return -1;
    this.#body = null;
    this.#bodyFilled = 0;
    return this.#emit(body, 0, body.length, true) ? pos : -1;
  }

  /**
   * Collects the arguments before an oversized assignment's workload. Once they are complete the
   * workload's size is known: within the limit after all (long leading arguments), the packet is
   * assembled as usual; over it, the rest is dropped. Returns where it stopped in `chunk`, or -1 when
   * `chunk` is used up or the packet is malformed.
   */
  #feedLeading(chunk: Buffer, from: number): number {
    const leading = this.#leading as Buffer;
    const filled = this.#leadingFilled;
    const take = Math.min(leading.length - filled, chunk.length - from);
    chunk.copy(leading, filled, from, from + take);
    this.#leadingFilled = filled + take;
    this.#streamOffset += take;
    const type = this.#type;
    const leadingArgs = (ARITY[type] as number) - 1;
    let end = -1;
    for (let i = filled; i < this.#leadingFilled; i++) {
      if (leading[i] === NUL && ++this.#leadingNuls === leadingArgs) {
        end = i + 1;
        break;
      }
    }
    if (end < 0) {
      if (this.#leadingFilled < leading.length) return -1;
      const problem =
        leading.length === this.#size
          ? `needs ${leadingArgs + 1} arguments but has ${this.#leadingNuls + 1}`
          : LEADING_TOO_LONG;
      this.#failData(problem, leading, 0, this.#leadingFilled, true);
      return -1;
    }
    this.#leading = null;
    const workloadSize = this.#size - end;
    if (workloadSize <= this.#maxWorkloadSize) {
      const body = Buffer.allocUnsafe(this.#size);
      this.#bodyFilled = leading.copy(body, 0, 0, this.#leadingFilled);
      this.#body = body;
      return from + take;
    }
    const args = new Array<Buffer>(leadingArgs);
    let argStart = 0;
    for (let i = 0; i < leadingArgs; i++) {
      const nul = nulIndex(leading, argStart, end);
      args[i] = leading.subarray(argStart, nul);
      argStart = nul + 1;
    }
    if (HANDLE_FIRST[type] === true && (args[0] as Buffer).length > MAX_HANDLE_SIZE) {
      this.#failData(`job handle is ${(args[0] as Buffer).length} bytes, over the ${MAX_HANDLE_SIZE}-byte limit`, leading, 0, this.#leadingFilled, true);
      return -1;
    }
    this.#oversized = { magic: this.#magic, type, args, workloadSize };
    this.#discardRemaining = this.#size - this.#leadingFilled;
    return from + take;
  }

  /**
   * Validates magic, type and size of the header at `start` (the caller guarantees its 12 bytes are
   * there); records magic, type and size for #emit.
   */
  #checkHeader(source: Buffer, start: number): boolean {
    const magic = readUInt32(source, start);
    const type = readUInt32(source, start + 4);
    const size = readUInt32(source, start + 8);
    if (magic === MAGIC_RES) this.#magic = Magic.RES;
    else if (magic === MAGIC_REQ) this.#magic = Magic.REQ;
    else return this.#fail('bad magic: not a Gearman binary packet', -1, headerPreview(source, start));
    if (type < 1 || type > MAX_PACKET_TYPE || ARITY[type] === -1) {
      return this.#fail(`unknown packet type ${type}`, type, headerPreview(source, start));
    }
    if (size > (this.#sizeLimits[type] as number)) return this.#fail(sizeProblem(type, size, this.#sizeLimits[type] as number), type, headerPreview(source, start));
    this.#type = type;
    this.#size = size;
    return true;
  }

  /**
   * Splits the data [start, end) of `source` into arguments and emits the packet. `split` says the
   * data is a body assembled across chunks (its header is in #header, not in front of it in `source`).
   */
  #emit(source: Buffer, start: number, end: number, split: boolean): boolean {
    const type = this.#type;
    const arity = ARITY[type] as number;
    // Profiling: a small packet's cost is almost all in creating the argument views (V8 typed-array
    // construction); the array and the NUL scans are minor, so they are kept simple.
    const args = new Array<Buffer>(arity);
    let argStart = start;
    for (let i = 0; i < arity - 1; i++) {
      const nul = nulIndex(source, argStart, end);
      if (nul === end) return this.#failData(`needs ${arity} arguments but has ${i + 1}`, source, start, end, split);
      args[i] = source.subarray(argStart, nul);
      argStart = nul + 1;
    }
    if (arity > 0) args[arity - 1] = source.subarray(argStart, end);
    else if (end !== start) return this.#failData(`takes no arguments but has ${end - start} data bytes`, source, start, end, split);
    if (HANDLE_FIRST[type] === true && (args[0] as Buffer).length > MAX_HANDLE_SIZE) {
      return this.#failData(
        `job handle is ${(args[0] as Buffer).length} bytes, over the ${MAX_HANDLE_SIZE}-byte limit`,
        source,
        start,
        end,
        split,
      );
    }
    if (end - start > this.#maxWorkloadSize && WORKLOAD_LAST[type] === true) {
      // A whole oversized assignment inside one chunk: already in memory, but judged and reported
      // exactly as one that arrives in pieces.
      const workload = args[arity - 1] as Buffer;
      if (end - start - workload.length > MAX_LEADING_BYTES) return this.#failData(LEADING_TOO_LONG, source, start, end, split);
      if (workload.length > this.#maxWorkloadSize) {
        args.length = arity - 1;
        (this.#onOversizedPacket as (packet: OversizedPacket) => void)({ magic: this.#magic, type, args, workloadSize: workload.length });
        return true;
      }
    }
    this.#onPacket({ magic: this.#magic, type, args });
    return true;
  }

  /** A packet whose header was fine but whose data is not; the preview starts at its header. */
  #failData(problem: string, source: Buffer, start: number, end: number, split: boolean): false {
    const dataPreviewBytes = Math.min(end - start, PREVIEW_BYTES - HEADER_SIZE);
    const preview = split
      ? Buffer.concat([this.#header, source.subarray(start, start + dataPreviewBytes)])
      : source.subarray(start - HEADER_SIZE, start + dataPreviewBytes);
    return this.#fail(`${packetTypeName(this.#type)} ${problem}`, this.#type, preview.toString('hex'));
  }

  #failBadMagic(): void {
    this.#fail(
      'bad magic: not a Gearman binary packet',
      -1,
      this.#header.subarray(0, this.#headerFilled).toString('hex'),
    );
  }

  #fail(message: string, type: number, preview: string): false {
    this.#failed = true;
    this.#dropBuffered();
    this.#onError(new ProtocolError(message, { offset: this.#packetOffset, packetType: type, preview }));
    return false;
  }
}

/** The largest declared data size of each packet type (see the module comment). */
function sizeLimits(maxPacketSize: number, maxWorkloadSize: number | undefined): number[] {
  const limits = new Array<number>(MAX_PACKET_TYPE + 1).fill(maxPacketSize);
  for (let type = 1; type <= MAX_PACKET_TYPE; type++) {
    if (ARITY[type] === 0) limits[type] = 0;
    else if (ARITY[type] === 1 && HANDLE_FIRST[type] === true) limits[type] = MAX_HANDLE_SIZE;
    else if (WORKLOAD_LAST[type] === true && maxWorkloadSize !== undefined) {
      limits[type] = Math.min(MAX_SIZE_FIELD, Math.max(MAX_DECLARED_WORKLOAD_SIZE, maxWorkloadSize + MAX_LEADING_BYTES));
    }
  }
  return limits;
}

/** Why a header's declared size is refused, for the one log line about it. */
function sizeProblem(type: number, size: number, limit: number): string {
  const name = packetTypeName(type);
  if (limit === 0) return `${name} takes no arguments but declares ${size} data bytes`;
  if (ARITY[type] === 1 && HANDLE_FIRST[type] === true) return `${name} declares a job handle of ${size} bytes, over the ${MAX_HANDLE_SIZE}-byte limit`;
  return `${name} data size ${size} exceeds the limit of ${limit} bytes`;
}

/**
 * Big-endian uint32 without Buffer#readUInt32BE's argument checks: every caller has checked that the
 * 12 header bytes are in `source`, and the header is read for every packet.
 */
function readUInt32(source: Buffer, offset: number): number {
  return (
    (source[offset] as number) * 0x1000000 +
    (((source[offset + 1] as number) << 16) | ((source[offset + 2] as number) << 8) | (source[offset + 3] as number))
  );
}

/**
 * The first NUL in [from, end), or `end` if there is none. Bounded by the packet's end: a scan must
 * never run into the next packet. A plain loop, because the arguments before the last are short
 * (names, handles), where a native indexOf costs more to call than to scan, and cannot be bounded.
 */
function nulIndex(source: Buffer, from: number, end: number): number {
  let i = from;
  while (i < end && source[i] !== NUL) i++;
  return i;
}

/** Up to PREVIEW_BYTES from a bad header on: its size field cannot be trusted to bound anything. */
function headerPreview(source: Buffer, start: number): string {
  return source.subarray(start, start + PREVIEW_BYTES).toString('hex');
}
