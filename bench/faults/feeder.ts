/**
 * Queues the benchmark's background jobs in gearmand at a steady rate (or all at once), and keeps
 * going across a gearmand crash: a job counts as queued only once gearmand answered JOB_CREATED,
 * and everything not acknowledged when the connection broke is submitted again after reconnecting.
 * A job that was stored but whose JOB_CREATED got lost is merged by gearmand with its resubmission
 * (same function and unique), so every id is queued exactly once.
 *
 * Job i has the id `${prefix}-${i}` as both its unique and its workload: the endpoint records the
 * workload it answered 200 for.
 */
import { SubmitKind, encodeSubmitJob } from '../../src/codec/index.js';
import { GearmanClient } from '../e2e/gearman-client.js';

/** Jobs per pipelined write; at most this many are unacknowledged at a time. */
const CHUNK = 1000;
const TICK_MS = 20;
const RECONNECT_MS = 50;

export interface FeederOptions {
  /** gearmand's port (read again at every reconnect). */
  port: () => number;
  functionName: string;
  prefix: string;
  total: number;
  /** Jobs per second; 0 queues everything at once. */
  rate: number;
}

export function jobId(prefix: string, index: number): string {
  return `${prefix}-${index}`;
}

export class Feeder {
  readonly #options: FeederOptions;
  #acknowledged = 0;
  #reconnects = 0;
  #inDoubt = 0;
  #stopped = false;
  #startedAtMs = 0;
  #finishedAtMs = 0;
  #lastError: string | undefined;
  /** When job i was first written to gearmand (ms since the epoch): where its latency starts. */
  readonly #submittedAtMs: number[] = [];
  readonly done: Promise<void>;

  constructor(options: FeederOptions) {
    this.#options = options;
    this.#startedAtMs = Date.now();
    this.done = this.#run();
  }

  /** Jobs gearmand acknowledged (JOB_CREATED). */
  get queued(): number {
    return this.#acknowledged;
  }

  get reconnects(): number {
    return this.#reconnects;
  }

  /**
   * Jobs written but not acknowledged when a connection broke, submitted again: gearmand may have
   * stored some of them already (it should merge the resubmission by its unique).
   */
  get inDoubt(): number {
    return this.#inDoubt;
  }

  get startedAtMs(): number {
    return this.#startedAtMs;
  }

  /** 0 while still submitting. */
  get finishedAtMs(): number {
    return this.#finishedAtMs;
  }

  /** When job i was first written to gearmand; undefined for jobs not written yet. */
  submittedAtMs(index: number): number | undefined {
    return this.#submittedAtMs[index];
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  stop(): void {
    this.#stopped = true;
  }

  async #run(): Promise<void> {
    const { total, rate, functionName, prefix } = this.#options;
    let client: GearmanClient | undefined;
    try {
      while (this.#acknowledged < total && !this.#stopped) {
        const elapsedS = (Date.now() - this.#startedAtMs) / 1000;
        const due = rate > 0 ? Math.min(total, Math.floor(elapsedS * rate)) : total;
        if (due <= this.#acknowledged) {
          await delay(TICK_MS);
          continue;
        }
        if (client === undefined) {
          try {
            client = await GearmanClient.connect(this.#options.port());
          } catch (error) {
            this.#lastError = error instanceof Error ? error.message : String(error);
            await delay(RECONNECT_MS);
            continue;
          }
        }
        const from = this.#acknowledged;
        const to = Math.min(due, from + CHUNK * 10);
        const packets: Buffer[] = [];
        const now = Date.now();
        for (let i = from; i < to; i++) {
          this.#submittedAtMs[i] ??= now;
          const id = jobId(prefix, i);
          packets.push(encodeSubmitJob(SubmitKind.BACKGROUND, functionName, id, Buffer.from(id)));
        }
        const base = client.created;
        try {
          await client.submitBackground(packets, CHUNK);
          this.#acknowledged = to;
        } catch (error) {
          // JOB_CREATED replies come in submission order: the first `created - base` are queued.
          this.#acknowledged = from + (client.created - base);
          this.#inDoubt += to - this.#acknowledged;
          this.#lastError = error instanceof Error ? error.message : String(error);
          this.#reconnects++;
          client.close();
          client = undefined;
          await delay(RECONNECT_MS);
        }
      }
    } finally {
      client?.close();
      this.#finishedAtMs = Date.now();
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
