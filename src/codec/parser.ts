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
 * because after a bad header nothing says where the next packet starts.
 */
import { ProtocolError } from '../errors.js';
import {
  ARITY,
  DEFAULT_MAX_PACKET_SIZE,
  HANDLE_FIRST,
  HEADER_SIZE,
  MAGIC_REQ,
  MAGIC_RES,
  MAX_HANDLE_SIZE,
  MAX_PACKET_TYPE,
  Magic,
  packetTypeName,
} from './constants.js';

export interface Packet {
  magic: Magic;
  type: number;
  /** Exactly ARITY[type] arguments; views, not copies. */
  args: Buffer[];
}

export interface ParserOptions {
  onPacket: (packet: Packet) => void;
  onError: (error: ProtocolError) => void;
  /** Largest data size accepted in one packet; bigger headers are framing errors. */
  maxPacketSize?: number;
}

const PREVIEW_BYTES = 32;
const NUL = 0;
/** Zero-length, so sharing it between packets cannot leak bytes. */
const EMPTY = Buffer.alloc(0);

export class Parser {
  readonly #onPacket: (packet: Packet) => void;
  readonly #onError: (error: ProtocolError) => void;
  readonly #maxPacketSize: number;
  /** Bytes of a header split across chunks; private and never handed out, so it is reused. */
  readonly #header = Buffer.alloc(HEADER_SIZE);
  #headerFilled = 0;
  /** Data of a split packet whose header is known: exact size, handed out once full. */
  #body: Buffer | null = null;
  #bodyFilled = 0;
  #magic: Magic = Magic.RES;
  #type = 0;
  /** Stream offset of the packet being read, for error reports. */
  #packetOffset = 0;
  /** Stream offset of the next byte pushed. */
  #streamOffset = 0;
  #failed = false;
  /** Bumped by reset(): lets push() notice a reset made from inside onPacket and stop. */
  #generation = 0;

  constructor(options: ParserOptions) {
    this.#onPacket = options.onPacket;
    this.#onError = options.onError;
    this.#maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
  }

  /** True after a framing error, until reset(). */
  get failed(): boolean {
    return this.#failed;
  }

  /** True while part of a packet is buffered (a header or a body split across chunks). */
  get partial(): boolean {
    return this.#headerFilled > 0 || this.#body !== null;
  }

  /** Forget any partial packet and any earlier failure: for a fresh connection. */
  reset(): void {
    this.#headerFilled = 0;
    this.#body = null;
    this.#bodyFilled = 0;
    this.#streamOffset = 0;
    this.#failed = false;
    this.#generation++;
  }

  push(chunk: Buffer): void {
    if (this.#failed) return;
    const generation = this.#generation;
    const length = chunk.length;
    let pos = 0;

    if (this.#headerFilled > 0 || this.#body !== null) {
      pos = this.#continueSplit(chunk);
      if (pos < 0 || this.#generation !== generation) return;
    }

    // Fast path: whole packets inside this chunk are emitted as views into it.
    while (length - pos >= HEADER_SIZE) {
      const start = pos;
      if (!this.#readHeader(chunk, start)) return;
      const size = chunk.readUInt32BE(start + 8);
      const dataStart = start + HEADER_SIZE;
      if (length - dataStart >= size) {
        pos = dataStart + size;
        this.#streamOffset += HEADER_SIZE + size;
        if (!this.#emit(chunk, dataStart, pos)) return;
        if (this.#generation !== generation) return;
      } else {
        // The body continues in a later chunk: copy what is here into a buffer of exactly its size.
        this.#body = Buffer.allocUnsafe(size);
        this.#bodyFilled = chunk.copy(this.#body, 0, dataStart, length);
        this.#streamOffset += length - start;
        return;
      }
    }

    if (pos < length) {
      this.#headerFilled = chunk.copy(this.#header, 0, pos, length);
      this.#packetOffset = this.#streamOffset;
      this.#streamOffset += length - pos;
    }
  }

  /** Feeds the start of `chunk` to a packet split across chunks. Returns where whole packets resume, or -1. */
  #continueSplit(chunk: Buffer): number {
    let pos = 0;
    if (this.#body === null) {
      const need = HEADER_SIZE - this.#headerFilled;
      const take = Math.min(need, chunk.length);
      chunk.copy(this.#header, this.#headerFilled, 0, take);
      this.#headerFilled += take;
      this.#streamOffset += take;
      pos = take;
      if (this.#headerFilled < HEADER_SIZE) return -1;
      this.#headerFilled = 0;
      const packetOffset = this.#packetOffset;
      if (!this.#checkHeader(this.#header, 0, packetOffset, this.#header)) return -1;
      const size = this.#header.readUInt32BE(8);
      if (size === 0) {
        return this.#emit(EMPTY, 0, 0) ? pos : -1;
      }
      this.#body = Buffer.allocUnsafe(size);
      this.#bodyFilled = 0;
    }
    const body = this.#body;
    const take = Math.min(body.length - this.#bodyFilled, chunk.length - pos);
    chunk.copy(body, this.#bodyFilled, pos, pos + take);
    this.#bodyFilled += take;
    this.#streamOffset += take;
    pos += take;
    if (this.#bodyFilled < body.length) return -1;
    this.#body = null;
    this.#bodyFilled = 0;
    return this.#emit(body, 0, body.length) ? pos : -1;
  }

  #readHeader(chunk: Buffer, start: number): boolean {
    this.#packetOffset = this.#streamOffset;
    return this.#checkHeader(chunk, start, this.#streamOffset, chunk);
  }

  /** Validates magic, type and size; records magic and type for #emit. */
  #checkHeader(source: Buffer, start: number, offset: number, previewSource: Buffer): boolean {
    const magic = source.readUInt32BE(start);
    const type = source.readUInt32BE(start + 4);
    const size = source.readUInt32BE(start + 8);
    if (magic === MAGIC_RES) this.#magic = Magic.RES;
    else if (magic === MAGIC_REQ) this.#magic = Magic.REQ;
    else return this.#fail('bad magic: not a Gearman binary packet', offset, -1, previewSource, start);
    if (type < 1 || type > MAX_PACKET_TYPE || ARITY[type] === -1) {
      return this.#fail(`unknown packet type ${type}`, offset, type, previewSource, start);
    }
    if (size > this.#maxPacketSize) {
      return this.#fail(
        `${packetTypeName(type)} data size ${size} exceeds the limit of ${this.#maxPacketSize} bytes`,
        offset,
        type,
        previewSource,
        start,
      );
    }
    this.#type = type;
    return true;
  }

  /** Splits the data [start, end) of `source` into arguments and emits the packet. */
  #emit(source: Buffer, start: number, end: number): boolean {
    const type = this.#type;
    const arity = ARITY[type] as number;
    const args: Buffer[] = new Array<Buffer>(arity);
    if (arity === 0) {
      if (end !== start) {
        return this.#fail(`${packetTypeName(type)} takes no arguments but has ${end - start} data bytes`, this.#packetOffset, type, source, start);
      }
    } else {
      let argStart = start;
      for (let i = 0; i < arity - 1; i++) {
        // Bounded by the packet's end: never scan into the next packet.
        let nul = argStart;
        while (nul < end && source[nul] !== NUL) nul++;
        if (nul === end) {
          return this.#fail(`${packetTypeName(type)} needs ${arity} arguments but has ${i + 1}`, this.#packetOffset, type, source, start);
        }
        args[i] = source.subarray(argStart, nul);
        argStart = nul + 1;
      }
      args[arity - 1] = source.subarray(argStart, end);
      if (HANDLE_FIRST[type] && (args[0] as Buffer).length > MAX_HANDLE_SIZE) {
        return this.#fail(
          `${packetTypeName(type)} job handle is ${(args[0] as Buffer).length} bytes, over the ${MAX_HANDLE_SIZE}-byte limit`,
          this.#packetOffset,
          type,
          source,
          start,
        );
      }
    }
    this.#onPacket({ magic: this.#magic, type, args });
    return true;
  }

  #fail(message: string, offset: number, type: number, source: Buffer, start: number): false {
    this.#failed = true;
    this.#headerFilled = 0;
    this.#body = null;
    const preview = source.subarray(start, Math.min(source.length, start + PREVIEW_BYTES)).toString('hex');
    this.#onError(new ProtocolError(message, { offset, packetType: type, preview }));
    return false;
  }
}
