/**
 * The status port (SPEC §6): one command per connection, the reply, then the server closes. So
 * `echo threads | nc 127.0.0.1 PORT` works. The server only speaks the line protocol; what `threads`,
 * `counters` and `gauges` say comes from a StatusSource (the master).
 *
 * Decisions where the spec is silent:
 * - A command ends at the first `\n` or `\r` (`threads\r\n`, `threads\n` and `threads\r` all work), or
 *   at the client's end of stream (`printf threads | nc …`). Spaces and tabs around it are ignored;
 *   commands are case-sensitive, as in the original.
 * - More than MAX_LINE_BYTES (1 KiB) without a line end → `Error: line too long\r\n`, close.
 * - A client that sends no complete line within the idle timeout is closed without a reply.
 * - At most MAX_CONNECTIONS clients at once; more are refused by the kernel queue / closed by Node.
 */
import net from 'node:net';
import type { Logger } from '../log.js';
import { listenOn } from './listen.js';

export const MAX_LINE_BYTES = 1024;
export const MAX_CONNECTIONS = 64;
export const UNRECOGNIZED = 'Error: unrecognized command\r\n';
export const LINE_TOO_LONG = 'Error: line too long\r\n';

/** Produces the full reply text of each command. */
export interface StatusSource {
  threads(): Promise<string>;
  counters(): Promise<string>;
  gauges(): Promise<string>;
}

export interface StatusServerOptions {
  host: string;
  port: number;
  source: StatusSource;
  logger: Logger;
  /** Close clients that have not sent a whole line after this long. */
  idleTimeoutMs: number;
}

export class StatusServer {
  readonly #options: StatusServerOptions;
  readonly #server: net.Server;
  readonly #log: Logger;
  readonly #sockets = new Set<net.Socket>();
  #closing: Promise<void> | null = null;
  #connections = 0;

  constructor(options: StatusServerOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'status-server' });
    // allowHalfOpen: a client that shuts its side down after the command (`printf threads | nc -N`)
    // must still get the reply.
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
    this.#server.maxConnections = MAX_CONNECTIONS;
  }

  /** Connections accepted since start (a gauge for tests and operators). */
  get connections(): number {
    return this.#connections;
  }

  /** Binds host:port; rejects with the listen error (EADDRINUSE, EACCES…). */
  listen(): Promise<{ host: string; port: number }> {
    return listenOn(this.#server, this.#options.host, this.#options.port, this.#log, 'status server');
  }


  /** Stops accepting and drops every client. Idempotent. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    this.#closing = new Promise((resolve) => {
      for (const socket of this.#sockets) socket.destroy();
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => resolve());
    });
    return this.#closing;
  }

  #accept(socket: net.Socket): void {
    this.#connections++;
    this.#sockets.add(socket);
    let buffered = '';
    let answered = false;
    socket.setNoDelay(true);
    socket.setTimeout(this.#options.idleTimeoutMs);
    socket.on('timeout', () => {
      if (!answered) socket.destroy();
    });
    // A reset by the client is its business; it must never reach the process as an unhandled error.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#sockets.delete(socket));

    const answer = (command: string | null): void => {
      if (answered) return;
      answered = true;
      // Anything after the first line is ignored: one command per connection.
      socket.removeAllListeners('data');
      socket.resume();
      socket.setTimeout(0);
      void this.#reply(command).then((text) => {
        if (!socket.destroyed) socket.end(text);
      });
    };

    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const end = buffered.search(/[\r\n]/);
      if (end !== -1 && end <= MAX_LINE_BYTES) {
        answer(buffered.slice(0, end));
      } else if (buffered.length > MAX_LINE_BYTES) {
        answer(null);
      }
    });
    socket.on('end', () => {
      if (!answered) answer(buffered.length > 0 ? buffered : '');
    });
  }

  async #reply(command: string | null): Promise<string> {
    if (command === null) return LINE_TOO_LONG;
    const name = command.replace(/^[ \t]+|[ \t]+$/g, '');
    try {
      switch (name) {
        case 'threads':
          return await this.#options.source.threads();
        case 'counters':
          return await this.#options.source.counters();
        case 'gauges':
          return await this.#options.source.gauges();
        default:
          return UNRECOGNIZED;
      }
    } catch (error) {
      this.#log.error({ err: error, command: name }, `status command ${name} failed: ${(error as Error).message}`);
      return 'Error: internal error\r\n';
    }
  }
}
