/**
 * A slot: one logical Gearman worker (the original's "thread"), one GearmanConnection per server,
 * at most ONE job at a time across all of them (docs/architecture.md, Lifecycles). The slot schedules
 * grabs and holds the job on the socket that assigned it; what happens to the job (attempts, retries,
 * hand-backs, dead letters) is the pool's Delivery's business.
 *
 * Grab strategy: at most one GRAB_JOB_UNIQ is outstanding per slot, and none while a job is held, so
 * an assignment can never arrive that the slot cannot take (gearmand offers no way to refuse one).
 * Connections that may have work (just registered, woken by NOOP, or just finished a job) are READY;
 * the slot grabs on them one at a time, in the order of grab-rotation.ts. NO_JOB puts a connection to
 * sleep (PRE_SLEEP) or parks it (its WakeGroup decides, see wake-group.ts) and the slot moves on to
 * the next READY one; a sleeping or parked connection costs nothing until it is woken.
 *
 * A hung server must not hold the slot: a GRAB unanswered for the grab-reply timeout is abandoned
 * (the slot gives its permit back and grabs elsewhere; server-state.ts). If it brings a job after all,
 * the slot takes it when free; else gearmand gets it back (counted as jobs_returned).
 *
 * The job is answered on the connection (and the very socket) that assigned it; if that socket died
 * meanwhile gearmand has re-queued the job and the outcome is dropped.
 */
import { ShuttingDownError } from '../errors.js';
import type { SlotStatus } from '../ipc/messages.js';
import type { Logger } from '../log/logger.js';
import type { AdmissionGate, GateWaiter } from './admission-gate.js';
import type { DeliveredJob, JobHolder } from './delivery/delivered-job.js';
import type { Delivery } from './delivery/delivery.js';
import { ConnectionState, GearmanConnection } from './gearman/gearman-connection.js';
import type { ConnectionOwner } from './gearman/connection-owner.js';
import type { SuspectWaiter } from './gearman/server-state.js';
import { GrabRotation } from './grab-rotation.js';
import { GraceTimer } from './grace-timer.js';
import type { SlotOptions } from './slot-options.js';
import type { AnswerOutcome, Job, ProgressUpdate } from './job.js';

export class Slot implements ConnectionOwner<GearmanConnection>, JobHolder, GateWaiter, SuspectWaiter {
  readonly id: string;
  readonly #gate: AdmissionGate;
  readonly #delivery: Delivery;
  readonly #log: Logger;
  readonly #onJobReturned: (() => void) | undefined;
  readonly #connections: GearmanConnection[];
  readonly #rotation: GrabRotation;
  #grabbing: GearmanConnection | null = null;
  #job: DeliveredJob | null = null;
  /** The connection, and its socket (epoch), that assigned the held job. */
  #jobConnection: GearmanConnection | null = null;
  #jobEpoch = 0;
  /** The held job's socket is up (it is RUNNING there): that connection needs no liveness tick. */
  #jobLive = false;
  /** Holds one of the gate's permits: from a grab until NO_JOB or the job's end. */
  #permit = false;
  /** A job came with the permit: its rate token is spent (a permit given back unused returns it). */
  #permitUsed = false;
  #stopping = false;
  /** Once stopping, how long a running job may still take. */
  readonly #grace = new GraceTimer();
  #closed: Promise<void> | null = null;
  #resolveStopped: (() => void) | null = null;
  readonly #stopped: Promise<void>;

  constructor(options: SlotOptions) {
    this.id = options.id;
    this.#gate = options.gate;
    this.#delivery = options.delivery;
    this.#log = options.log;
    this.#onJobReturned = options.onJobReturned;
    this.#connections = options.servers.map((server, index) => {
      const wakeGroup = options.wakeGroups?.[index];
      const serverState = options.serverStates?.[index];
      return new GearmanConnection({
        server,
        clientId: options.id,
        functions: options.functions,
        loopTimeoutMs: options.loopTimeoutMs,
        owner: this,
        log: options.log,
        maxWorkloadBytes: options.maxWorkloadBytes,
        ...(wakeGroup === undefined ? {} : { wakeGroup }),
        ...(serverState === undefined ? {} : { serverState }),
      });
    });
    this.#rotation = new GrabRotation(this.#connections);
    this.#stopped = new Promise<void>((resolve) => {
      this.#resolveStopped = resolve;
    });
  }

  start(): void {
    for (const connection of this.#connections) connection.start();
  }

  /**
   * Changes the functions every connection of the slot registers (gearman-connection.ts, setAbilities):
   * `grouped` false when they differ from the other slots' of this generation.
   */
  setAbilities(functions: readonly string[], grouped: boolean): void {
    for (const connection of this.#connections) connection.setAbilities(functions, grouped);
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** No job held (scale-down stops these first). */
  get idle(): boolean {
    return this.#job === null;
  }

  /** A GRAB the slot waits for is outstanding: its answer may bring a job. */
  get grabbing(): boolean {
    return this.#grabbing !== null;
  }

  /** A connection's GRAB outstanding may still bring a job of a function the slot no longer registers. */
  get cantDoBehindGrab(): boolean {
    return this.#connections.some((connection) => connection.cantDoBehindGrab);
  }

  get connectedServers(): number {
    let n = 0;
    for (const connection of this.#connections) if (connection.connected) n++;
    return n;
  }

  /** @internal For tests: the connections' states. */
  get connectionStates(): ConnectionState[] {
    return this.#connections.map((c) => c.state);
  }

  status(): SlotStatus {
    return {
      id: this.id,
      stopping: this.#stopping,
      job: this.#job?.status() ?? null,
      connectedServers: this.connectedServers,
      connections: this.#connections.map((c) => ({ server: c.server.label, state: c.state, connected: c.connected })),
    };
  }

  /** The job's connection is not ticked: its quiet starts when the job ends (connection-liveness.ts, jobEnded; why: docs/performance.md). */
  tick(now: number): void {
    const running = this.#jobLive ? this.#jobConnection : null;
    for (const connection of this.#connections) if (connection !== running) connection.tick(now);
  }

  /**
   * Graceful stop: no more grabs; a running job may finish for up to `graceMs`, then it gets WORK_FAIL;
   * then every connection closes. Resolves when all are closed. Calling again can only shorten the grace.
   */
  stop(graceMs: number): Promise<void> {
    const first = !this.#stopping;
    this.#stopping = true;
    this.#gate.forget(this);
    for (const connection of this.#connections) connection.serverState.forget(this);
    // A job waiting for its next attempt goes back to gearmand unfailed, to another worker.
    this.#job?.slotStopping();
    if (this.#job === null) {
      this.#closeAll();
    } else if (graceMs <= 0) {
      this.#abortJob('the slot was destroyed');
    } else {
      this.#grace.arm(graceMs, () => {
        this.#abortJob(`the slot was stopped and the job did not finish within ${graceMs} ms`);
      });
    }
    if (first && this.#log.debug()) this.#log.debug({ graceMs, busy: this.#job !== null }, 'slot stopping');
    return this.#stopped;
  }

  /** Resolves once the slot was stopped and every connection is closed. */
  get stopped(): Promise<void> {
    return this.#stopped;
  }

  /** Hard stop: WORK_FAIL the running job now, close. */
  destroy(): Promise<void> {
    return this.stop(0);
  }

  // ── ConnectionOwner ────────────────────────────────────────────────────────────────────────────

  onConnectionUp(): void {
    this.#schedule();
  }

  onConnectionDown(connection: GearmanConnection): void {
    if (this.#grabbing === connection) {
      this.#grabbing = null;
      this.#releasePermit();
    }
    if (this.#jobConnection === connection) this.#jobLive = false;
    if (this.#job !== null && this.#jobConnection === connection) this.#job.connectionLost();
    this.#schedule();
  }

  onJobAssigned(connection: GearmanConnection, job: Job, epoch: number): void {
    this.#assigned(connection, epoch);
    const held = this.#delivery.accept(job, this, this.#log);
    this.#job = held;
    held.start();
  }

  /**
   * An assigned job's workload is over max_workload_bytes and was dropped unread. The job fails at
   * once, without an HTTP request, and the slot grabs on as after any finished job.
   */
  onOversizedJob(connection: GearmanConnection, handle: Buffer, functionName: string, workloadBytes: number, epoch: number): void {
    this.#assigned(connection, epoch);
    const outcome = this.#delivery.failUnread(connection.server.label, handle.toString('latin1'), functionName, workloadBytes, connection.maxWorkloadBytes);
    this.#sendAndGrabNext(connection, epoch, handle, outcome);
    this.#afterJob();
  }

  onNoJob(connection: GearmanConnection): void {
    if (this.#grabbing === connection) {
      this.#grabbing = null;
      this.#releasePermit();
    }
    this.#schedule();
  }

  onWake(): void {
    this.#schedule();
  }

  onGrabAbandoned(connection: GearmanConnection): void {
    if (this.#grabbing !== connection) return;
    this.#grabbing = null;
    this.#releasePermit();
    this.#schedule();
  }

  adoptLateJob(connection: GearmanConnection, functionName: string, handle: string): boolean {
    if (this.canGrab() && this.#takePermit()) {
      this.#grabbing = connection;
      return true;
    }
    this.#log.info(
      { server: connection.server.label, function: functionName, handle },
      'a GRAB answered after the slot had moved on brought a job the slot cannot take: returned to gearmand, which re-queues it',
    );
    this.#onJobReturned?.();
    return false;
  }

  onProbe(connection: GearmanConnection): void {
    // A re-grab also catches a lost wake-up (gearmand sends one NOOP and suppresses repeats, #343);
    // it is only allowed when the slot could take a job, and not on a suspect server. Otherwise
    // ECHO_REQ proves the socket.
    if (connection.state === ConnectionState.SLEEPING && !connection.serverState.suspect && this.canGrab() && this.#takePermit()) {
      this.#grabbing = connection;
      connection.grab();
    } else {
      connection.echo();
    }
  }

  /** ConnectionOwner: no job, no grab outstanding, not stopping, and the gate would admit one. */
  canGrab(): boolean {
    return !this.#stopping && this.#job === null && this.#grabbing === null && (this.#permit || this.#gate.admits);
  }

  // ── GateWaiter ────────────────────────────────────────────────────────────────────────────────────

  /** A permit may be free again, or a suspect server answers again: grab if there is a connection to grab on. */
  kick(): void {
    this.#schedule();
  }

  // ── JobHolder (the delivery, about the held job) ──────────────────────────────────────────────────

  holds(held: DeliveredJob): boolean {
    return this.#job === held && (this.#jobConnection as GearmanConnection).holdsJob(this.#jobEpoch);
  }

  progress(held: DeliveredJob, update: ProgressUpdate): void {
    if (this.#job !== held) return;
    (this.#jobConnection as GearmanConnection).sendProgress(this.#jobEpoch, held.job.handle, update, held);
  }

  answer(held: DeliveredJob, outcome: AnswerOutcome): boolean {
    if (this.#job !== held) return false;
    this.#job = null;
    const sent = this.#sendAndGrabNext(this.#jobConnection as GearmanConnection, this.#jobEpoch, held.job.handle, outcome);
    this.#afterJob();
    return sent;
  }

  release(held: DeliveredJob, reason: string): void {
    if (this.#job !== held) return;
    this.#job = null;
    // gearmand re-queues what a lost worker held; the connection reconnects at once.
    (this.#jobConnection as GearmanConnection).drop(this.#jobEpoch, reason);
    this.#afterJob();
  }

  forget(held: DeliveredJob): void {
    if (this.#job !== held) return;
    this.#job = null;
    this.#afterJob();
  }

  // ── internals ──────────────────────────────────────────────────────────────────────────────────

  /** A connection answered our grab with an assignment. */
  #assigned(connection: GearmanConnection, epoch: number): void {
    this.#grabbing = null;
    this.#permitUsed = true;
    this.#rotation.served(connection);
    this.#jobConnection = connection;
    this.#jobEpoch = epoch;
    this.#jobLive = true;
  }

  /**
   * Sends a job's answer on the socket that assigned it and, unless stopping, grabs the next job: on
   * the same connection in the same write when it is next in the round-robin. Returns false (nothing
   * sent) when that socket is gone: gearmand has re-queued the job.
   */
  #sendAndGrabNext(connection: GearmanConnection, epoch: number, handle: Buffer, outcome: AnswerOutcome): boolean {
    const live = connection.holdsJob(epoch);
    // The permit goes back and is taken again for the next grab: a ramping breaker may want it elsewhere.
    this.#releasePermit();
    let next = this.#stopping ? null : this.#rotation.next(live ? connection : null, this);
    if (next !== null && !this.#takePermit()) {
      this.#gate.wait(this);
      next = null;
    }
    const sent = live && connection.finishJob(epoch, handle, outcome, next === connection);
    if (next !== null) {
      this.#grabbing = next;
      if (next !== connection) next.grab();
    }
    return sent;
  }

  #takePermit(): boolean {
    if (this.#permit) return true;
    if (!this.#gate.acquire()) return false;
    this.#permit = true;
    this.#permitUsed = false;
    return true;
  }

  #releasePermit(): void {
    if (!this.#permit) return;
    this.#permit = false;
    this.#gate.release(!this.#permitUsed);
  }

  #afterJob(): void {
    this.#jobConnection = null;
    this.#jobLive = false;
    if (!this.#grabbing) this.#releasePermit();
    this.#grace.cancel();
    if (this.#stopping) this.#closeAll();
    else this.#schedule();
  }

  #abortJob(reason: string): void {
    this.#job?.abort(new ShuttingDownError(reason));
  }

  /** Grabs on the next READY connection if the slot may take a job. */
  #schedule(): void {
    if (this.#stopping || this.#job !== null || this.#grabbing !== null) return;
    const next = this.#rotation.next(null, this);
    if (next === null) return;
    if (!this.#takePermit()) {
      this.#gate.wait(this);
      return;
    }
    this.#grabbing = next;
    next.grab();
  }

  #closeAll(): void {
    if (this.#closed !== null) return;
    this.#releasePermit();
    this.#grace.cancel();
    this.#closed = Promise.all(this.#connections.map((c) => c.close())).then(() => {
      this.#resolveStopped?.();
      this.#resolveStopped = null;
      if (this.#log.debug()) this.#log.debug('slot stopped');
    });
  }
}
