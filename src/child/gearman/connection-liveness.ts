/**
 * How a GearmanConnection finds out that its server stopped answering (docs/architecture.md, Lifecycles):
 * the bookkeeping its `tick()` reads, driven by the pool's one interval timer.
 *
 * - A connect or handshake unanswered within connectTimeoutMs() fails: a SYN into a black hole never
 *   errors by itself, and a stopped server (the kernel still accepts TCP) never answers the handshake,
 *   so its reconnects back off instead of looking healthy.
 * - A GRAB unanswered for grabReplyTimeoutMs() is abandoned: the server turns suspect for the pool
 *   (server-state.ts) and the slot grabs elsewhere, while the GRAB stays outstanding on the connection.
 * - A connection that received nothing for loopTimeoutMs is probed (the owner chooses: a re-grab or an
 *   ECHO_REQ), and declared dead when the probe gets no answer within another loopTimeoutMs (gearmand
 *   issue #343, the stuck sleeper; issues #105/#150, dead peers). Not while it holds a job: gearmand
 *   owes it nothing then, and a slot cannot act on a dead socket before its job ends anyway (the
 *   answer and the next GRAB then go out, and that GRAB is watched). Behind a slow endpoint that is
 *   one ECHO_REQ round trip saved per job: a fifth of the daemon's CPU at 5,000 slots and loop_timeout
 *   1 s (bench/e2e slow5000; docs/performance.md).
 * - An ECHO_RES overtaking a GRAB sent before its ECHO_REQ means gearmand lost the GRAB: gearmand
 *   answers in order.
 *
 * Every verdict (a connect or handshake timed out, a GRAB abandoned, a probe unanswered) is judged at
 * the time of the previous tick, not at this one: the event loop has
 * polled the sockets since then, so an answer that sat unread while the loop was busy (thousands of
 * HTTP answers arriving at once, or the connect storm of thousands of slots) has been read. Judged at
 * the tick's own time, a loop busy for longer than a timeout took its own lag for a silent server:
 * 1,873 of 5,000 connects "timed out" at start-up, and a burst of answers marked gearmand suspect.
 */
import { GearmanConnectionError } from '../../errors.js';
import { ConnectionState, connectTimeoutMs, grabReplyTimeoutMs, isConnected } from './connection-state.js';
import type { ServerState } from './server-state.js';

const S = ConnectionState;

/** The ECHO_REQ payload of the handshake and of the probes. */
export const LIVENESS_ECHO = Buffer.from('driveshaft-liveness');

/** What the watch asks of its connection; each is called from tick(). */
export interface LivenessEvents {
  /** The connect, the handshake or a probe went unanswered: the connection is dead. */
  dead(error: Error): void;
  /** The outstanding GRAB went unanswered for the grab-reply timeout, or its server is suspect. */
  grabAbandoned(): void;
  /** Quiet for loopTimeoutMs: send a probe now. */
  probe(): void;
}

export class ConnectionLiveness {
  readonly #serverState: ServerState;
  readonly #events: LivenessEvents;
  readonly #loopTimeoutMs: number;
  readonly #grabReplyTimeoutMs: number;
  /** The previous tick's `now`: the time deadlines are judged at (see above); 0 before the first. */
  #lastTickAt = 0;
  /** Data seen since the last tick; when the quiet started; when the probe went out (0: none out). */
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

  constructor(serverState: ServerState, loopTimeoutMs: number, events: LivenessEvents) {
    this.#serverState = serverState;
    this.#events = events;
    this.#loopTimeoutMs = loopTimeoutMs;
    this.#grabReplyTimeoutMs = grabReplyTimeoutMs(loopTimeoutMs);
  }

  /** Called for every read, so it only sets a flag; tick() turns it into a time. */
  received(): void {
    this.#rxSeen = true;
  }

  connecting(): void {
    this.#connectStartedAt = Date.now();
  }

  /** The handshake's ECHO_RES: the quiet starts now. */
  handshaken(): void {
    this.#lastRxAt = Date.now();
    this.#rxSeen = false;
    this.#probeAt = 0;
  }

  /** A GRAB is being written; `unique`: GRAB_JOB_UNIQ. */
  grabSent(unique: boolean): void {
    this.#grabSentAt = Date.now();
    this.#grabAbandoned = false;
    this.#echoBehindGrab = false;
    this.#grabUnique = unique;
  }

  /** The outstanding GRAB is being written again as GRAB_JOB: whether the slot gave up on it stands. */
  grabResent(unique: boolean): void {
    const abandoned = this.#grabAbandoned;
    this.grabSent(unique);
    this.#grabAbandoned = abandoned;
  }

  /** The outstanding GRAB was GRAB_JOB_UNIQ. */
  get grabUnique(): boolean {
    return this.#grabUnique;
  }

  get grabAbandoned(): boolean {
    return this.#grabAbandoned;
  }

  /** The outstanding GRAB was answered (or the socket is gone): the slot's giving up on it is over. */
  grabSettled(): void {
    this.#grabAbandoned = false;
  }

  /**
   * The connection stopped holding a job (it leaves RUNNING): its quiet starts now. A connection that
   * holds a job is not ticked (its slot skips it, slot.ts tick), so this does what the ticks would
   * have done during the job: nothing it received while running counts as a later sign of life.
   */
  jobEnded(now: number): void {
    this.#rxSeen = false;
    this.#lastRxAt = now;
    this.#probeAt = 0;
  }

  /** An ECHO_REQ is being written; `grabbing`: a GRAB is outstanding ahead of it. */
  echoSent(grabbing: boolean): void {
    if (grabbing) this.#echoBehindGrab = true;
  }

  /** An ECHO_RES arrived while grabbing: true when gearmand answered it ahead of the GRAB, which it lost. */
  get grabOvertaken(): boolean {
    return this.#echoBehindGrab;
  }

  /** `now` is Date.now() sampled once per tick by the pool. */
  tick(now: number, state: ConnectionState): void {
    const at = this.#lastTickAt;
    this.#lastTickAt = now;
    if (state === S.CONNECTING || state === S.HANDSHAKE) {
      const timeoutMs = connectTimeoutMs(this.#loopTimeoutMs);
      if (at - this.#connectStartedAt >= timeoutMs) {
        const what = state === S.CONNECTING ? 'connect to' : 'handshake (ECHO_REQ) with';
        this.#events.dead(new GearmanConnectionError(`${what} ${this.#serverState.label} timed out after ${timeoutMs} ms`));
      }
      return;
    }
    if (!isConnected(state)) return;
    if (state === S.GRABBING && !this.#grabAbandoned) {
      const suspect = this.#serverState.suspect;
      if (suspect || at - this.#grabSentAt >= this.#grabReplyTimeoutMs) {
        if (!suspect) this.#serverState.markSuspect(this.#grabReplyTimeoutMs);
        this.#grabAbandoned = true;
        this.#events.grabAbandoned();
      }
    }
    // Holding a job, the connection is quiet by design: its quiet starts when the job ends (jobEnded;
    // its slot does not tick it meanwhile, but a caller that does gets the same).
    if (this.#rxSeen || state === S.RUNNING) {
      this.#rxSeen = false;
      this.#lastRxAt = now;
      this.#probeAt = 0;
      return;
    }
    if (this.#probeAt === 0) {
      // A probe too many costs one ECHO_REQ: only the verdicts wait for the poll.
      if (now - this.#lastRxAt >= this.#loopTimeoutMs) {
        this.#probeAt = now;
        this.#events.probe();
      }
    } else if (at - this.#probeAt >= this.#loopTimeoutMs) {
      this.#events.dead(new GearmanConnectionError(`${this.#serverState.label} did not answer a liveness probe within ${this.#loopTimeoutMs} ms`));
    }
  }
}
