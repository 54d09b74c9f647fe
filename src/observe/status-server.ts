/**
 * The status port (docs/observability.md, Status port): one command per connection, the reply, then the server closes. So
 * `echo threads | nc 127.0.0.1 PORT` works. The server only speaks the line protocol; what `threads`,
 * `counters` and `gauges` say comes from a StatusSource (the master).
 *
 * Decisions where the spec is silent:
 * - A command ends at the first `\n` or `\r` (`threads\r\n`, `threads\n` and `threads\r` all work), or
 *   at the client's end of stream (`printf threads | nc …`). Spaces and tabs around it are ignored;
 *   commands are case-sensitive, as in the original.
 * - More than MAX_LINE_BYTES (1 KiB) without a line end → `Error: line too long\r\n`, close.
 * - The whole command line must arrive within requestTimeoutMs of connecting; the deadline does not move
 *   when bytes trickle in (a client sending one byte every few seconds would otherwise keep its place
 *   for ever). A client that misses it is closed without a reply. A reply not taken by the client
 *   within requestTimeoutMs of being written is dropped with its connection.
 * - `pause`, `resume` and `drain` (docs/operations.md, Pause and resume) change the daemon: they are
 *   answered only to a client on this machine, whatever --status_host binds: one on a loopback
 *   address, or one whose address is the very address it reached (Linux drops packets that arrive
 *   from outside with a local source address). Their words may be JSON-quoted (status-words.ts). The
 *   read-only commands take no words.
 * - At most maxClients (64) connections at once. A newcomer to a full server takes the place of the
 *   oldest client that has still not sent its line, which is told `Error: server busy\r\n`: a real client
 *   sends its command at once, so slow clients cannot keep it out. When every place is taken by a
 *   client already being answered, the newcomer is told `Error: server busy\r\n` and closed.
 */
import { formatListenAddress } from '../config/listen-address.js';
import { redactUris } from '../config/redact.js';
import net from 'node:net';
import type { Logger } from '../log/logger.js';
import { listenOn } from '../daemon/listen.js';
import { splitWords } from './status-words.js';

export const MAX_LINE_BYTES = 1024;
export const MAX_CONNECTIONS = 64;
export const UNRECOGNIZED = 'Error: unrecognized command\r\n';
export const LINE_TOO_LONG = 'Error: line too long\r\n';
export const SERVER_BUSY = 'Error: server busy\r\n';
/** The commands that change the daemon, answered to loopback clients only. */
export const CONTROL_COMMANDS: ReadonlySet<string> = new Set(['pause', 'resume', 'drain']);
/** Busy refusals are logged at most this often, with the count since the last line. */
const BUSY_LOG_INTERVAL_MS = 60_000;

/** Produces the full reply text of each command. */
export interface StatusSource {
  threads(): Promise<string>;
  counters(): Promise<string>;
  gauges(): Promise<string>;
  /**
   * A control command (`pause`, `resume`, `drain`) with its words, from `peer` (`address:port`, a
   * loopback address): its one-line reply. Absent: the commands are unrecognized.
   */
  control?(command: string, words: string[], peer: string): Promise<string>;
}

/** Whether the client of `socket` runs on this machine: a loopback address, or the address it connected to. */
export function isLocalClient(socket: Pick<net.Socket, 'remoteAddress' | 'localAddress'>): boolean {
  const address = socket.remoteAddress;
  if (address === undefined) return false;
  return address === '::1' || /^(?:::ffff:)?127\./i.test(address) || address === socket.localAddress;
}

export interface StatusServerOptions {
  host: string;
  port: number;
  source: StatusSource;
  logger: Logger;
  /** A client must have sent its whole command line this long after connecting, and taken its reply this long after it was written. */
  requestTimeoutMs: number;
  /** Connections at once (default MAX_CONNECTIONS). */
  maxClients?: number;
}

export class StatusServer {
  readonly #options: StatusServerOptions;
  readonly #server: net.Server;
  readonly #log: Logger;
  readonly #maxClients: number;
  /** Every connection holding a place, oldest first. */
  readonly #sockets = new Set<net.Socket>();
  /** The connections that have not sent a whole line yet, oldest first: the ones a newcomer may displace. */
  readonly #waiting = new Set<net.Socket>();
  #closing: Promise<void> | null = null;
  #connections = 0;
  #busy = { refused: 0, displaced: 0, loggedAt: 0 };

  constructor(options: StatusServerOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'status-server' });
    this.#maxClients = Math.max(1, options.maxClients ?? MAX_CONNECTIONS);
    // allowHalfOpen: a client that shuts its side down after the command (`printf threads | nc -N`)
    // must still get the reply. No server.maxConnections: Node would drop a newcomer unanswered while
    // slow clients keep their places; #accept decides instead.
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
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

  /** Says `Error: server busy` and closes, without waiting for the client to read it. */
  #refuse(socket: net.Socket, displaced: boolean): void {
    this.#sockets.delete(socket);
    this.#waiting.delete(socket);
    // A displaced client's late line must not be answered after the refusal.
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.resume();
    socket.on('error', () => socket.destroy());
    socket.end(SERVER_BUSY, () => socket.destroy());
    // A client that stops reading does not keep the socket either.
    setTimeout(() => socket.destroy(), 1000).unref();
    if (displaced) this.#busy.displaced++;
    else this.#busy.refused++;
    const now = Date.now();
    if (now - this.#busy.loggedAt >= BUSY_LOG_INTERVAL_MS) {
      this.#log.warn(
        { event: 'status-port-busy', displaced: this.#busy.displaced, refused: this.#busy.refused, maxClients: this.#maxClients },
        `status port full (${this.#maxClients} clients): ${this.#busy.displaced} slow clients displaced by newcomers, ${this.#busy.refused} newcomers refused`,
      );
      this.#busy = { refused: 0, displaced: 0, loggedAt: now };
    }
  }

  #accept(socket: net.Socket): void {
    this.#connections++;
    if (this.#sockets.size >= this.#maxClients) {
      const oldestWaiting = this.#waiting.values().next();
      if (oldestWaiting.done === true) {
        this.#refuse(socket, false);
        return;
      }
      this.#refuse(oldestWaiting.value, true);
    }
    this.#sockets.add(socket);
    this.#waiting.add(socket);
    let buffered = '';
    let answered = false;
    socket.setNoDelay(true);
    // One deadline for the whole line, from the connection: trickling bytes do not move it.
    let deadline = setTimeout(() => socket.destroy(), this.#options.requestTimeoutMs);
    // A reset by the client is its business; it must never reach the process as an unhandled error.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(deadline);
      this.#sockets.delete(socket);
      this.#waiting.delete(socket);
    });

    const answer = (command: string | null): void => {
      if (answered) return;
      answered = true;
      this.#waiting.delete(socket);
      clearTimeout(deadline);
      // Anything after the first line is ignored: one command per connection.
      socket.removeAllListeners('data');
      socket.resume();
      void this.#reply(command, socket).then((text) => {
        if (socket.destroyed) return;
        // With allowHalfOpen the socket lives until the client closes its side too; one that neither
        // reads its reply nor closes is dropped at the deadline.
        deadline = setTimeout(() => socket.destroy(), this.#options.requestTimeoutMs);
        // The one redaction rule, on everything the port says (pool URIs, reasons, uniques).
        socket.end(redactUris(text));
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

  async #reply(command: string | null, socket: net.Socket): Promise<string> {
    if (command === null) return LINE_TOO_LONG;
    const name = command.replace(/^[ \t]+|[ \t]+$/g, '');
    const first = /^[^ \t]*/.exec(name)?.[0] ?? '';
    try {
      if (CONTROL_COMMANDS.has(first) && this.#options.source.control !== undefined) return await this.#control(first, name, socket);
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

  async #control(command: string, line: string, socket: net.Socket): Promise<string> {
    const address = socket.remoteAddress;
    const peer = address === undefined ? 'unknown' : formatListenAddress({ host: address, port: socket.remotePort ?? 0 });
    if (!isLocalClient(socket)) {
      this.#log.warn({ event: 'control-refused', command, peer }, `status port: ${command} from ${peer} refused: control commands are taken from this machine only`);
      return `Error: ${command} is accepted from this machine only\r\n`;
    }
    const words = splitWords(line);
    if (!Array.isArray(words)) return `Error: ${words.problem}\r\n`;
    const reply = await (this.#options.source.control as NonNullable<StatusSource['control']>)(command, words.slice(1), peer);
    return reply.endsWith('\r\n') ? reply : `${reply}\r\n`;
  }
}
