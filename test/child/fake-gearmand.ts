/**
 * A scriptable fake gearmand for faults a real one cannot produce (malformed or split packets, a peer
 * that goes silent, a lost NOOP). Packets to the worker are built with the test-side packet builder;
 * requests from the worker are framed here by hand (12-byte header + size), independent of src/codec.
 */
import net from 'node:net';
import type { ServerAddress } from '../../src/config/types.js';
import { buildPacket, T } from '../helpers/packet-builder.js';

export interface FakePacket {
  type: number;
  /** NUL-split arguments (all of them: no arity table here); the raw data is `data`. */
  args: Buffer[];
  data: Buffer;
  at: number;
}

export interface FakeConnection {
  id: number;
  socket: net.Socket;
  packets: FakePacket[];
  openedAt: number;
  closedAt: number | null;
  /** PRE_SLEEP received and no GRAB since. */
  sleeping: boolean;
  /** Write raw bytes (e.g. a malformed packet). */
  send(bytes: Buffer): void;
}

export interface QueuedJob {
  handle: string;
  fn: string;
  unique: string;
  workload: Buffer;
}

/**
 * Return true from a hook to say "handled, skip the default". Defaults: GRAB_JOB_UNIQ → the next
 * queued job or NO_JOB; PRE_SLEEP → sleeping (NOOP at once if jobs wait); ECHO_REQ → ECHO_RES.
 */
export type FakeHook = (connection: FakeConnection, packet: FakePacket) => boolean | undefined;

export class FakeGearmand {
  readonly server: net.Server;
  readonly connections: FakeConnection[] = [];
  readonly queue: QueuedJob[] = [];
  /** WORK_COMPLETE / WORK_FAIL / … received, in order. */
  readonly results: Array<{ connection: number; type: number; handle: string; data: Buffer }> = [];
  hook: FakeHook | null = null;
  /** When false, nothing is answered (a silent peer); packets are still recorded. */
  answering = true;
  /** When false, queuing a job does not NOOP sleepers (a lost wake-up). */
  wakeSleepers = true;
  #nextId = 1;

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async start(): Promise<FakeGearmand> {
    const server = net.createServer();
    const fake = new FakeGearmand(server);
    server.on('connection', (socket) => fake.#accept(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get address(): ServerAddress {
    return { host: '127.0.0.1', port: this.port, label: `127.0.0.1:${this.port}` };
  }

  /** Connections still open. */
  open(): FakeConnection[] {
    return this.connections.filter((c) => c.closedAt === null);
  }

  /** Queues a job; wakes sleeping connections with NOOP unless `wakeSleepers` is off. */
  addJob(job: QueuedJob): void {
    this.queue.push(job);
    if (!this.wakeSleepers || !this.answering) return;
    for (const connection of this.open()) {
      if (connection.sleeping) {
        connection.sleeping = false;
        connection.send(buildPacket('RES', T.NOOP, []));
      }
    }
  }

  static jobAssign(job: QueuedJob): Buffer {
    return buildPacket('RES', T.JOB_ASSIGN_UNIQ, [job.handle, job.fn, job.unique, job.workload]);
  }

  close(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  #accept(socket: net.Socket): void {
    const connection: FakeConnection = {
      id: this.#nextId++,
      socket,
      packets: [],
      openedAt: Date.now(),
      closedAt: null,
      sleeping: false,
      send: (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      },
    };
    this.connections.push(connection);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 12) {
        const size = pending.readUInt32BE(8);
        if (pending.length < 12 + size) break;
        const type = pending.readUInt32BE(4);
        const data = Buffer.from(pending.subarray(12, 12 + size));
        pending = pending.subarray(12 + size);
        const packet: FakePacket = { type, data, args: splitArgs(data), at: Date.now() };
        connection.packets.push(packet);
        this.#onPacket(connection, packet);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      connection.closedAt = Date.now();
    });
  }

  #onPacket(connection: FakeConnection, packet: FakePacket): void {
    if (packet.type === T.WORK_COMPLETE || packet.type === T.WORK_FAIL || packet.type === T.WORK_EXCEPTION) {
      const nul = packet.data.indexOf(0);
      const handle = (nul === -1 ? packet.data : packet.data.subarray(0, nul)).toString('latin1');
      this.results.push({ connection: connection.id, type: packet.type, handle, data: nul === -1 ? Buffer.alloc(0) : packet.data.subarray(nul + 1) });
    }
    if (this.hook?.(connection, packet) === true) return;
    if (!this.answering) return;
    switch (packet.type) {
      case T.GRAB_JOB_UNIQ: {
        connection.sleeping = false;
        const job = this.queue.shift();
        connection.send(job === undefined ? buildPacket('RES', T.NO_JOB, []) : FakeGearmand.jobAssign(job));
        return;
      }
      case T.PRE_SLEEP:
        if (this.queue.length > 0) connection.send(buildPacket('RES', T.NOOP, []));
        else connection.sleeping = true;
        return;
      case T.ECHO_REQ:
        connection.send(buildPacket('RES', T.ECHO_RES, [packet.data]));
        return;
      default:
        return;
    }
  }
}

function splitArgs(data: Buffer): Buffer[] {
  const args: Buffer[] = [];
  let start = 0;
  for (;;) {
    const nul = data.indexOf(0, start);
    if (nul === -1) {
      args.push(data.subarray(start));
      return args;
    }
    args.push(data.subarray(start, nul));
    start = nul + 1;
  }
}

export { T };
