/**
 * One TCP connection of one slot to one gearmand (docs/architecture.md, Lifecycles).
 *
 * Lifecycle: connecting → ready (registered: RESET_ABILITIES, SET_CLIENT_ID, CAN_DO… written on
 * connect; gearmand answers none of them) → grabbing → running | sleeping | parked → ready (NOOP, or
 * unparked by its WakeGroup) …; any loss → backoff → connecting; close() → closing → closed. All
 * state changes go through #transition, which refuses transitions the table does not list.
 *
 * After NO_JOB the connection's WakeGroup (one per server for the slots of a pool) decides whether
 * it sleeps at gearmand (PRE_SLEEP) or parks locally: see wake-group.ts for why only one sleeps.
 *
 * The connection never decides on its own to grab: the slot owns that decision, because a slot may
 * hold only one job across all its connections (an assigned job cannot be refused). The connection
 * tells its owner what happened (up, down, job, no job, woken) and executes what it is told.
 *
 * Liveness (gearmand issue #343, the stuck sleeper; issues #105/#150, dead peers): TCP keepalive, plus
 * `tick()` — driven by the pool's one interval timer — asks the owner to probe a connection that has
 * received nothing for loopTimeoutMs, and declares it dead when the probe gets no answer within
 * another loopTimeoutMs.
 */
import net from 'node:net';
import type { ServerAddress } from '../../config/types.js';
import {
  DEFAULT_MAX_PACKET_SIZE,
  GRAB_JOB_UNIQ_PACKET,
  PRE_SLEEP_PACKET,
  PacketType,
  Parser,
  RESET_ABILITIES_PACKET,
  encodeCanDo,
  encodeEchoReq,
  encodeSetClientId,
  encodeWorkComplete,
  encodeWorkCompleteHead,
  encodeWorkException,
  encodeWorkFail,
  packetTypeName,
} from '../../codec/index.js';
import type { OversizedPacket, Packet } from '../../codec/index.js';
import { GearmanConnectionError, GearmanServerError, InternalError } from '../../errors.js';
import type { ProtocolError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { AnswerOutcome, Job, ProgressUpdate } from '../job.js';
import { ProgressThrottle } from './progress-throttle.js';
import type { ProgressReader } from './progress-throttle.js';
import type { WakeGroup, WakeMember } from './wake-group.js';

export const ConnectionState = {
  CONNECTING: 'connecting',
  /** Registered, nothing outstanding, may have work waiting: the slot should grab here when it can. */
  READY: 'ready',
  GRABBING: 'grabbing',
  /** PRE_SLEEP sent: gearmand will NOOP when work arrives. */
  SLEEPING: 'sleeping',
  /** NO_JOB answered, no PRE_SLEEP: another connection of its WakeGroup sleeps and wakes this one. */
  PARKED: 'parked',
  /** Holds the slot's job. */
  RUNNING: 'running',
  BACKOFF: 'backoff',
  CLOSING: 'closing',
  CLOSED: 'closed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

const S = ConnectionState;

const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  [S.CONNECTING]: [S.READY, S.BACKOFF, S.CLOSED],
  [S.READY]: [S.GRABBING, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.GRABBING]: [S.RUNNING, S.SLEEPING, S.PARKED, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.SLEEPING]: [S.READY, S.GRABBING, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.PARKED]: [S.READY, S.SLEEPING, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.RUNNING]: [S.READY, S.GRABBING, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.BACKOFF]: [S.CONNECTING, S.CLOSED],
  [S.CLOSING]: [S.CLOSED],
  [S.CLOSED]: [],
};

/** Backoff after a lost or refused connection: 100 ms × 2^n, capped, ±25 % jitter. */
export const BACKOFF_BASE_MS = 100;
export const BACKOFF_MAX_MS = 5000;
/** How long a graceful close waits for gearmand to close its side before destroying the socket. */
const CLOSE_TIMEOUT_MS = 2000;

/**
 * Every gearmand socket of the process reads into this one buffer (net's `onread`), and what arrived is
 * copied out at once into memory of its own size (small reads share Buffer's 8 KiB pool slabs). Without
 * it Node allocates 64 KiB per read with malloc and shrinks it to the bytes read: with hundreds of slots
 * the shrunk chunks scatter the malloc heap and its pages stay resident: bench/e2e, 1,000 idle slots,
 * same run against the build before, PSS alone 93.6 vs 99.3 MiB (5.8 KiB per slot). Reads are
 * synchronous on the one event loop thread, so one buffer serves every socket.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
/** Below this a WORK_COMPLETE is one buffer; above, the result follows the head uncopied. */
const COPY_RESULT_LIMIT = 16 * 1024;

export function backoffDelay(attempt: number, capMs: number, random: () => number = Math.random): number {
  const base = Math.min(capMs, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 20));
  // Jitter spreads the reconnects of many slots after a gearmand restart.
  return Math.round(base * (0.75 + 0.5 * random()));
}

export interface ConnectionOwner {
  /** Connected and registered; the connection is READY. */
  onConnectionUp(connection: GearmanConnection): void;
  /** Lost (or dropped on purpose); it reconnects by itself. Not called for close(). */
  onConnectionDown(connection: GearmanConnection, error: Error): void;
  /** JOB_ASSIGN_UNIQ answered our grab; the connection is RUNNING. */
  onJobAssigned(connection: GearmanConnection, job: Job, epoch: number): void;
  /**
   * JOB_ASSIGN_UNIQ answered our grab with a workload over `maxWorkloadBytes`, which was dropped unread;
   * the connection is RUNNING and expects finishJob() for that handle like any job.
   */
  onOversizedJob(connection: GearmanConnection, handle: Buffer, functionName: string, workloadBytes: number, epoch: number): void;
  /** NO_JOB answered our grab; the connection is SLEEPING (PRE_SLEEP sent) or PARKED. */
  onNoJob(connection: GearmanConnection): void;
  /** NOOP woke a sleeping connection, or its WakeGroup unparked it; it is READY. */
  onWake(connection: GearmanConnection): void;
  /** Whether the owner would grab on a READY connection right now (no job, no other grab, not stopping). */
  canGrab(): boolean;
  /** Quiet for loopTimeoutMs: send a probe now — `grab()` if it may, else `echo()`. */
  onProbe(connection: GearmanConnection): void;
}

export interface GearmanConnectionOptions {
  server: ServerAddress;
  /** SET_CLIENT_ID: the slot id, shown by gearmand's `workers` admin command. */
  clientId: string;
  functions: readonly string[];
  loopTimeoutMs: number;
  owner: ConnectionOwner;
  log: Logger;
  /** Shared by the pool's connections to this server; without one the connection always sleeps. */
  wakeGroup?: WakeGroup;
  /**
   * max_workload_bytes: a bigger workload is never buffered (onOversizedJob). 0 or absent: the codec's
   * packet cap (DEFAULT_MAX_PACKET_SIZE) is the limit, so a job too big for it fails the same way
   * instead of resetting the connection (which would make gearmand re-assign it, forever).
   */
  maxWorkloadBytes?: number;
}

const ECHO_PAYLOAD = Buffer.from('driveshaft-liveness');

export class GearmanConnection implements WakeMember {
  readonly server: ServerAddress;
  /** The workload size above which an assignment goes to onOversizedJob. */
  readonly maxWorkloadBytes: number;
  readonly #owner: ConnectionOwner;
  readonly #wakeGroup: WakeGroup | null;
  readonly #log: Logger;
  readonly #loopTimeoutMs: number;
  readonly #backoffCapMs: number;
  /** RESET_ABILITIES + SET_CLIENT_ID + CAN_DO…, built once, written in one write per connect. */
  readonly #registration: Buffer;
  readonly #parser: Parser;
  #state: ConnectionState = S.BACKOFF;
  #socket: net.Socket | null = null;
  /** Bumped per socket: a job's result is only sent on the socket that assigned it. */
  #epoch = 0;
  /** Consecutive failures since the last packet gearmand sent: drives the backoff. */
  #attempt = 0;
  /** Set when a failure was logged at warn; the next successful connect is logged at info. */
  #failureLogged = false;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** Liveness, sampled by tick(): data seen since the last tick; when quiet started; probe time. */
  #rxSeen = false;
  #lastRxAt = 0;
  #probeAt = 0;
  #connectStartedAt = 0;
  #closePromise: Promise<void> | null = null;
  #resolveClosed: (() => void) | null = null;
  #closeTimer: NodeJS.Timeout | null = null;
  /** The running job's progress, from its first progress line until its answer or its loss. */
  #progress: ProgressThrottle | null = null;

  constructor(options: GearmanConnectionOptions) {
    this.server = options.server;
    this.#owner = options.owner;
    this.#wakeGroup = options.wakeGroup ?? null;
    this.#log = options.log;
    this.#loopTimeoutMs = options.loopTimeoutMs;
    this.#backoffCapMs = Math.max(BACKOFF_BASE_MS, Math.min(options.loopTimeoutMs, BACKOFF_MAX_MS));
    this.#registration = Buffer.concat([
      RESET_ABILITIES_PACKET,
      encodeSetClientId(options.clientId),
      ...options.functions.map((fn) => encodeCanDo(fn)),
    ]);
    this.maxWorkloadBytes = options.maxWorkloadBytes !== undefined && options.maxWorkloadBytes > 0 ? options.maxWorkloadBytes : DEFAULT_MAX_PACKET_SIZE;
    this.#parser = new Parser({
      onPacket: (packet) => this.#onPacket(packet),
      onError: (error) => this.#onProtocolError(error),
      maxWorkloadSize: this.maxWorkloadBytes,
      onOversizedPacket: (packet) => this.#onOversizedPacket(packet),
    });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** Registered with gearmand (the status' connectedServers counts these). */
  get connected(): boolean {
    const state = this.#state;
    return state === S.READY || state === S.GRABBING || state === S.SLEEPING || state === S.PARKED || state === S.RUNNING;
  }

  start(): void {
    if (this.#state === S.BACKOFF && this.#socket === null && this.#reconnectTimer === null && this.#closePromise === null) {
      this.#connect();
    }
  }

  /** GRAB_JOB_UNIQ. Only from READY or SLEEPING (a probe re-grab); the slot guarantees one grab at a time. */
  grab(): void {
    this.#transition(S.GRABBING);
    (this.#socket as net.Socket).write(GRAB_JOB_UNIQ_PACKET);
  }

  /** WakeMember: whether the slot would grab here now. */
  get slotCanGrab(): boolean {
    return this.#owner.canGrab();
  }

  /** WakeMember: the group hands this parked connection the news that work may be queued. */
  unpark(): void {
    if (this.#state !== S.PARKED) return;
    this.#transition(S.READY);
    this.#owner.onWake(this);
  }

  /** WakeMember: the group makes this parked connection its sleeper. */
  sleep(): boolean {
    if (this.#state !== S.PARKED) return false;
    this.#preSleep();
    return true;
  }

  /** PRE_SLEEP: gearmand NOOPs this connection when work for it is (or already was) queued. */
  #preSleep(): void {
    (this.#socket as net.Socket).write(PRE_SLEEP_PACKET);
    this.#transition(S.SLEEPING);
  }

  /** ECHO_REQ: a liveness probe that cannot cause an assignment. */
  echo(): void {
    if (this.connected) (this.#socket as net.Socket).write(encodeEchoReq(ECHO_PAYLOAD));
  }

  /** Whether the socket that assigned a job (its epoch) is still the live one, holding that job. */
  holdsJob(epoch: number): boolean {
    return epoch === this.#epoch && this.#state === S.RUNNING;
  }

  /**
   * A progress line of the running job (WORK_STATUS, WORK_DATA, WORK_WARNING) for the socket that
   * assigned it, throttled and bounded (progress-throttle.ts): `reader` is paused while gearmand is
   * behind. False (nothing sent) when that socket is gone or no longer holds the job.
   */
  sendProgress(epoch: number, handle: Buffer, update: ProgressUpdate, reader: ProgressReader): boolean {
    if (epoch !== this.#epoch || this.#state !== S.RUNNING) return false;
    let progress = this.#progress;
    if (progress === null || progress.handle !== handle) {
      progress?.discard();
      progress = new ProgressThrottle(this.#socket as net.Socket, handle, reader, () => this.holdsJob(epoch));
      this.#progress = progress;
    }
    progress.add(update);
    return true;
  }

  /**
   * Sends a job's outcome (WORK_COMPLETE with the result, WORK_EXCEPTION, or WORK_FAIL) on the socket
   * that assigned the job, then — when `grabAfter` — the next GRAB_JOB_UNIQ in the same write: one
   * syscall and one gearmand wake-up per job on the hot path. Returns false (and sends nothing) when
   * that socket is gone: gearmand has re-queued the job, so no answer is owed.
   */
  finishJob(epoch: number, handle: Buffer, outcome: AnswerOutcome, grabAfter: boolean): boolean {
    if (epoch !== this.#epoch || this.#state !== S.RUNNING) return false;
    const socket = this.#socket as net.Socket;
    this.#transition(grabAfter ? S.GRABBING : S.READY);
    const then = grabAfter ? GRAB_JOB_UNIQ_PACKET : null;
    const progress = this.#progress;
    if (progress !== null) {
      this.#progress = null;
      // A held status goes out before the answer, in the same write.
      socket.cork();
      progress.finish();
    }
    if (outcome.kind === 'complete' && outcome.result.length > COPY_RESULT_LIMIT) {
      // The result follows its head uncopied, in the same write (cork).
      socket.cork();
      socket.write(encodeWorkCompleteHead(handle, outcome.result.length));
      socket.write(outcome.result);
      if (then !== null) socket.write(then);
      socket.uncork();
    } else if (outcome.kind === 'complete') {
      socket.write(encodeWorkComplete(handle, outcome.result, then));
    } else if (outcome.exception !== undefined) {
      // gearmand 1.1.20 ends the job on WORK_EXCEPTION (a WORK_FAIL after it only earns an ERROR
      // "job not found"): it is the whole answer. Clients without the exceptions option get a WORK_FAIL from gearmand.
      socket.write(encodeWorkException(handle, outcome.exception, then));
    } else {
      socket.write(encodeWorkFail(handle, then));
    }
    if (progress !== null) socket.uncork();
    return true;
  }

  /**
   * gearman_ret 14: drop this socket without answering so gearmand re-queues the job, then reconnect
   * at once (a deliberate drop is not a failure, so no backoff).
   */
  drop(epoch: number, reason: string): boolean {
    if (epoch !== this.#epoch || this.#state !== S.RUNNING) return false;
    this.#lost(new GearmanConnectionError(reason), 0);
    return true;
  }

  /** Liveness check; `now` is Date.now() sampled once per tick by the pool. */
  tick(now: number): void {
    const state = this.#state;
    if (state === S.CONNECTING) {
      // A SYN into a black hole never errors by itself.
      if (now - this.#connectStartedAt >= Math.max(this.#loopTimeoutMs, 1000)) {
        this.#fail(new GearmanConnectionError(`connect to ${this.server.label} timed out`));
      }
      return;
    }
    if (!this.connected) return;
    if (this.#rxSeen) {
      this.#rxSeen = false;
      this.#lastRxAt = now;
      this.#probeAt = 0;
      return;
    }
    if (this.#probeAt === 0) {
      if (now - this.#lastRxAt >= this.#loopTimeoutMs) {
        this.#probeAt = now;
        this.#owner.onProbe(this);
      }
    } else if (now - this.#probeAt >= this.#loopTimeoutMs) {
      this.#fail(new GearmanConnectionError(`${this.server.label} did not answer a liveness probe within ${this.#loopTimeoutMs} ms`));
    }
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
    if (socket === null || this.#state === S.CONNECTING || this.#state === S.BACKOFF) {
      if (socket !== null) this.#detach(socket).destroy();
      this.#socket = null;
      this.#finishClose();
    } else {
      this.#transition(S.CLOSING);
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
    if (this.#state !== S.CLOSED) this.#transition(S.CLOSED);
    this.#parser.reset();
    this.#resolveClosed?.();
    this.#resolveClosed = null;
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  /** The one place the state changes. An unlisted transition is a bug in this module or the slot. */
  #transition(next: ConnectionState): void {
    const previous = this.#state;
    if (!TRANSITIONS[previous].includes(next)) {
      throw new InternalError(`GearmanConnection ${this.server.label}: illegal transition ${previous} → ${next}`);
    }
    this.#state = next;
    // Leaving the group's view. A NOOP (sleeping → ready) reports after the slot had its chance to
    // grab (see #onPacket), because whether the group must wake a stand-in depends on that.
    if ((previous === S.SLEEPING && next !== S.READY) || previous === S.PARKED) {
      this.#wakeGroup?.leave(this, next === S.GRABBING);
    }
  }

  #connect(): void {
    this.#transition(S.CONNECTING);
    this.#epoch++;
    this.#parser.reset();
    this.#connectStartedAt = Date.now();
    const socket = net.connect({
      host: this.server.host,
      port: this.server.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: Math.max(1000, this.#loopTimeoutMs),
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number, buffer: Uint8Array) => {
          this.#rxSeen = true;
          // The parser hands out views of what it is given and never writes them: give it a copy.
          this.#parser.push(Buffer.from(buffer.subarray(0, bytes)));
          return true;
        },
      },
    });
    this.#socket = socket;
    socket.on('connect', () => this.#onConnect(socket));
    socket.on('error', (error: Error) => {
      if (socket === this.#socket) this.#fail(new GearmanConnectionError(`${this.server.label}: ${error.message}`, { cause: error }));
    });
    socket.on('close', () => {
      if (socket !== this.#socket) return;
      if (this.#state === S.CLOSING) {
        this.#socket = null;
        this.#finishClose();
      } else {
        this.#fail(new GearmanConnectionError(`${this.server.label} closed the connection`));
      }
    });
  }

  #onConnect(socket: net.Socket): void {
    if (socket !== this.#socket || this.#state !== S.CONNECTING) return;
    socket.write(this.#registration);
    this.#lastRxAt = Date.now();
    this.#rxSeen = false;
    this.#probeAt = 0;
    this.#transition(S.READY);
    if (this.#failureLogged) {
      this.#failureLogged = false;
      this.#log.info({ server: this.server.label }, 'reconnected to gearmand');
    } else if (this.#log.debug()) {
      this.#log.debug({ server: this.server.label }, 'connected to gearmand');
    }
    this.#owner.onConnectionUp(this);
  }

  #onPacket(packet: Packet): void {
    // Any well-formed packet proves the server works: later failures start the backoff afresh.
    this.#attempt = 0;
    if (packet.magic !== 'RES') {
      this.#log.warn({ server: this.server.label, packet: packetTypeName(packet.type) }, 'ignoring a request packet from gearmand');
      return;
    }
    switch (packet.type) {
      case PacketType.NO_JOB:
        if (this.#state !== S.GRABBING) return this.#unexpected(packet);
        if (this.#wakeGroup === null || this.#wakeGroup.admit(this)) {
          this.#preSleep();
        } else {
          this.#transition(S.PARKED);
        }
        this.#owner.onNoJob(this);
        return;
      case PacketType.NOOP:
        // A NOOP outside SLEEPING is a stale wake-up (e.g. it crossed a probe re-grab): harmless,
        // because gearmand answers PRE_SLEEP with a NOOP whenever work is already waiting.
        if (this.#state !== S.SLEEPING) return;
        this.#transition(S.READY);
        this.#owner.onWake(this);
        // (the owner may have grabbed here: #state changed behind TypeScript's narrowing)
        this.#wakeGroup?.leave(this, (this.#state as ConnectionState) === S.GRABBING);
        return;
      case PacketType.JOB_ASSIGN_UNIQ:
      case PacketType.JOB_ASSIGN: {
        if (this.#state !== S.GRABBING) {
          // An assignment we did not ask for would break one-job-per-slot: drop the socket so
          // gearmand re-queues it.
          this.#fail(new GearmanConnectionError(`${this.server.label} assigned a job without a grab`));
          return;
        }
        const args = packet.args;
        const uniq = packet.type === PacketType.JOB_ASSIGN_UNIQ;
        const handle = args[0] as Buffer;
        const unique = uniq ? (args[2] as Buffer) : EMPTY;
        const job: Job = {
          handle,
          handleText: handle.toString('latin1'),
          functionName: (args[1] as Buffer).toString('utf8'),
          functionBytes: args[1] as Buffer,
          unique,
          uniqueText: unique.toString('utf8'),
          workload: args[uniq ? 3 : 2] as Buffer,
          server: this.server.label,
        };
        this.#transition(S.RUNNING);
        // Before the job starts: a parked connection should already be grabbing the next one.
        this.#wakeGroup?.assigned();
        this.#owner.onJobAssigned(this, job, this.#epoch);
        return;
      }
      case PacketType.ECHO_RES:
        return;
      case PacketType.ERROR: {
        const error = new GearmanServerError(
          `${this.server.label} sent ERROR ${JSON.stringify((packet.args[0] as Buffer).toString('latin1').slice(0, 64))}: ${JSON.stringify((packet.args[1] as Buffer).toString('utf8').slice(0, 200))}`,
        );
        this.#log.warn({ server: this.server.label, err: error }, 'gearmand sent an ERROR packet');
        return;
      }
      default:
        return this.#unexpected(packet);
    }
  }

  /** An assignment whose workload the parser dropped: the same checks and state change as for a job. */
  #onOversizedPacket(packet: OversizedPacket): void {
    this.#attempt = 0;
    if (packet.magic !== 'RES') {
      this.#log.warn({ server: this.server.label, packet: packetTypeName(packet.type) }, 'ignoring a request packet from gearmand');
      return;
    }
    if (this.#state !== S.GRABBING) {
      this.#fail(new GearmanConnectionError(`${this.server.label} assigned a job without a grab`));
      return;
    }
    this.#transition(S.RUNNING);
    this.#wakeGroup?.assigned();
    this.#owner.onOversizedJob(this, packet.args[0] as Buffer, (packet.args[1] as Buffer).toString('utf8'), packet.workloadSize, this.#epoch);
  }

  #unexpected(packet: Packet): void {
    if (this.#log.debug()) {
      this.#log.debug({ server: this.server.label, packet: packetTypeName(packet.type), state: this.#state }, 'ignoring an unexpected packet');
    }
  }

  #onProtocolError(error: ProtocolError): void {
    // After a framing error nothing says where the next packet starts: only a new socket recovers.
    this.#log.warn({ server: this.server.label, err: error, preview: error.preview }, 'malformed packet from gearmand; resetting the connection');
    this.#fail(new GearmanConnectionError(`${this.server.label}: ${error.message}`, { cause: error }));
  }

  /** An unplanned loss: back off (growing) and reconnect. */
  #fail(error: Error): void {
    const attempt = this.#attempt++;
    this.#lost(error, backoffDelay(attempt, this.#backoffCapMs));
  }

  #lost(error: Error, delayMs: number): void {
    const state = this.#state;
    if (state === S.BACKOFF || state === S.CLOSED) return;
    if (state === S.CLOSING) {
      // Losing the socket while closing is the close finishing early.
      if (this.#socket !== null) this.#detach(this.#socket).destroy();
      this.#socket = null;
      this.#finishClose();
      return;
    }
    const wasConnected = this.connected;
    // Held progress of a job gearmand re-queues (lost, or dropped on purpose) is not sent anywhere.
    this.#progress?.discard();
    this.#progress = null;
    if (this.#socket !== null) this.#detach(this.#socket).destroy();
    this.#socket = null;
    this.#parser.reset();
    this.#transition(S.BACKOFF);
    if (delayMs > 0 && !this.#failureLogged) {
      this.#failureLogged = true;
      this.#log.warn({ server: this.server.label, err: error, retryInMs: delayMs }, wasConnected ? 'lost connection to gearmand' : 'cannot connect to gearmand');
    } else if (this.#log.debug()) {
      this.#log.debug({ server: this.server.label, err: error, retryInMs: delayMs }, 'gearmand connection down');
    }
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#state === S.BACKOFF) this.#connect();
    }, delayMs);
    this.#owner.onConnectionDown(this, error);
  }

  /** Stops a socket's events from reaching us (it is being replaced or closed). */
  #detach(socket: net.Socket): net.Socket {
    socket.removeAllListeners('connect');
    socket.removeAllListeners('data');
    socket.removeAllListeners('close');
    socket.removeAllListeners('error');
    // A late error on a destroyed socket must not become an uncaught exception.
    socket.on('error', () => undefined);
    return socket;
  }
}

const EMPTY = Buffer.alloc(0);
