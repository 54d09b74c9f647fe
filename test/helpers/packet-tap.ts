/**
 * A transparent TCP relay between workers and a real gearmand that counts the packets crossing it,
 * per connection and direction, and can cut one connection. Tests use it to assert what gearmand and
 * the daemon actually said to each other (how many NOOPs a job cost) without replacing gearmand.
 *
 * The framing here is the test side's own (12-byte header, size at offset 8), independent of src/codec,
 * like packet-builder.ts. Admin text lines are not expected on a worker connection and would only
 * confuse the counts, so the relay assumes binary packets.
 */
import net from 'node:net';
import { HEADER_SIZE } from './packet-builder.js';

export interface TappedConnection {
  readonly id: number;
  /** Packet types the worker sent to gearmand, in order. */
  readonly toServer: number[];
  /** Packet types gearmand sent to the worker, in order. */
  readonly toWorker: number[];
  /** Resets both sides (as a network fault would). */
  destroy(): void;
  readonly closed: boolean;
}

export interface PacketTap {
  readonly port: number;
  /** While true, new connections are reset at once (a gearmand that became unreachable). */
  refuseNew: boolean;
  readonly connections: readonly TappedConnection[];
  /** Sum over all connections of packets of `type` in one direction. */
  count(direction: 'toServer' | 'toWorker', type: number): number;
  close(): Promise<void>;
}

/** Splits a byte stream into packet types; keeps the partial tail between chunks. */
function framer(onType: (type: number) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let offset = 0;
    while (pending.length - offset >= HEADER_SIZE) {
      const size = pending.readUInt32BE(offset + 8);
      if (pending.length - offset < HEADER_SIZE + size) break;
      onType(pending.readUInt32BE(offset + 4));
      offset += HEADER_SIZE + size;
    }
    pending = pending.subarray(offset);
  };
}

export function startPacketTap(upstreamPort: number, upstreamHost = '127.0.0.1'): Promise<PacketTap> {
  const connections: TappedConnection[] = [];
  const sockets = new Set<net.Socket>();
  let nextId = 1;
  const tap = { refuseNew: false };
  const server = net.createServer((downstream) => {
    if (tap.refuseNew) {
      downstream.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ port: upstreamPort, host: upstreamHost, noDelay: true });
    downstream.setNoDelay(true);
    sockets.add(downstream).add(upstream);
    const toServer: number[] = [];
    const toWorker: number[] = [];
    let closed = false;
    const end = (): void => {
      closed = true;
      downstream.destroy();
      upstream.destroy();
    };
    const countUp = framer((type) => toServer.push(type));
    const countDown = framer((type) => toWorker.push(type));
    downstream.on('data', (chunk: Buffer) => {
      countUp(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      countDown(chunk);
      downstream.write(chunk);
    });
    for (const socket of [downstream, upstream]) {
      socket.on('error', end);
      socket.on('close', () => {
        sockets.delete(socket);
        end();
      });
    }
    connections.push({
      id: nextId++,
      toServer,
      toWorker,
      destroy: () => {
        closed = true;
        downstream.resetAndDestroy();
        upstream.destroy();
      },
      get closed() {
        return closed;
      },
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      resolve({
        port: address.port,
        get refuseNew() {
          return tap.refuseNew;
        },
        set refuseNew(value: boolean) {
          tap.refuseNew = value;
        },
        connections,
        count: (direction, type) => connections.reduce((n, c) => n + c[direction].filter((t) => t === type).length, 0),
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
