/**
 * The job a connection's socket holds, in packets: the assignment read into a Job, its progress lines,
 * its answer, and what an ERROR that follows them means. The connection decides when (its state, the
 * socket's epoch); this keeps what lives from an assignment until gearmand has seen the answer.
 */
import type net from 'node:net';
import { PacketType, encodeWorkComplete, encodeWorkCompleteHead, encodeWorkException, encodeWorkFail } from '../../codec/index.js';
import type { Packet } from '../../codec/index.js';
import type { Logger } from '../../log/logger.js';
import type { AnswerOutcome, Job, ProgressUpdate } from '../job.js';
import { ProgressThrottle } from './progress-throttle.js';
import type { ProgressReader } from './progress-throttle.js';

/** Below this a WORK_COMPLETE is one buffer; above, the result follows the head uncopied. */
const COPY_RESULT_LIMIT = 16 * 1024;
const EMPTY = Buffer.alloc(0);

/** JOB_ASSIGN_UNIQ, or JOB_ASSIGN (the answer to GRAB_JOB), whose job gets an empty unique. */
export function jobFromAssignment(packet: Packet, serverLabel: string, handle: Buffer, functionName: string): Job {
  const args = packet.args;
  const uniq = packet.type === PacketType.JOB_ASSIGN_UNIQ;
  const unique = uniq ? (args[2] as Buffer) : EMPTY;
  return {
    handle,
    handleText: handle.toString('latin1'),
    functionName,
    functionBytes: args[1] as Buffer,
    unique,
    uniqueText: unique.toString('utf8'),
    workload: args[uniq ? 3 : 2] as Buffer,
    server: serverLabel,
  };
}

export class SocketJob {
  /** The function of the job this socket holds (RUNNING): its CANT_DO waits for the answer. */
  #functionName: string | null = null;
  /** The running job's progress, from its first progress line until its answer or its loss. */
  #progress: ProgressThrottle | null = null;
  /**
   * A job's answer went out and nothing came back since: gearmand answers in order, so an ERROR now
   * may be about that answer (or a progress packet before it) rather than a later GRAB.
   */
  #answerUnconfirmed = false;
  /** An ERROR answering a progress packet or result was logged at warn (the rest go to debug). */
  #workErrorLogged = false;

  /** The function of the job the socket holds (or last held, until the socket goes). */
  get functionName(): string | null {
    return this.#functionName;
  }

  get answerUnconfirmed(): boolean {
    return this.#answerUnconfirmed;
  }

  assigned(functionName: string): void {
    this.#functionName = functionName;
  }

  /** gearmand sent something other than ERROR: it took the answer. */
  confirmed(): void {
    this.#answerUnconfirmed = false;
  }

  /** A progress line, throttled and bounded (progress-throttle.ts); `live` says whether the socket still holds the job. */
  progress(socket: net.Socket, handle: Buffer, update: ProgressUpdate, reader: ProgressReader, live: () => boolean): void {
    let progress = this.#progress;
    if (progress === null || progress.handle !== handle) {
      progress?.discard();
      progress = new ProgressThrottle(socket, handle, reader, live);
      this.#progress = progress;
    }
    progress.add(update);
  }

  /**
   * WORK_COMPLETE with the result, WORK_EXCEPTION or WORK_FAIL, then `then` (CANT_DOs, the next GRAB)
   * in the same write: one syscall and one gearmand wake-up per job on the hot path.
   */
  answer(socket: net.Socket, handle: Buffer, outcome: AnswerOutcome, then: Buffer | null, exceptionEndsJob = true): void {
    this.#answerUnconfirmed = true;
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
      // The Perl server only relays it: the WORK_FAIL that follows there ends the job.
      socket.write(encodeWorkException(handle, outcome.exception, exceptionEndsJob ? then : encodeWorkFail(handle, then)));
    } else {
      socket.write(encodeWorkFail(handle, then));
    }
    if (progress !== null) socket.uncork();
  }

  /**
   * An ERROR answering a progress packet or the answer (the Perl server knows no WORK_DATA or
   * WORK_WARNING): the job goes on, since a reconnect would only make gearmand re-queue it and run it
   * again. Logged once at warn.
   */
  refused(error: Error, serverLabel: string, log: Logger): void {
    if (!this.#workErrorLogged) {
      this.#workErrorLogged = true;
      log.warn({ server: serverLabel, err: error }, 'gearmand refused a progress packet or result with ERROR; the job goes on (further ones are logged at debug)');
    } else if (log.debug()) {
      log.debug({ server: serverLabel, err: error }, 'gearmand refused a progress packet or result');
    }
  }

  /** The socket is going: held progress of a job gearmand re-queues (lost, or dropped on purpose) is not sent anywhere. */
  released(): void {
    this.#progress?.discard();
    this.#progress = null;
    this.#functionName = null;
    this.#answerUnconfirmed = false;
  }
}
