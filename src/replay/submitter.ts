/**
 * A Gearman client that only submits background jobs, on the project's codec: one connection, many
 * submits in flight. gearmand answers each submit on a connection in order, with JOB_CREATED (the job
 * is queued) or ERROR (refused), so the pending submits wait in a FIFO.
 */
import net from 'node:net';
import { PacketType, Parser, encodeSubmitJob } from '../codec/index.js';
import type { Packet, SubmitKind } from '../codec/index.js';
import type { ServerAddress } from '../config/types.js';
import { GearmanConnectionError, GearmanServerError } from '../errors.js';

const CONNECT_TIMEOUT_MS = 10_000;

export interface SubmitterOptions {
  /** A gearmand that takes longer than this to queue a job is stuck (or stopped): give up on the connection. */
  replyTimeoutMs: number;
  connectTimeoutMs?: number;
  /** Called for each server that did not accept a connection, before the next one is tried. */
  onUnreachable?: (server: ServerAddress, reason: string) => void;
}

interface Pending {
  resolve: (handle: string) => void;
  reject: (error: Error) => void;
}

export class Submitter {
  readonly server: ServerAddress;
  readonly #socket: net.Socket;
  readonly #parser: Parser;
  readonly #pending: Pending[] = [];
  readonly #replyTimeoutMs: number;
  #failure: GearmanConnectionError | null = null;
  #replyTimer: NodeJS.Timeout | null = null;

  private constructor(server: ServerAddress, socket: net.Socket, replyTimeoutMs: number) {
    this.server = server;
    this.#socket = socket;
    this.#replyTimeoutMs = replyTimeoutMs;
    this.#parser = new Parser({
      onPacket: (packet) => this.#onPacket(packet),
      onError: (error) => this.#fail(`protocol error: ${error.message}`),
    });
    socket.on('data', (chunk: Buffer) => this.#parser.push(chunk));
    socket.on('error', (error) => this.#fail(error.message));
    socket.on('close', () => this.#fail('gearmand closed the connection'));
  }

  /**
   * Connects to the first server of `servers` that accepts, telling onUnreachable about each one
   * skipped; throws GearmanConnectionError naming each failure when none accepts.
   */
  static async connectFirst(servers: readonly ServerAddress[], options: SubmitterOptions): Promise<Submitter> {
    const failures: string[] = [];
    for (const server of servers) {
      try {
        return await Submitter.connect(server, options);
      } catch (error) {
        const reason = (error as Error).message;
        failures.push(`${server.label} (${reason})`);
        options.onUnreachable?.(server, reason);
      }
    }
    throw new GearmanConnectionError(`no gearmand reachable: ${failures.join(', ')}`);
  }

  static connect(server: ServerAddress, options: SubmitterOptions): Promise<Submitter> {
    const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: server.host, port: server.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new GearmanConnectionError(`no connection within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Submitter(server, socket, options.replyTimeoutMs));
      });
    });
  }

  /**
   * Submits one background job and resolves with its handle once gearmand has queued it. Rejects with
   * GearmanServerError when gearmand refuses this job (the connection stays usable), or with
   * GearmanConnectionError when the connection is lost, in which case every pending submit fails too.
   */
  submit(kind: SubmitKind, functionName: string, unique: Buffer, workload: Buffer): Promise<string> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    const packet = encodeSubmitJob(kind, functionName, unique, workload);
    return new Promise<string>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      // Only when idle: later submits must not push back the deadline of the oldest one.
      if (this.#replyTimer === null) this.#armReplyTimer();
      this.#socket.write(packet);
    });
  }

  /** Ends the connection; submits still pending are rejected. */
  close(): Promise<void> {
    this.#fail('closed by replay');
    if (this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#socket.once('close', () => resolve());
      this.#socket.destroy();
    });
  }

  #onPacket(packet: Packet): void {
    if (packet.type !== PacketType.JOB_CREATED && packet.type !== PacketType.ERROR) return;
    const pending = this.#pending.shift();
    if (pending === undefined) {
      this.#fail(`unexpected ${packet.type === PacketType.ERROR ? 'ERROR' : 'JOB_CREATED'} with no submit pending`);
      return;
    }
    this.#armReplyTimer();
    const [first, second] = packet.args as [Buffer, Buffer];
    if (packet.type === PacketType.JOB_CREATED) {
      pending.resolve(first.toString('latin1'));
    } else {
      pending.reject(new GearmanServerError(`gearmand ${this.server.label} refused the job: ERROR ${first.toString()}: ${second.toString()}`));
    }
  }

  /** Restarted by every reply: the oldest pending submit always has the reply timeout from the last progress. */
  #armReplyTimer(): void {
    if (this.#replyTimer !== null) clearTimeout(this.#replyTimer);
    this.#replyTimer = null;
    if (this.#pending.length === 0) return;
    const ms = this.#replyTimeoutMs;
    this.#replyTimer = setTimeout(() => this.#fail(`no reply to a submit within ${ms / 1000} s (--reply-timeout)`), ms);
  }

  #fail(reason: string): void {
    if (this.#failure !== null) return;
    this.#failure = new GearmanConnectionError(`gearmand ${this.server.label}: ${reason}`);
    if (this.#replyTimer !== null) clearTimeout(this.#replyTimer);
    this.#replyTimer = null;
    for (const pending of this.#pending.splice(0)) pending.reject(this.#failure);
    this.#socket.destroy();
  }
}
