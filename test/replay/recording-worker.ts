/**
 * A Gearman worker for the replay tests, on the project's codec: registers functions, takes jobs with
 * GRAB_JOB_UNIQ (so it sees each job's unique), keeps a copy of every job's bytes and completes it.
 * It runs against a real gearmand: what it records is what gearmand handed to a worker.
 */
import net from 'node:net';
import {
  GRAB_JOB_UNIQ_PACKET,
  PRE_SLEEP_PACKET,
  PacketType,
  Parser,
  encodeCanDo,
  encodeWorkComplete,
} from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/index.js';

export interface RecordedJob {
  handle: string;
  functionName: string;
  unique: Buffer;
  workload: Buffer;
}

export class RecordingWorker {
  readonly jobs: RecordedJob[] = [];
  readonly #socket: net.Socket;
  readonly #parser: Parser;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#parser = new Parser({
      onPacket: (packet) => this.#onPacket(packet),
      onError: (error) => socket.destroy(error),
    });
    socket.on('data', (chunk: Buffer) => this.#parser.push(chunk));
    // A test that fails half-way closes the worker in t.after; errors after that do not matter.
    socket.on('error', () => undefined);
  }

  static start(port: number, functions: readonly string[]): Promise<RecordingWorker> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        const worker = new RecordingWorker(socket);
        for (const name of functions) socket.write(encodeCanDo(name));
        socket.write(GRAB_JOB_UNIQ_PACKET);
        resolve(worker);
      });
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #onPacket(packet: Packet): void {
    switch (packet.type) {
      case PacketType.JOB_ASSIGN_UNIQ: {
        const [handle, functionName, unique, workload] = packet.args as [Buffer, Buffer, Buffer, Buffer];
        // Copies: the parser's views must not be kept past the packet.
        this.jobs.push({ handle: handle.toString('latin1'), functionName: functionName.toString(), unique: Buffer.from(unique), workload: Buffer.from(workload) });
        this.#socket.write(encodeWorkComplete(handle, ''));
        this.#socket.write(GRAB_JOB_UNIQ_PACKET);
        return;
      }
      case PacketType.NO_JOB:
        this.#socket.write(PRE_SLEEP_PACKET);
        return;
      case PacketType.NOOP:
        this.#socket.write(GRAB_JOB_UNIQ_PACKET);
        return;
      default:
        return;
    }
  }
}
