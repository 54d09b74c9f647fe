/**
 * What one pool knows about one gearmand, shared by every slot's connection to it and kept across
 * slot generations (the WorkerPool keeps one per server label):
 *
 * - **Suspect**: a GRAB went unanswered for the grab-reply timeout. A stopped gearmand (SIGSTOP, a
 *   hung host) still accepts TCP in the kernel, so nothing fails: the slot would wait on it for the
 *   liveness probe (2 × loop_timeout) while the other servers' jobs queue up. Once one connection's
 *   GRAB goes unanswered, no slot of the pool grabs there; any packet from the server clears it and
 *   kicks the slots that skipped it. Something is always outstanding on a suspect server (the
 *   abandoned GRAB, a probe, a reconnect's ECHO_REQ), so its recovery is heard without a timer.
 * - **Which GRAB it knows**: the Perl Gearman::Server (Debian's `gearman-server`, the first Gearman
 *   server) answers GRAB_JOB_UNIQ with ERROR; once one connection learns that, every connection of the
 *   pool to that server grabs with GRAB_JOB, and the one log line says so.
 * - **Connects in flight**: at most MAX_CONNECTS_IN_FLIGHT connects (with their handshakes) at once;
 *   the rest wait their turn. gearmand listens with a backlog of 32: 5,000 slots connecting at once
 *   overflowed it, the kernel dropped their SYNs, and each retried only after TCP's 1 s, just when a
 *   connect times out at loop_timeout 1 s: 1,673 of 5,000 connects failed (one warning each) and
 *   were retried. In turns they all connect at once on the first try (bench/e2e slow5000).
 */
import { GRAB_JOB_PACKET, GRAB_JOB_UNIQ_PACKET } from '../../codec/index.js';
import type { Logger } from '../../log/logger.js';

/** A slot that skipped this server while it was suspect. */
export interface SuspectWaiter {
  /** The server answers again: try to grab. */
  kick(): void;
}

/**
 * Connects (and handshakes) in flight to one server per pool: twice gearmand's default listen backlog,
 * which it empties as fast as it reads its sockets. On a distant server a turn lasts a round trip, so
 * 5,000 slots 50 ms away connect in about 4 s.
 */
export const MAX_CONNECTS_IN_FLIGHT = 64;

/** Suspect marks this soon after the last warning are logged at debug: a flapping server is one line a minute. */
const WARN_INTERVAL_MS = 60_000;

const NO_TURN = (): boolean => false;

export class ServerState {
  readonly label: string;
  readonly #log: Logger;
  #suspectSince = 0;
  #lastWarnAt = -Infinity;
  /** Times it turned suspect since the last warning (for the next line). */
  #marksSinceWarn = 0;
  readonly #waiting = new Set<SuspectWaiter>();
  #uniqueGrabs = true;
  /** Connects under way, and the ones waiting for a turn (first come first served). */
  #connecting = 0;
  readonly #connectTurns: Array<() => boolean> = [];
  #connectHead = 0;

  constructor(label: string, log: Logger) {
    this.label = label;
    this.#log = log;
  }

  get suspect(): boolean {
    return this.#suspectSince !== 0;
  }

  /** Date.now() when a GRAB to this server last went unanswered, while the pool skips it; else null. */
  get suspectSince(): number | null {
    return this.#suspectSince === 0 ? null : this.#suspectSince;
  }

  /** A GRAB to this server went unanswered for `timeoutMs`. */
  markSuspect(timeoutMs: number): void {
    if (this.#suspectSince !== 0) return;
    const now = Date.now();
    this.#suspectSince = now;
    this.#marksSinceWarn++;
    if (now - this.#lastWarnAt >= WARN_INTERVAL_MS) {
      this.#log.warn(
        { server: this.label, grabReplyTimeoutMs: timeoutMs, timesSuspect: this.#marksSinceWarn },
        'gearmand did not answer a GRAB in time: the pool grabs on its other servers until this one answers again',
      );
      this.#lastWarnAt = now;
      this.#marksSinceWarn = 0;
    } else if (this.#log.debug()) {
      this.#log.debug({ server: this.label, grabReplyTimeoutMs: timeoutMs }, 'gearmand suspect again');
    }
  }

  /** A packet from this server arrived: it works. Called for every packet, so the common case is one test. */
  heard(): void {
    if (this.#suspectSince === 0) return;
    const suspectForMs = Date.now() - this.#suspectSince;
    this.#suspectSince = 0;
    this.#log.info({ server: this.label, suspectForMs }, 'gearmand answers again: the pool grabs there again');
    const waiting = [...this.#waiting];
    this.#waiting.clear();
    for (const waiter of waiting) waiter.kick();
  }

  /** `waiter` skipped this server: kick it when the server answers again. */
  wait(waiter: SuspectWaiter): void {
    this.#waiting.add(waiter);
  }

  forget(waiter: SuspectWaiter): void {
    this.#waiting.delete(waiter);
  }

  /**
   * Runs `connect` now if fewer than MAX_CONNECTS_IN_FLIGHT connects are under way, else once one
   * ends. `connect` returns whether it took the turn; a turn taken ends with exactly one connectEnded().
   */
  connectTurn(connect: () => boolean): void {
    if (this.#connecting < MAX_CONNECTS_IN_FLIGHT) {
      this.#connecting++;
      if (!connect()) this.#connecting--;
    } else {
      this.#connectTurns.push(connect);
    }
  }

  /**
   * A connect that had its turn is over (connected and handshaken, or failed): the next ones waiting
   * get theirs. A loop, not a call per waiter from the last: thousands of links closed while they
   * waited (a reload during an outage) decline their turns one after another without a deep stack.
   */
  connectEnded(): void {
    this.#connecting--;
    while (this.#connecting < MAX_CONNECTS_IN_FLIGHT && this.#connectHead < this.#connectTurns.length) {
      const next = this.#connectTurns[this.#connectHead] as () => boolean;
      this.#connectTurns[this.#connectHead++] = NO_TURN;
      if (this.#connectHead === this.#connectTurns.length) {
        this.#connectTurns.length = 0;
        this.#connectHead = 0;
      }
      this.#connecting++;
      if (!next()) this.#connecting--;
    }
  }

  /** Connects under way (tests). */
  get connectsInFlight(): number {
    return this.#connecting;
  }

  /** The GRAB this server understands: GRAB_JOB_UNIQ until it answered one with ERROR. */
  get grabPacket(): Buffer {
    return this.#uniqueGrabs ? GRAB_JOB_UNIQ_PACKET : GRAB_JOB_PACKET;
  }

  get uniqueGrabs(): boolean {
    return this.#uniqueGrabs;
  }

  /**
   * Whether a WORK_EXCEPTION ends the job on this server. gearmand's does (a WORK_FAIL after it only
   * earns an ERROR); the Perl Gearman::Server, the one server here that answers GRAB_JOB_UNIQ with
   * ERROR, relays it to the clients that asked for exceptions and keeps the job running until a
   * WORK_FAIL (Gearman/Server/Client.pm, CMD_work_exception).
   */
  get exceptionEndsJob(): boolean {
    return this.#uniqueGrabs;
  }

  /** The server answered a lone GRAB_JOB_UNIQ with ERROR: grab with GRAB_JOB from now on. */
  noUniqueGrabs(error: Error): void {
    if (!this.#uniqueGrabs) return;
    this.#uniqueGrabs = false;
    this.#log.warn(
      { server: this.label, err: error },
      'gearmand does not know GRAB_JOB_UNIQ: grabbing with GRAB_JOB there; its jobs reach the endpoint with an empty unique',
    );
  }
}
