/**
 * One TCP connection of one slot to one gearmand, as a Gearman worker (docs/architecture.md, Lifecycles):
 * grabs, sleeping or parking after NO_JOB, the job an assignment brings, its answer and progress
 * packets, the functions registered, ERROR packets. Its GearmanLink keeps the socket open (connect,
 * handshake, reconnects, close) and holds the state, whose moves connection-state.ts lists; its
 * ConnectionLiveness notices a server that stopped answering. It grabs only when its slot says so
 * (connection-owner.ts says why).
 *
 * After NO_JOB the connection's WakeGroup (one per server for the slots of a pool) decides whether
 * it sleeps at gearmand (PRE_SLEEP) or parks locally: see wake-group.ts for why only one sleeps.
 * A GRAB the slot gave up on (abandoned) stays outstanding here: its late job goes to the slot if it
 * is free, else the socket is dropped so gearmand re-queues the job.
 *
 * Abilities change at runtime (setAbilities); a CANT_DO never reaches gearmand while this socket
 * holds, or may be assigned, a job of that function (abilities.ts says why).
 */
import type net from 'node:net';
import type { ServerAddress } from '../../config/types.js';
import { DEFAULT_MAX_PACKET_SIZE, PRE_SLEEP_PACKET, PacketType, encodeEchoReq, packetTypeName } from '../../codec/index.js';
import type { OversizedPacket, Packet } from '../../codec/index.js';
import { GearmanConnectionError, GearmanServerError } from '../../errors.js';
import type { Logger } from '../../log/logger.js';
import type { AnswerOutcome, ProgressUpdate } from '../job.js';
import { Abilities, concatPackets } from './abilities.js';
import { ConnectionLiveness, LIVENESS_ECHO } from './connection-liveness.js';
import type { ConnectionOwner } from './connection-owner.js';
import { ConnectionState } from './connection-state.js';
import { GearmanLink } from './gearman-link.js';
import type { ProgressReader } from './progress-throttle.js';
import { SocketJob, jobFromAssignment } from './socket-job.js';
import { ServerState } from './server-state.js';
import type { WakeGroup, WakeMember } from './wake-group.js';

export { BACKOFF_BASE_MS, BACKOFF_MAX_MS, ConnectionState, backoffDelay, grabReplyTimeoutMs } from './connection-state.js';

const S = ConnectionState;

export interface GearmanConnectionOptions {
  server: ServerAddress;
  /** SET_CLIENT_ID: the slot id, shown by gearmand's `workers` admin command. */
  clientId: string;
  functions: readonly string[];
  loopTimeoutMs: number;
  owner: ConnectionOwner<GearmanConnection>;
  log: Logger;
  /** Shared by the pool's connections to this server; without one the connection always sleeps. */
  wakeGroup?: WakeGroup;
  /** What the pool knows about this server (suspect, which GRAB); without one the connection keeps its own. */
  serverState?: ServerState;
  /** max_workload_bytes: a bigger workload is never buffered (onOversizedJob); 0 or absent: the codec's packet cap,
   * so a job too big for it fails the same way instead of resetting the connection (gearmand would re-assign it, forever). */
  maxWorkloadBytes?: number;
}

export class GearmanConnection implements WakeMember {
  readonly server: ServerAddress;
  /** The workload size above which an assignment goes to onOversizedJob. */
  readonly maxWorkloadBytes: number;
  readonly serverState: ServerState;
  readonly #owner: ConnectionOwner<GearmanConnection>;
  readonly #wakeGroup: WakeGroup | null;
  readonly #log: Logger;
  /** The functions registered (CAN_DO) and the CANT_DOs still owed to the current socket. */
  readonly #abilities: Abilities;
  readonly #liveness: ConnectionLiveness;
  /** The socket and the state. */
  readonly #link: GearmanLink;
  readonly #job = new SocketJob();
  /** Same functions as the rest of its WakeGroup: may park. Otherwise it always sleeps at gearmand itself. */
  #grouped = true;

  constructor(options: GearmanConnectionOptions) {
    this.server = options.server;
    this.#owner = options.owner;
    this.#wakeGroup = options.wakeGroup ?? null;
    this.#log = options.log;
    this.#abilities = new Abilities(options.functions);
    this.serverState = options.serverState ?? new ServerState(options.server.label, options.log);
    this.maxWorkloadBytes = options.maxWorkloadBytes !== undefined && options.maxWorkloadBytes > 0 ? options.maxWorkloadBytes : DEFAULT_MAX_PACKET_SIZE;
    this.#liveness = new ConnectionLiveness(this.serverState, options.loopTimeoutMs, {
      dead: (error) => this.#link.fail(error),
      grabAbandoned: () => this.#owner.onGrabAbandoned(this),
      probe: () => this.#owner.onProbe(this),
    });
    this.#link = new GearmanLink({
      server: options.server,
      loopTimeoutMs: options.loopTimeoutMs,
      maxWorkloadBytes: this.maxWorkloadBytes,
      log: options.log,
      serverState: this.serverState,
      liveness: this.#liveness,
      events: {
        register: () => this.#abilities.register(options.clientId),
        up: () => this.#owner.onConnectionUp(this),
        packet: (packet) => this.#onPacket(packet),
        oversizedPacket: (packet) => this.#onOversizedPacket(packet),
        moved: (previous, next) => this.#moved(previous, next),
        releasing: () => this.#releasing(),
        down: (error, previous) => this.#down(error, previous),
      },
    });
  }

  get state(): ConnectionState {
    return this.#link.state;
  }

  /** Registered with gearmand (the status' connectedServers counts these). */
  get connected(): boolean {
    return this.#link.connected;
  }

  start(): void {
    this.#link.start();
  }

  /**
   * GRAB_JOB_UNIQ (GRAB_JOB where the server knows no other). Only from READY or SLEEPING (a probe
   * re-grab); the slot guarantees one grab at a time.
   */
  grab(): void {
    this.#link.transition(S.GRABBING);
    this.#write(this.#grabPacket());
  }

  /** The GRAB to write now, noted as outstanding. */
  #grabPacket(): Buffer {
    this.#liveness.grabSent(this.serverState.uniqueGrabs);
    return this.serverState.grabPacket;
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
    const state = this.#link.state;
    const registered = this.connected || state === S.HANDSHAKE;
    const canDo = this.#abilities.change(functions);
    if (registered) {
      // A sleeper is NOOPed only for work queued after its PRE_SLEEP: it must say it again for the new functions.
      const preSleep = canDo !== null && state === S.SLEEPING ? PRE_SLEEP_PACKET : null;
      const packets = concatPackets(canDo, this.#owedCantDo(), preSleep);
      if (packets !== null) this.#write(packets);
    }
    const wasGrouped = this.#grouped;
    this.#grouped = grouped;
    if (grouped || !wasGrouped || this.#wakeGroup === null) return;
    if (state === S.PARKED) this.unpark();
    else if (state === S.SLEEPING) this.#wakeGroup.leave(this, false);
  }

  /** A CANT_DO is owed and a GRAB outstanding holds it back: its answer may still be a job of a dropped function. */
  get cantDoBehindGrab(): boolean {
    return this.#abilities.owing && this.#link.state === S.GRABBING;
  }

  /** The CANT_DOs that may go out now: none while a GRAB may still assign anything, none for a held job's function. */
  #owedCantDo(): Buffer | null {
    const state = this.#link.state;
    if (!this.#abilities.owing || state === S.GRABBING) return null;
    return this.#abilities.takeCantDo(state === S.RUNNING ? this.#job.functionName : null);
  }

  /** WakeMember: whether the slot would grab here now. */
  get slotCanGrab(): boolean {
    return this.#owner.canGrab();
  }

  /** WakeMember: the group hands this parked connection the news that work may be queued. */
  unpark(): void {
    if (this.#link.state !== S.PARKED) return;
    this.#link.transition(S.READY);
    this.#owner.onWake(this);
  }

  /** WakeMember: the group makes this parked connection its sleeper. */
  sleep(): boolean {
    if (this.#link.state !== S.PARKED) return false;
    this.#preSleep();
    return true;
  }

  /** PRE_SLEEP (after `before`, in the same write): gearmand NOOPs this connection when work for it is (or already was) queued. */
  #preSleep(before: Buffer | null = null): void {
    this.#write(before === null ? PRE_SLEEP_PACKET : Buffer.concat([before, PRE_SLEEP_PACKET]));
    this.#link.transition(S.SLEEPING);
  }

  /** ECHO_REQ: a liveness probe that cannot cause an assignment. */
  echo(): void {
    if (!this.connected) return;
    this.#liveness.echoSent(this.#link.state === S.GRABBING);
    this.#write(encodeEchoReq(LIVENESS_ECHO));
  }

  /** Whether the socket that assigned a job (its epoch) is still the live one, holding that job. */
  holdsJob(epoch: number): boolean {
    return epoch === this.#link.epoch && this.#link.state === S.RUNNING;
  }

  /**
   * A progress line of the running job (WORK_STATUS, WORK_DATA, WORK_WARNING) for the socket that
   * assigned it, throttled and bounded (progress-throttle.ts): `reader` is paused while gearmand is
   * behind. False (nothing sent) when that socket is gone or no longer holds the job.
   */
  sendProgress(epoch: number, handle: Buffer, update: ProgressUpdate, reader: ProgressReader): boolean {
    if (!this.holdsJob(epoch)) return false;
    this.#job.progress(this.#link.socket as net.Socket, handle, update, reader, () => this.holdsJob(epoch));
    return true;
  }

  /**
   * Sends a job's outcome (WORK_COMPLETE with the result, WORK_EXCEPTION, or WORK_FAIL) on the socket
   * that assigned the job, then — when `grabAfter` — the next GRAB_JOB_UNIQ in the same write: one
   * syscall and one gearmand wake-up per job on the hot path. Returns false (and sends nothing) when
   * that socket is gone: gearmand has re-queued the job, so no answer is owed.
   */
  finishJob(epoch: number, handle: Buffer, outcome: AnswerOutcome, grabAfter: boolean): boolean {
    if (!this.holdsJob(epoch)) return false;
    const socket = this.#link.socket as net.Socket;
    this.#link.transition(grabAfter ? S.GRABBING : S.READY);
    // After the answer and before any next GRAB: the CANT_DOs this job held back.
    const then = concatPackets(this.#abilities.takeCantDo(), grabAfter ? this.#grabPacket() : null);
    this.#job.answer(socket, handle, outcome, then, this.serverState.exceptionEndsJob);
    return true;
  }

  /**
   * gearman_ret 14: drop this socket without answering so gearmand re-queues the job, then reconnect
   * at once (a deliberate drop is not a failure, so no backoff).
   */
  drop(epoch: number, reason: string): boolean {
    if (!this.holdsJob(epoch)) return false;
    this.#link.lost(new GearmanConnectionError(reason), 0);
    return true;
  }

  /** Liveness check (connection-liveness.ts); `now` is Date.now() sampled once per tick by the pool. */
  tick(now: number): void {
    this.#liveness.tick(now, this.#link.state);
  }

  /**
   * Graceful: pending writes (a final WORK_FAIL) are flushed, then FIN; gearmand re-queues anything
   * it assigned that we did not answer. Memoised and idempotent.
   */
  close(): Promise<void> {
    return this.#link.close();
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  #write(bytes: Buffer): void {
    (this.#link.socket as net.Socket).write(bytes);
  }

  #moved(previous: ConnectionState, next: ConnectionState): void {
    if (previous === S.RUNNING) this.#liveness.jobEnded(Date.now());
    // Leaving the group's view. A NOOP (sleeping → ready) reports after the slot had its chance to
    // grab (see #onPacket), because whether the group must wake a stand-in depends on that.
    if ((previous === S.SLEEPING && next !== S.READY) || previous === S.PARKED) {
      this.#wakeGroup?.leave(this, next === S.GRABBING);
    }
  }

  /** The socket is about to go: whatever it carried goes with it. */
  #releasing(): void {
    this.#job.released();
    this.#abilities.unregistered();
    this.#liveness.grabSettled();
  }

  #down(error: Error, previous: ConnectionState): void {
    // A GRAB outstanding here was how its WakeGroup would hear of queued work: someone else listens now.
    if (previous === S.GRABBING) this.#wakeGroup?.listenerLost();
    this.#owner.onConnectionDown(this, error);
  }

  /** An answer from gearmand (the link has seen to the handshake and to request packets). */
  #onPacket(packet: Packet): void {
    if (packet.type !== PacketType.ERROR) this.#job.confirmed();
    const state = this.#link.state;
    switch (packet.type) {
      case PacketType.NO_JOB: {
        if (state !== S.GRABBING) return this.#unexpected(packet);
        const cantDo = this.#abilities.takeCantDo();
        if (!this.#grouped || this.#wakeGroup === null || this.#wakeGroup.admit(this)) {
          this.#preSleep(cantDo);
        } else {
          if (cantDo !== null) this.#write(cantDo);
          this.#link.transition(S.PARKED);
        }
        this.#owner.onNoJob(this);
        return;
      }
      case PacketType.NOOP:
        // A NOOP outside SLEEPING is a stale wake-up (e.g. it crossed a probe re-grab): harmless,
        // because gearmand answers PRE_SLEEP with a NOOP whenever work is already waiting.
        if (state !== S.SLEEPING) return;
        this.#link.transition(S.READY);
        this.#owner.onWake(this);
        // (the owner may have grabbed here)
        this.#wakeGroup?.leave(this, this.#link.state === S.GRABBING);
        return;
      case PacketType.JOB_ASSIGN_UNIQ:
      case PacketType.JOB_ASSIGN: {
        const handle = packet.args[0] as Buffer;
        const functionName = (packet.args[1] as Buffer).toString('utf8');
        if (!this.#takeAssignment(handle, functionName)) return;
        this.#owner.onJobAssigned(this, jobFromAssignment(packet, this.server.label, handle, functionName), this.#link.epoch);
        return;
      }
      case PacketType.ECHO_RES:
        if (state === S.GRABBING && this.#liveness.grabOvertaken) {
          // gearmand answers in order: the GRAB before this ECHO_REQ will never be answered.
          this.#link.fail(new GearmanConnectionError(`${this.server.label} answered an ECHO_REQ but not the GRAB sent before it`));
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
    if (this.#link.state !== S.GRABBING) {
      // An assignment we did not ask for would break one-job-per-slot: drop the socket so
      // gearmand re-queues it.
      this.#link.fail(new GearmanConnectionError(`${this.server.label} assigned a job without a grab`));
      return false;
    }
    if (this.#liveness.grabAbandoned) {
      this.#liveness.grabSettled();
      if (!this.#owner.adoptLateJob(this, functionName, handle.toString('latin1'))) {
        // Dropping the socket without an answer makes gearmand re-queue the job, unfailed.
        this.#link.lost(new GearmanConnectionError(`${this.server.label} answered a GRAB after the slot had moved on`), 0);
        return false;
      }
    }
    this.#link.jobArrived();
    this.#job.assigned(functionName);
    this.#link.transition(S.RUNNING);
    const cantDo = this.#abilities.takeCantDo(functionName);
    if (cantDo !== null) this.#write(cantDo);
    // Before the job starts: a parked connection should already be grabbing the next one.
    this.#wakeGroup?.assigned(this);
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
    const state = this.#link.state;
    if (state === S.GRABBING && this.#liveness.grabUnique && !this.#job.answerUnconfirmed) {
      this.serverState.noUniqueGrabs(error);
      this.#liveness.grabResent(this.serverState.uniqueGrabs);
      this.#write(this.serverState.grabPacket);
      return;
    }
    if (state === S.RUNNING || this.#job.answerUnconfirmed) {
      this.#job.refused(error, this.server.label, this.#log);
      return;
    }
    this.#link.refused(error);
  }

  /** An assignment whose workload the parser dropped: the same checks and state change as for a job. */
  #onOversizedPacket(packet: OversizedPacket): void {
    const handle = packet.args[0] as Buffer;
    const functionName = (packet.args[1] as Buffer).toString('utf8');
    if (!this.#takeAssignment(handle, functionName)) return;
    this.#owner.onOversizedJob(this, handle, functionName, packet.workloadSize, this.#link.epoch);
  }

  #unexpected(packet: Packet): void {
    if (this.#log.debug()) {
      this.#log.debug({ server: this.server.label, packet: packetTypeName(packet.type), state: this.#link.state }, 'ignoring an unexpected packet');
    }
  }
}
