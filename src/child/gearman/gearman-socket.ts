/**
 * The TCP socket under a GearmanConnection: how it is opened and read, and how a replaced one is
 * silenced. No protocol here.
 */
import net from 'node:net';
import type { ServerAddress } from '../../config/types.js';

/**
 * Every gearmand socket of the process reads into this one buffer (net's `onread`), and what arrived is
 * copied out at once into memory of its own size (small reads share Buffer's 8 KiB pool slabs). Without
 * it Node allocates 64 KiB per read with malloc and shrinks it to the bytes read: with hundreds of slots
 * the shrunk chunks scatter the malloc heap and its pages stay resident: bench/e2e, 1,000 idle slots,
 * same run against the build before, PSS alone 93.6 vs 99.3 MiB (5.8 KiB per slot). Reads are
 * synchronous on the one event loop thread, so one buffer serves every socket.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Connects with TCP_NODELAY and keepalive; `onBytes` gets each read as a buffer of its own. */
export function openGearmanSocket(server: ServerAddress, keepAliveInitialDelayMs: number, onBytes: (bytes: Buffer) => void): net.Socket {
  return net.connect({
    host: server.host,
    port: server.port,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: keepAliveInitialDelayMs,
    onread: {
      buffer: READ_BUFFER,
      callback: (bytes: number, buffer: Uint8Array) => {
        // The parser hands out views of what it is given and never writes them: give it a copy.
        onBytes(Buffer.from(buffer.subarray(0, bytes)));
        return true;
      },
    },
  });
}

/** Stops a socket's events from reaching its connection (it is being replaced or closed). */
export function detachSocket(socket: net.Socket): net.Socket {
  socket.removeAllListeners('connect');
  socket.removeAllListeners('data');
  socket.removeAllListeners('close');
  socket.removeAllListeners('error');
  // A late error on a destroyed socket must not become an uncaught exception.
  socket.on('error', () => undefined);
  return socket;
}
