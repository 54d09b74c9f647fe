/**
 * A Gearman client for tests and benchmarks, on the project's codec and node:net.
 *
 * One TCP connection carries any number of concurrent submits: gearmand answers JOB_CREATED in submit
 * order, so pending submits wait in a FIFO until their handle is known, then in a map by handle until
 * WORK_COMPLETE / WORK_FAIL / WORK_EXCEPTION arrives.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { PacketType, Parser, SubmitKind, encodeOptionReq, encodeSubmitJob } from '../../src/codec/index.js';
import type { Packet } from '../../src/codec/index.js';

export type JobOutcomeKind = 'complete' | 'fail' | 'exception';

export interface SubmitOptions {
  /** Default: a random UUID, as libgearman clients send. Pass '' to send none; a Buffer is sent as its bytes. */
  unique?: string | Buffer;
  /** SUBMIT_JOB_BG: resolves on JOB_CREATED, with `outcome` undefined. */
  background?: boolean;
  priority?: 'normal' | 'high' | 'low';
  /** Reject if no outcome (or, for background jobs, no JOB_CREATED) within this long. Default 60 s. */
  timeoutMs?: number;
}

export interface SubmitResult {
  handle: string;
  /** undefined for background jobs (nothing more is reported to the client). */
  outcome: JobOutcomeKind | undefined;
  /** WORK_COMPLETE's result or WORK_EXCEPTION's data. */
  result?: Buffer;
  /** WORK_DATA chunks received before the outcome. */
  data: Buffer[];
  /** WORK_STATUS, WORK_DATA and WORK_WARNING in arrival order. */
  progress: ProgressEvent[];
  /** performance.now() when the submit was written and when its outcome (or JOB_CREATED) arrived. */
  submittedAt: number;
  settledAt: number;
}

/** A progress packet of a foreground job, with performance.now() when it arrived. */
export type ProgressEvent =
  | { kind: 'status'; numerator: number; denominator: number; at: number }
  | { kind: 'data' | 'warning'; data: Buffer; at: number };

export interface ConnectOptions {
  /** OPTION_REQ "exceptions": gearmand then forwards WORK_EXCEPTION instead of turning it into WORK_FAIL. */
  exceptions?: boolean;
}

interface Pending {
  background: boolean;
  handle: string;
  data: Buffer[];
  progress: ProgressEvent[];
  submittedAt: number;
  timer: NodeJS.Timeout | null;
  /** Timed out: a late JOB_CREATED or outcome is dropped. */
  dead: boolean;
  resolve(result: SubmitResult): void;
  reject(error: Error): void;
}

const DEFAULT_TIMEOUT_MS = 60_000;

const KINDS = {
  normal: { fg: SubmitKind.NORMAL, bg: SubmitKind.BACKGROUND },
  high: { fg: SubmitKind.HIGH, bg: SubmitKind.HIGH_BACKGROUND },
  low: { fg: SubmitKind.LOW, bg: SubmitKind.LOW_BACKGROUND },
} as const;

export class GearmanClient {
  readonly #socket: net.Socket;
  readonly #parser: Parser;
  /** Submits waiting for JOB_CREATED, in submit order. */
  readonly #awaitingHandle: Pending[] = [];
  /** Foreground submits by handle (gearmand coalesces equal uniques into one handle: hence a list). */
  readonly #running = new Map<string, Pending[]>();
  #closed: Error | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#parser = new Parser({
      onPacket: (packet) => this.#onPacket(packet),
      onError: (error) => this.#failAll(error),
    });
    socket.on('data', (chunk: Buffer) => this.#parser.push(chunk));
    socket.on('error', (error) => this.#failAll(error));
    socket.on('close', () => this.#failAll(new Error('gearmand closed the client connection')));
  }

  static connect(port: number, host = '127.0.0.1', options: ConnectOptions = {}): Promise<GearmanClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, noDelay: true });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        const client = new GearmanClient(socket);
        if (options.exceptions === true) socket.write(encodeOptionReq('exceptions'));
        resolve(client);
      });
    });
  }

  /** Number of submits without an outcome yet. */
  get pending(): number {
    let n = this.#awaitingHandle.length;
    for (const list of this.#running.values()) n += list.length;
    return n;
  }

  submit(functionName: string, workload: Buffer | string, options: SubmitOptions = {}): Promise<SubmitResult> {
    if (this.#closed !== null) return Promise.reject(this.#closed);
    const background = options.background === true;
    const kind = KINDS[options.priority ?? 'normal'][background ? 'bg' : 'fg'];
    const unique = options.unique ?? randomUUID();
    return new Promise<SubmitResult>((resolve, reject) => {
      const pending: Pending = { background, handle: '', data: [], progress: [], submittedAt: performance.now(), timer: null, dead: false, resolve, reject };
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      pending.timer = setTimeout(() => {
        pending.timer = null;
        pending.dead = true;
        this.#forget(pending);
        reject(new Error(`GearmanClient: no ${background ? 'JOB_CREATED' : 'outcome'} for ${functionName} (handle ${pending.handle || 'unknown'}) within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.timer.unref();
      this.#awaitingHandle.push(pending);
      this.#socket.write(encodeSubmitJob(kind, functionName, unique, workload));
    });
  }

  /** Ends the connection; submits still pending are rejected. Idempotent. */
  close(): Promise<void> {
    if (this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#socket.once('close', () => resolve());
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), 1000).unref();
    });
  }

  #onPacket(packet: Packet): void {
    const args = packet.args;
    switch (packet.type) {
      case PacketType.JOB_CREATED: {
        const pending = this.#awaitingHandle.shift();
        if (pending === undefined) return;
        pending.handle = (args[0] as Buffer).toString('latin1');
        if (pending.dead) return;
        if (pending.background) {
          this.#settle(pending, { outcome: undefined });
          return;
        }
        const list = this.#running.get(pending.handle);
        if (list === undefined) this.#running.set(pending.handle, [pending]);
        else list.push(pending);
        return;
      }
      case PacketType.WORK_COMPLETE:
        return this.#finish(args[0] as Buffer, 'complete', Buffer.from(args[1] as Buffer));
      case PacketType.WORK_FAIL:
        return this.#finish(args[0] as Buffer, 'fail', undefined);
      case PacketType.WORK_EXCEPTION:
        return this.#finish(args[0] as Buffer, 'exception', Buffer.from(args[1] as Buffer));
      case PacketType.WORK_DATA:
      case PacketType.WORK_WARNING: {
        const list = this.#running.get((args[0] as Buffer).toString('latin1'));
        const kind = packet.type === PacketType.WORK_DATA ? 'data' : 'warning';
        const at = performance.now();
        for (const pending of list ?? []) {
          const data = Buffer.from(args[1] as Buffer);
          if (kind === 'data') pending.data.push(data);
          pending.progress.push({ kind, data, at });
        }
        return;
      }
      case PacketType.WORK_STATUS: {
        const list = this.#running.get((args[0] as Buffer).toString('latin1'));
        const numerator = Number((args[1] as Buffer).toString('latin1'));
        const denominator = Number((args[2] as Buffer).toString('latin1'));
        const at = performance.now();
        for (const pending of list ?? []) pending.progress.push({ kind: 'status', numerator, denominator, at });
        return;
      }
      case PacketType.ERROR: {
        // gearmand answers a submit it refuses with ERROR in place of JOB_CREATED.
        const pending = this.#awaitingHandle.shift();
        const error = new Error(`gearmand ERROR ${(args[0] as Buffer).toString()}: ${(args[1] as Buffer).toString()}`);
        if (pending !== undefined) this.#reject(pending, error);
        return;
      }
      default:
        return; // OPTION_RES: not needed by the tests.
    }
  }

  #finish(handleBytes: Buffer, outcome: JobOutcomeKind, result: Buffer | undefined): void {
    const handle = handleBytes.toString('latin1');
    const list = this.#running.get(handle);
    if (list === undefined) return;
    this.#running.delete(handle);
    for (const pending of list) this.#settle(pending, result === undefined ? { outcome } : { outcome, result });
  }

  #settle(pending: Pending, fields: { outcome: JobOutcomeKind | undefined; result?: Buffer }): void {
    if (pending.timer !== null) clearTimeout(pending.timer);
    pending.resolve({ handle: pending.handle, data: pending.data, progress: pending.progress, submittedAt: pending.submittedAt, settledAt: performance.now(), ...fields });
  }

  #reject(pending: Pending, error: Error): void {
    if (pending.timer !== null) clearTimeout(pending.timer);
    pending.reject(error);
  }

  #forget(pending: Pending): void {
    const index = this.#awaitingHandle.indexOf(pending);
    // A submit still waiting for its JOB_CREATED keeps its place: the next JOB_CREATED is its.
    if (index !== -1) return;
    const list = this.#running.get(pending.handle);
    if (list === undefined) return;
    const rest = list.filter((p) => p !== pending);
    if (rest.length === 0) this.#running.delete(pending.handle);
    else this.#running.set(pending.handle, rest);
  }

  #failAll(error: Error): void {
    if (this.#closed !== null) return;
    this.#closed = error;
    for (const pending of this.#awaitingHandle.splice(0)) this.#reject(pending, error);
    for (const list of this.#running.values()) for (const pending of list) this.#reject(pending, error);
    this.#running.clear();
    this.#socket.destroy();
  }
}
