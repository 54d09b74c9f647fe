/**
 * The load generator's Gearman client: raw TCP and the project's own codec, so submitting costs as
 * little as possible and nothing between the harness and gearmand is a third-party library.
 *
 * Background submission is pipelined: packets go out in large batches and JOB_CREATED replies are
 * only counted. Foreground submission is one job at a time, for the latency mode.
 */
import { connect, type Socket } from 'node:net';
import { PacketType, Parser, SubmitKind, encodeSubmitJob, type Packet } from '../../src/codec/index.js';

/** Packets per socket write when pipelining: ~45 KiB of 45-byte SUBMIT_JOB_BG packets. */
const BATCH_PACKETS = 1000;

export interface BenchJob {
  functionName: string;
  unique: string;
  workload: Buffer;
}

/** 16-byte workloads, distinct per job, as in the original's measurement. */
export function makeJobs(count: number, functionNames: readonly string[], prefix: string): BenchJob[] {
  const jobs: BenchJob[] = [];
  for (let i = 0; i < count; i++) {
    jobs.push({
      functionName: functionNames[i % functionNames.length] as string,
      // gearmand merges background jobs with the same function and unique: every job needs its own.
      unique: `${prefix}-${i}`,
      workload: Buffer.from(`w${String(i).padStart(15, '0')}`.slice(-16)),
    });
  }
  return jobs;
}

export function encodeBackground(jobs: readonly BenchJob[]): Buffer[] {
  return jobs.map((job) => encodeSubmitJob(SubmitKind.BACKGROUND, job.functionName, job.unique, job.workload));
}

interface ForegroundWaiter {
  handle: string | undefined;
  resolve: (outcome: { ok: boolean }) => void;
  reject: (error: Error) => void;
}

export class GearmanClient {
  readonly #socket: Socket;
  readonly #parser: Parser;
  #created = 0;
  #createdTarget = 0;
  #onCreatedTarget: (() => void) | undefined;
  #foreground: ForegroundWaiter | undefined;
  #failure: Error | undefined;
  #onFailure: ((error: Error) => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.#parser = new Parser({
      onPacket: (packet) => this.#onPacket(packet),
      onError: (error) => this.#fail(error),
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#parser.push(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('gearmand closed the client connection')));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<GearmanClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new GearmanClient(socket));
      });
    });
  }

  /** JOB_CREATED replies counted so far (background submissions). */
  get created(): number {
    return this.#created;
  }

  /**
   * Writes every packet, at most `window` unacknowledged at a time (Infinity: all at once, in
   * batches), and resolves once gearmand acknowledged them all with JOB_CREATED.
   */
  async submitBackground(packets: readonly Buffer[], window = Infinity): Promise<void> {
    const base = this.#created;
    let sent = 0;
    while (sent < packets.length) {
      const outstanding = sent - (this.#created - base);
      const room = window - outstanding;
      if (room <= 0) {
        await this.#waitCreated(base + sent - window + 1);
        continue;
      }
      const end = Math.min(packets.length, sent + Math.min(room, BATCH_PACKETS));
      const ok = this.#socket.write(Buffer.concat(packets.slice(sent, end)));
      sent = end;
      // Respect backpressure so a 1 MB burst does not sit in user space.
      if (!ok) await new Promise<void>((resolve) => this.#socket.once('drain', resolve));
      this.#throwIfFailed();
    }
    await this.#waitCreated(base + packets.length);
  }

  /** One foreground job; resolves when its WORK_COMPLETE (ok) or WORK_FAIL/EXCEPTION arrives. */
  submitForeground(job: BenchJob): Promise<{ ok: boolean }> {
    this.#throwIfFailed();
    if (this.#foreground !== undefined) throw new Error('one foreground job at a time');
    return new Promise((resolve, reject) => {
      this.#foreground = { handle: undefined, resolve, reject };
      this.#socket.write(encodeSubmitJob(SubmitKind.NORMAL, job.functionName, job.unique, job.workload));
    });
  }

  close(): void {
    this.#onFailure = undefined;
    this.#socket.removeAllListeners('close');
    this.#socket.destroy();
  }

  #waitCreated(target: number): Promise<void> {
    this.#throwIfFailed();
    if (this.#created >= target) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#createdTarget = target;
      this.#onCreatedTarget = () => {
        this.#onFailure = undefined;
        resolve();
      };
      this.#onFailure = (error) => {
        this.#onCreatedTarget = undefined;
        reject(error);
      };
    });
  }

  #onPacket(packet: Packet): void {
    switch (packet.type) {
      case PacketType.JOB_CREATED: {
        const fg = this.#foreground;
        if (fg !== undefined && fg.handle === undefined) {
          fg.handle = (packet.args[0] as Buffer).toString('latin1');
          return;
        }
        this.#created++;
        if (this.#onCreatedTarget !== undefined && this.#created >= this.#createdTarget) {
          const done = this.#onCreatedTarget;
          this.#onCreatedTarget = undefined;
          done();
        }
        return;
      }
      case PacketType.WORK_COMPLETE:
      case PacketType.WORK_FAIL:
      case PacketType.WORK_EXCEPTION: {
        const fg = this.#foreground;
        if (fg === undefined || fg.handle !== (packet.args[0] as Buffer).toString('latin1')) return;
        this.#foreground = undefined;
        fg.resolve({ ok: packet.type === PacketType.WORK_COMPLETE });
        return;
      }
      case PacketType.ERROR:
        this.#fail(new Error(`gearmand ERROR ${packet.args.map((arg) => arg.toString('latin1')).join(': ')}`));
        return;
      default:
        // WORK_STATUS, WORK_DATA, WORK_WARNING: not part of these measurements.
        return;
    }
  }

  #fail(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#onFailure?.(error);
    this.#onFailure = undefined;
    const fg = this.#foreground;
    this.#foreground = undefined;
    fg?.reject(error);
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** Queues every job on `connections` parallel client connections; resolves when all are JOB_CREATED. */
export async function queueBackground(port: number, jobs: readonly BenchJob[], connections: number, window = Infinity): Promise<void> {
  const clients = await Promise.all(Array.from({ length: connections }, () => GearmanClient.connect(port)));
  try {
    const packets = encodeBackground(jobs);
    const shares = clients.map((_, c) => packets.filter((__, i) => i % connections === c));
    await Promise.all(clients.map((client, c) => client.submitBackground(shares[c] as Buffer[], window)));
  } finally {
    for (const client of clients) client.close();
  }
}
