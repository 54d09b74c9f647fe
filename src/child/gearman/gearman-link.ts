/**
 * The socket under a GearmanConnection, kept open (docs/architecture.md, Lifecycles): connect, the
 * handshake's write, losses and reconnects with a growing backoff, the graceful close. It holds the
 * connection's state and the one #transition every change goes through (connection-state.ts has the
 * table); what the states mean for grabs and jobs is gearman-connection.ts's business.
 *
 * On connect the registration and an ECHO_REQ go out in one write; gearmand answers only the
 * ECHO_REQ, and in order, so its ECHO_RES proves the server alive and registered: only then is the
 * connection READY. Every packet passes here first: any proves the server works (server-state.ts).
 */
import type net from 'node:net';
import type { ServerAddress } from '../../config/types.js';
import { PacketType, Parser, encodeEchoReq, packetTypeName } from '../../codec/index.js';
import type { OversizedPacket, Packet } from '../../codec/index.js';
import { GearmanConnectionError, InternalError } from '../../errors.js';
import type { ProtocolError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import { LIVENESS_ECHO } from './connection-liveness.js';
import type { ConnectionLiveness } from './connection-liveness.js';
import { BACKOFF_BASE_MS, BACKOFF_MAX_MS, CONNECTION_TRANSITIONS, ConnectionState, backoffDelay, isConnected } from './connection-state.js';
import { detachSocket, openGearmanSocket } from './gearman-socket.js';
import type { ServerState } from './server-state.js';

const S = ConnectionState;
/** How long a graceful close waits for gearmand to close its side before destroying the socket. */
const CLOSE_TIMEOUT_MS = 2000;

/** What the link tells its connection. */
export interface LinkEvents {
  /** The registration, written on each new socket ahead of the handshake's ECHO_REQ. */
  register(): Buffer;
  /** The handshake's ECHO_RES arrived: READY. */
  up(): void;
  /** Any other answer from gearmand. */
  packet(packet: Packet): void;
  /** An answer whose workload the parser dropped (over maxWorkloadBytes). */
  oversizedPacket(packet: OversizedPacket): void;
  /** After every transition. */
  moved(previous: ConnectionState, next: ConnectionState): void;
  /** The socket is about to go (lost, or dropped on purpose): what it carried is let go. */
  releasing(): void;
  /** Lost (or dropped on purpose) while `previous`; the reconnect is scheduled. Not called for close(). */
  down(error: Error, previous: ConnectionState): void;
}

export interface GearmanLinkOptions {
  server: ServerAddress;
  loopTimeoutMs: number;
  /** The parser's workload cap: a bigger assignment arrives as an OversizedPacket. */
  maxWorkloadBytes: number;
  log: Logger;
  serverState: ServerState;
  liveness: ConnectionLiveness;
  events: LinkEvents;
}

export class GearmanLink {
  readonly #server: ServerAddress;
  readonly #log: Logger;
  readonly #serverState: ServerState;
  readonly #liveness: ConnectionLiveness;
  readonly #events: LinkEvents;
  /** TCP keepalive's first probe: about when the liveness probe would go out anyway. */
  readonly #keepAliveDelayMs: number;
  readonly #backoffCapMs: number;
  readonly #parser: Parser;
  #state: ConnectionState = S.BACKOFF;
  #socket: net.Socket | null = null;
  /** Bumped per socket: a job's result is only sent on the socket that assigned it. */
  #epoch = 0;
  /** Consecutive failures since the last packet gearmand sent: drives the backoff. */
  #attempt = 0;
  /** Reconnects caused by ERROR packets since the last job: their backoff grows even though packets arrive. */
  #errorFailures = 0;
  /** Set when a failure was logged at warn; the next successful connect is logged at info. */
  #failureLogged = false;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** Waiting for a connect turn (server-state.ts), or holding one until the handshake ends. */
  #connectTurnAsked = false;
  #holdsConnectTurn = false;
  #closePromise: Promise<void> | null = null;
  #resolveClosed: (() => void) | null = null;
  #closeTimer: NodeJS.Timeout | null = null;

  constructor(options: GearmanLinkOptions) {
    this.#server = options.server;
    this.#keepAliveDelayMs = Math.max(1000, options.loopTimeoutMs);
    this.#backoffCapMs = Math.max(BACKOFF_BASE_MS, Math.min(options.loopTimeoutMs, BACKOFF_MAX_MS));
    this.#log = options.log;
    this.#serverState = options.serverState;
    this.#liveness = options.liveness;
    this.#events = options.events;
    this.#parser = new Parser({
      onPacket: (packet) => this.#onPacket(packet),
      onError: (error) => this.#onProtocolError(error),
      maxWorkloadSize: options.maxWorkloadBytes,
      onOversizedPacket: (packet) => this.#onOversizedPacket(packet),
    });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** The current socket: set from connecting until the loss or close. */
  get socket(): net.Socket | null {
    return this.#socket;
  }

  /** Registered with gearmand and proven alive. */
  get connected(): boolean {
    return isConnected(this.#state);
  }

  start(): void {
    if (this.#state === S.BACKOFF && this.#socket === null && this.#reconnectTimer === null && this.#closePromise === null) {
      this.#askConnectTurn();
    }
  }

  /** The one place the state changes. An unlisted transition is a bug in the connection or the slot. */
  transition(next: ConnectionState): void {
    const previous = this.#state;
    if (!CONNECTION_TRANSITIONS[previous].includes(next)) {
      throw new InternalError(`GearmanConnection ${this.#server.label}: illegal transition ${previous} → ${next}`);
    }
    this.#state = next;
    if (this.#holdsConnectTurn && next !== S.CONNECTING && next !== S.HANDSHAKE) {
      this.#holdsConnectTurn = false;
      this.#serverState.connectEnded();
    }
    this.#events.moved(previous, next);
  }

  /** A job arrived: ERROR packets count from zero again. */
  jobArrived(): void {
    this.#errorFailures = 0;
  }

  /** An ERROR that leaves the protocol state unknown: reconnect, backing off longer with each since the last job. */
  refused(error: Error): void {
    this.#attempt = Math.max(this.#attempt, this.#errorFailures++);
    this.fail(error);
  }

  /** An unplanned loss: back off (growing) and reconnect. */
  fail(error: Error): void {
    const attempt = this.#attempt++;
    this.lost(error, backoffDelay(attempt, this.#backoffCapMs));
  }

  /** The socket goes (a loss, or a drop on purpose with `delayMs` 0); a new one follows after `delayMs`. */
  lost(error: Error, delayMs: number): void {
    const state = this.#state;
    if (state === S.BACKOFF || state === S.CLOSED) return;
    if (state === S.CLOSING) {
      // Losing the socket while closing is the close finishing early.
      if (this.#socket !== null) detachSocket(this.#socket).destroy();
      this.#socket = null;
      this.#finishClose();
      return;
    }
    const wasConnected = this.connected;
    this.#events.releasing();
    if (this.#socket !== null) detachSocket(this.#socket).destroy();
    this.#socket = null;
    this.#parser.reset();
    this.transition(S.BACKOFF);
    if (delayMs > 0 && !this.#failureLogged) {
      this.#failureLogged = true;
      this.#log.warn({ server: this.#server.label, err: error, retryInMs: delayMs }, wasConnected ? 'lost connection to gearmand' : 'cannot connect to gearmand');
    } else if (this.#log.debug()) {
      this.#log.debug({ server: this.#server.label, err: error, retryInMs: delayMs }, 'gearmand connection down');
    }
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#state === S.BACKOFF) this.#askConnectTurn();
    }, delayMs);
    this.#events.down(error, state);
  }

  /**
   * Graceful: pending writes (a final WORK_FAIL) are flushed, then FIN; gearmand re-queues anything
   * it assigned that we did not answer. Memoised and idempotent.
   */
  close(): Promise<void> {
    if (this.#closePromise !== null) return this.#closePromise;
    this.#closePromise = new Promise<void>((resolve) => {
      this.#resolveClosed = resolve;
    });
    if (this.#reconnectTimer !== null) {
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
    }
    const socket = this.#socket;
    if (socket === null || this.#state === S.CONNECTING || this.#state === S.HANDSHAKE || this.#state === S.BACKOFF) {
      if (socket !== null) detachSocket(socket).destroy();
      this.#socket = null;
      this.#finishClose();
    } else {
      this.transition(S.CLOSING);
      socket.end();
      this.#closeTimer = setTimeout(() => {
        this.#closeTimer = null;
        socket.destroy();
      }, CLOSE_TIMEOUT_MS);
      this.#closeTimer.unref();
    }
    return this.#closePromise;
  }

  #finishClose(): void {
    if (this.#closeTimer !== null) {
      clearTimeout(this.#closeTimer);
      this.#closeTimer = null;
    }
    if (this.#state !== S.CLOSED) this.transition(S.CLOSED);
    this.#parser.reset();
    this.#resolveClosed?.();
    this.#resolveClosed = null;
  }

  #askConnectTurn(): void {
    if (this.#connectTurnAsked) return;
    this.#connectTurnAsked = true;
    this.#serverState.connectTurn(this.#onConnectTurn);
  }

  /** The server state gave this link a connect turn; closed meanwhile, it declines it (false). */
  readonly #onConnectTurn = (): boolean => {
    this.#connectTurnAsked = false;
    if (this.#state !== S.BACKOFF || this.#socket !== null || this.#closePromise !== null) return false;
    this.#holdsConnectTurn = true;
    this.#connect();
    return true;
  };

  #connect(): void {
    this.transition(S.CONNECTING);
    this.#epoch++;
    this.#parser.reset();
    this.#liveness.connecting();
    const socket = openGearmanSocket(this.#server, this.#keepAliveDelayMs, (bytes) => {
      this.#liveness.received();
      this.#parser.push(bytes);
    });
    this.#socket = socket;
    socket.on('connect', () => this.#onConnect(socket));
    socket.on('error', (error: Error) => {
      if (socket === this.#socket) this.fail(new GearmanConnectionError(`${this.#server.label}: ${error.message}`, { cause: error }));
    });
    socket.on('close', () => {
      if (socket !== this.#socket) return;
      if (this.#state === S.CLOSING) {
        this.#socket = null;
        this.#finishClose();
      } else {
        this.fail(new GearmanConnectionError(`${this.#server.label} closed the connection`));
      }
    });
  }

  #onConnect(socket: net.Socket): void {
    if (socket !== this.#socket || this.#state !== S.CONNECTING) return;
    socket.write(Buffer.concat([this.#events.register(), encodeEchoReq(LIVENESS_ECHO)]));
    this.transition(S.HANDSHAKE);
  }

  #onPacket(packet: Packet): void {
    this.#serverState.heard();
    if (packet.magic !== 'RES') {
      this.#log.warn({ server: this.#server.label, packet: packetTypeName(packet.type) }, 'ignoring a request packet from gearmand');
      return;
    }
    // A well-formed answer proves the server works: later failures start the backoff afresh. Not an
    // ERROR: a server that keeps refusing us must not be retried at full speed.
    if (packet.type !== PacketType.ERROR) this.#attempt = 0;
    if (packet.type === PacketType.ECHO_RES && this.#state === S.HANDSHAKE) this.#onHandshake();
    else this.#events.packet(packet);
  }

  #onOversizedPacket(packet: OversizedPacket): void {
    this.#serverState.heard();
    this.#attempt = 0;
    if (packet.magic !== 'RES') {
      this.#log.warn({ server: this.#server.label, packet: packetTypeName(packet.type) }, 'ignoring a request packet from gearmand');
      return;
    }
    this.#events.oversizedPacket(packet);
  }

  /** The handshake's ECHO_RES: alive and registered. */
  #onHandshake(): void {
    this.#liveness.handshaken();
    this.transition(S.READY);
    if (this.#failureLogged) {
      this.#failureLogged = false;
      this.#log.info({ server: this.#server.label }, 'reconnected to gearmand');
    } else if (this.#log.debug()) {
      this.#log.debug({ server: this.#server.label }, 'connected to gearmand');
    }
    this.#events.up();
  }

  #onProtocolError(error: ProtocolError): void {
    // After a framing error nothing says where the next packet starts: only a new socket recovers.
    this.#log.warn({ server: this.#server.label, err: error, preview: error.preview }, 'malformed packet from gearmand; resetting the connection');
    this.fail(new GearmanConnectionError(`${this.#server.label}: ${error.message}`, { cause: error }));
  }
}
