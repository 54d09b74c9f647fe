/**
 * A raw TCP connection to gearmand whose incoming bytes go through the Parser under test: the codec
 * tests talk to the real server with nothing between the socket and the codec.
 */
import { connect, type Socket } from 'node:net';
import { Parser, type Packet } from '../../src/codec/index.js';

const NEXT_TIMEOUT_MS = 10_000;

export class PacketSocket {
  readonly socket: Socket;
  readonly #parser: Parser;
  readonly #packets: Packet[] = [];
  #waiter: { resolve: (packet: Packet) => void; reject: (error: Error) => void } | null = null;
  #failure: Error | null = null;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.#parser = new Parser({
      onPacket: (packet) => {
        const waiter = this.#waiter;
        if (waiter !== null) {
          this.#waiter = null;
          waiter.resolve(packet);
        } else {
          this.#packets.push(packet);
        }
      },
      onError: (error) => this.#fail(error),
    });
    socket.on('data', (chunk: Buffer) => this.#parser.push(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('connection closed')));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<PacketSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new PacketSocket(socket));
      });
    });
  }

  /** Whether a packet has arrived that nobody has taken with next() yet. */
  get pending(): number {
    return this.#packets.length;
  }

  /** The next packet, in arrival order. Rejects on a protocol error, a closed socket or after 10 s. */
  next(): Promise<Packet> {
    const queued = this.#packets.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      // A guard against a hung test, not a wait: the packet normally arrives in milliseconds.
      const timer = setTimeout(() => {
        this.#waiter = null;
        reject(new Error(`no packet within ${NEXT_TIMEOUT_MS} ms`));
      }, NEXT_TIMEOUT_MS);
      this.#waiter = {
        resolve: (packet) => {
          clearTimeout(timer);
          resolve(packet);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(error);
  }
}
