/**
 * One TCP connection of one slot to one gearmand (docs/architecture.md, Lifecycles).
 *
 * Lifecycle: connecting → handshake (RESET_ABILITIES, SET_CLIENT_ID, CAN_DO… and an ECHO_REQ written
 * on connect) → ready once the ECHO_RES arrives (gearmand answers in order, so the server is alive and
 * has the registration) → grabbing → running | sleeping | parked → ready (NOOP, or unparked by its
 * WakeGroup) …; any loss → backoff → connecting; close() → closing → closed. All state changes go
 * through #transition, which refuses transitions the table does not list.
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
 * another loopTimeoutMs. Separately and sooner, a GRAB unanswered for grabReplyTimeoutMs() is
 * abandoned: the server turns suspect for the pool (server-state.ts) and the slot grabs elsewhere,
 * while the GRAB stays outstanding here; a late assignment goes to the slot if it is free, else the
 * socket is dropped so gearmand re-queues the job. A stopped server (the kernel still accepts TCP)
 * never completes the handshake, so its reconnects back off instead of looking healthy.
 *
 * Abilities change at runtime (setAbilities); a CANT_DO never reaches gearmand while this socket
 * holds, or may be assigned, a job of that function (abilities.ts says why).
 */
import net from 'node:net';
import type { ServerAddress } from '../../config/types.js';
import {
  DEFAULT_MAX_PACKET_SIZE,
  PRE_SLEEP_PACKET,
  PacketType,
  Parser,
  encodeEchoReq,
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
import { Abilities, concatPackets } from './abilities.js';
import { BACKOFF_BASE_MS, BACKOFF_MAX_MS, CONNECTION_TRANSITIONS, ConnectionState, backoffDelay, connectTimeoutMs, grabReplyTimeoutMs, isConnected } from './connection-state.js';
import { detachSocket, openGearmanSocket } from './gearman-socket.js';
import { ProgressThrottle } from './progress-throttle.js';
import type { ProgressReader } from './progress-throttle.js';
import { ServerState } from './server-state.js';
import type { WakeGroup, WakeMember } from './wake-group.js';

export { BACKOFF_BASE_MS, BACKOFF_MAX_MS, ConnectionState, backoffDelay, grabReplyTimeoutMs } from './connection-state.js';

const S = ConnectionState;
/** How long a graceful close waits for gearmand to close its side before destroying the socket. */
const CLOSE_TIMEOUT_MS = 2000;
/** Below this a WORK_COMPLETE is one buffer; above, the result follows the head uncopied. */
const COPY_RESULT_LIMIT = 16 * 1024;

export interface ConnectionOwner {
  /** Connected and registered; the connection is READY. */
  onConnectionUp(connection: GearmanConnection): void;
  /** Lost (or dropped on purpose); it reconnects by itself. Not called for close(). */
  onConnectionDown(connection: GearmanConnection, error: Error): void;
  /** JOB_ASSIGN_UNIQ answered our grab; the connection is RUNNING. */
  onJobAssigned(connection: GearmanConnection, job: Job, epoch: number): void;
  /**
   * Our GRAB went unanswered for the grab-reply timeout (or its server turned suspect): the owner no
   * longer counts it as its grab. It stays outstanding on this connection; see adoptLateJob.
   */
  onGrabAbandoned(connection: GearmanConnection): void;
  /**
   * An abandoned GRAB was answered with a job: true → the owner takes it as if it had just grabbed
   * (onJobAssigned follows); false → the socket is dropped so gearmand re-queues the job.
   */
  adoptLateJob(connection: GearmanConnection, functionName: string, handle: string): boolean;
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
  /** What the pool knows about this server (suspect, which GRAB); without one the connection keeps its own. */
  serverState?: ServerState;
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
  readonly serverState: ServerState;
  readonly #owner: ConnectionOwner;
  readonly #wakeGroup: WakeGroup | null;
  readonly #log: Logger;
  readonly #loopTimeoutMs: number;
  readonly #grabReplyTimeoutMs: number;
  readonly #backoffCapMs: number;
  readonly #clientId: string;
  /** The functions registered (CAN_DO) and the CANT_DOs still owed to the current socket. */
  readonly #abilities: Abilities;
  /** Same functions as the rest of its WakeGroup: may park. Otherwise it always sleeps at gearmand itself. */
  #grouped = true;
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
  /** The outstanding GRAB: when it was written, whether the slot gave up on it, whether it was GRAB_JOB_UNIQ. */
  #grabSentAt = 0;
  #grabAbandoned = false;
  #grabUnique = false;
  /** A liveness ECHO_REQ went out behind the outstanding GRAB: if its answer comes first, the GRAB was lost. */
  #echoBehindGrab = false;
  /**
   * A job's answer went out and nothing came back since: gearmand answers in order, so an ERROR now
   * may be about that answer (or a progress packet before it) rather than a later GRAB.
   */
  #answerUnconfirmed = false;
  /** The function of the job this socket holds (RUNNING): its CANT_DO waits for the answer. */
  #heldFunction: string | null = null;
  /** Reconnects caused by ERROR packets since the last job: their backoff grows even though packets arrive. */
  #errorFailures = 0;
  /** An ERROR answering a progress packet or result was logged at warn (the rest go to debug). */
  #workErrorLogged = false;
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
    this.#grabReplyTimeoutMs = grabReplyTimeoutMs(options.loopTimeoutMs);
    this.#backoffCapMs = Math.max(BACKOFF_BASE_MS, Math.min(options.loopTimeoutMs, BACKOFF_MAX_MS));
    this.#clientId = options.clientId;
    this.#abilities = new Abilities(options.functions);
    this.serverState = options.serverState ?? new ServerState(options.server.label, options.log);
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
    return isConnected(this.#state);
  }

  start(): void {
    if (this.#state === S.BACKOFF && this.#socket === null && this.#reconnectTimer === null && this.#closePromise === null) {
      this.#connect();
    }
  }

  /**
   * GRAB_JOB_UNIQ (GRAB_JOB where the server knows no other). Only from READY or SLEEPING (a probe
   * re-grab); the slot guarantees one grab at a time.
   */
  grab(): void {
    this.#transition(S.GRABBING);
    (this.#socket as net.Socket).write(this.#grabPacket());
  }

  /** The GRAB to write now, noted as outstanding. */
  #grabPacket(): Buffer {
    const packet = this.serverState.grabPacket;
    this.#grabSentAt = Date.now();
    this.#grabAbandoned = false;
    this.#echoBehindGrab = false;
    this.#grabUnique = this.serverState.uniqueGrabs;
    return packet;
  }

  /** The functions this connection registers. */
  get functions(): readonly string[] {
    return this.#abilities.functions;
  }

  /**
   * Changes the registered functions at runtime: CAN_DO for the new ones now, CANT_DO for the dropped
   * ones as soon as no job of theirs can be on this socket (abilities.ts). A reconnect registers the
   * current set. `grouped` false: the functions differ from the rest of its WakeGroup, so it can
   * neither park (nobody asleep would hear of its work) nor stand in as the group's sleeper.
   */
  setAbilities(functions: readonly string[], grouped: boolean): void {
    const state = this.#state;
    const registered = this.connected || state === S.HANDSHAKE;
    const canDo = this.#abilities.change(functions);
    if (registered) {
      // A sleeper is NOOPed only for work queued after its PRE_SLEEP: it must say it again for the new functions.
      const preSleep = canDo !== null && state === S.SLEEPING ? PRE_SLEEP_PACKET : null;
      const packets = concatPackets(canDo, this.#owedCantDo(), preSleep);
      if (packets !== null) (this.#socket as net.Socket).write(packets);
    }
    const wasGrouped = this.#grouped;
    this.#grouped = grouped;
    if (grouped || !wasGrouped || this.#wakeGroup === null) return;
    if (state === S.PARKED) this.unpark();
    else if (state === S.SLEEPING) this.#wakeGroup.leave(this, false);
  }

  /** The CANT_DOs that may go out now: none while a GRAB may still assign anything, none for a held job's function. */
  #owedCantDo(): Buffer | null {
    if (!this.#abilities.owing || this.#state === S.GRABBING) return null;
    return this.#abilities.takeCantDo(this.#state === S.RUNNING ? this.#heldFunction : null);
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

  /** PRE_SLEEP (after `before`, in the same write): gearmand NOOPs this connection when work for it is (or already was) queued. */
  #preSleep(before: Buffer | null = null): void {
    (this.#socket as net.Socket).write(before === null ? PRE_SLEEP_PACKET : Buffer.concat([before, PRE_SLEEP_PACKET]));
    this.#transition(S.SLEEPING);
  }

  /** ECHO_REQ: a liveness probe that cannot cause an assignment. */
  echo(): void {
    if (!this.connected) return;
    if (this.#state === S.GRABBING) this.#echoBehindGrab = true;
    (this.#socket as net.Socket).write(encodeEchoReq(ECHO_PAYLOAD));
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
    this.#answerUnconfirmed = true;
    // After the answer and before any next GRAB: the CANT_DOs this job held back.
    const then = concatPackets(this.#abilities.takeCantDo(), grabAfter ? this.#grabPacket() : null);
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
    if (state === S.CONNECTING || state === S.HANDSHAKE) {
      // A SYN into a black hole never errors by itself; a stopped server accepts in the kernel and says nothing.
      const timeoutMs = connectTimeoutMs(this.#loopTimeoutMs);
      if (now - this.#connectStartedAt >= timeoutMs) {
        const what = state === S.CONNECTING ? 'connect to' : 'handshake (ECHO_REQ) with';
        this.#fail(new GearmanConnectionError(`${what} ${this.server.label} timed out after ${timeoutMs} ms`));
      }
      return;
    }
    if (!this.connected) return;
    if (state === S.GRABBING && !this.#grabAbandoned) {
      const suspect = this.serverState.suspect;
      if (suspect || now - this.#grabSentAt >= this.#grabReplyTimeoutMs) {
        if (!suspect) this.serverState.markSuspect(this.#grabReplyTimeoutMs);
        this.#grabAbandoned = true;
        this.#owner.onGrabAbandoned(this);
      }
    }
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
    if (socket === null || this.#state === S.CONNECTING || this.#state === S.HANDSHAKE || this.#state === S.BACKOFF) {
      if (socket !== null) detachSocket(socket).destroy();
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
    if (!CONNECTION_TRANSITIONS[previous].includes(next)) {
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
    const socket = openGearmanSocket(this.server, Math.max(1000, this.#loopTimeoutMs), (bytes) => {
      this.#rxSeen = true;
      this.#parser.push(bytes);
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
    socket.write(Buffer.concat([this.#abilities.register(this.#clientId), encodeEchoReq(ECHO_PAYLOAD)]));
    this.#transition(S.HANDSHAKE);
  }

  /** The handshake's ECHO_RES: alive and registered. */
  #onHandshake(): void {
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
    this.serverState.heard();
    if (packet.magic !== 'RES') {
      this.#log.warn({ server: this.server.label, packet: packetTypeName(packet.type) }, 'ignoring a request packet from gearmand');
      return;
    }
    // A well-formed answer proves the server works: later failures start the backoff afresh. Not an
    // ERROR: a server that keeps refusing us must not be retried at full speed.
    if (packet.type !== PacketType.ERROR) {
      this.#attempt = 0;
      this.#answerUnconfirmed = false;
    }
    switch (packet.type) {
      case PacketType.NO_JOB: {
        if (this.#state !== S.GRABBING) return this.#unexpected(packet);
        const cantDo = this.#abilities.takeCantDo();
        if (!this.#grouped || this.#wakeGroup === null || this.#wakeGroup.admit(this)) {
          this.#preSleep(cantDo);
        } else {
          if (cantDo !== null) (this.#socket as net.Socket).write(cantDo);
          this.#transition(S.PARKED);
        }
        this.#owner.onNoJob(this);
        return;
      }
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
        const args = packet.args;
        const handle = args[0] as Buffer;
        const functionName = (args[1] as Buffer).toString('utf8');
        if (!this.#takeAssignment(handle, functionName)) return;
        const uniq = packet.type === PacketType.JOB_ASSIGN_UNIQ;
        // JOB_ASSIGN (the answer to GRAB_JOB) carries no unique: the endpoint gets an empty one.
        const unique = uniq ? (args[2] as Buffer) : EMPTY;
        const job: Job = {
          handle,
          handleText: handle.toString('latin1'),
          functionName,
          functionBytes: args[1] as Buffer,
          unique,
          uniqueText: unique.toString('utf8'),
          workload: args[uniq ? 3 : 2] as Buffer,
          server: this.server.label,
        };
        this.#owner.onJobAssigned(this, job, this.#epoch);
        return;
      }
      case PacketType.ECHO_RES:
        if (this.#state === S.HANDSHAKE) {
          this.#onHandshake();
        } else if (this.#state === S.GRABBING && this.#echoBehindGrab) {
          // gearmand answers in order: the GRAB before this ECHO_REQ will never be answered.
          this.#fail(new GearmanConnectionError(`${this.server.label} answered an ECHO_REQ but not the GRAB sent before it`));
        }
        return;
      case PacketType.ERROR:
        return this.#onError(packet);
      default:
        return this.#unexpected(packet);
    }
  }

  /**
   * An assignment arrived: checks it answers our GRAB (one the slot gave up on goes to adoptLateJob)
   * and makes the connection RUNNING. False: the connection was dropped instead.
   */
  #takeAssignment(handle: Buffer, functionName: string): boolean {
    if (this.#state !== S.GRABBING) {
      // An assignment we did not ask for would break one-job-per-slot: drop the socket so
      // gearmand re-queues it.
      this.#fail(new GearmanConnectionError(`${this.server.label} assigned a job without a grab`));
      return false;
    }
    if (this.#grabAbandoned) {
      this.#grabAbandoned = false;
      if (!this.#owner.adoptLateJob(this, functionName, handle.toString('latin1'))) {
        // Dropping the socket without an answer makes gearmand re-queue the job, unfailed.
        this.#lost(new GearmanConnectionError(`${this.server.label} answered a GRAB after the slot had moved on`), 0);
        return false;
      }
    }
    this.#errorFailures = 0;
    this.#heldFunction = functionName;
    this.#transition(S.RUNNING);
    const cantDo = this.#abilities.takeCantDo(functionName);
    if (cantDo !== null) (this.#socket as net.Socket).write(cantDo);
    // Before the job starts: a parked connection should already be grabbing the next one.
    this.#wakeGroup?.assigned();
    return true;
  }

  /**
   * ERROR. Answering GRAB_JOB_UNIQ (nothing else awaits an answer): the server knows GRAB_JOB only
   * (the Perl Gearman::Server), so grab with that. Answering a progress packet or a job's result (the Perl server knows no
   * WORK_DATA or WORK_WARNING): the job goes on; a reconnect would only make gearmand re-queue it
   * and run it again. Anything else leaves the protocol state unknown: reconnect, backing off.
   */
  #onError(packet: Packet): void {
    const code = JSON.stringify((packet.args[0] as Buffer).toString('latin1').slice(0, 64));
    const text = JSON.stringify((packet.args[1] as Buffer).toString('utf8').slice(0, 200));
    const error = new GearmanServerError(`${this.server.label} sent ERROR ${code}: ${text}`);
    const state = this.#state;
    if (state === S.GRABBING && this.#grabUnique && !this.#answerUnconfirmed) {
      this.serverState.noUniqueGrabs(error);
      const abandoned = this.#grabAbandoned;
      (this.#socket as net.Socket).write(this.#grabPacket());
      this.#grabAbandoned = abandoned;
      return;
    }
    if (state === S.RUNNING || this.#answerUnconfirmed) {
      if (!this.#workErrorLogged) {
        this.#workErrorLogged = true;
        this.#log.warn({ server: this.server.label, err: error }, 'gearmand refused a progress packet or result with ERROR; the job goes on (further ones are logged at debug)');
      } else if (this.#log.debug()) {
        this.#log.debug({ server: this.server.label, err: error }, 'gearmand refused a progress packet or result');
      }
      return;
    }
    this.#attempt = Math.max(this.#attempt, this.#errorFailures++);
    this.#fail(error);
  }

  /** An assignment whose workload the parser dropped: the same checks and state change as for a job. */
  #onOversizedPacket(packet: OversizedPacket): void {
    this.serverState.heard();
    this.#attempt = 0;
    if (packet.magic !== 'RES') {
      this.#log.warn({ server: this.server.label, packet: packetTypeName(packet.type) }, 'ignoring a request packet from gearmand');
      return;
    }
    const handle = packet.args[0] as Buffer;
    const functionName = (packet.args[1] as Buffer).toString('utf8');
    if (!this.#takeAssignment(handle, functionName)) return;
    this.#owner.onOversizedJob(this, handle, functionName, packet.workloadSize, this.#epoch);
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
      if (this.#socket !== null) detachSocket(this.#socket).destroy();
      this.#socket = null;
      this.#finishClose();
      return;
    }
    const wasConnected = this.connected;
    // Held progress of a job gearmand re-queues (lost, or dropped on purpose) is not sent anywhere.
    this.#progress?.discard();
    this.#progress = null;
    if (this.#socket !== null) detachSocket(this.#socket).destroy();
    this.#socket = null;
    this.#parser.reset();
    this.#abilities.unregistered();
    this.#heldFunction = null;
    this.#grabAbandoned = false;
    this.#answerUnconfirmed = false;
    this.#transition(S.BACKOFF);
    // A GRAB outstanding here was how its WakeGroup would hear of queued work: someone else listens now.
    if (state === S.GRABBING) this.#wakeGroup?.listenerLost();
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

}

const EMPTY = Buffer.alloc(0);
