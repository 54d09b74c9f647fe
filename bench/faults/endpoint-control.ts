/**
 * The harness's side of fault-endpoint.ts: forks it, then takes it down and up and asks it what it
 * answered, one IPC command at a time.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild } from '../e2e/proc-stats.js';
import type { EndpointCommand, EndpointMessage, EndpointReport, EndpointStats, IdTimes, OutageMode, OutageRecord, PoisonKind, PoisonRequest } from './fault-endpoint.js';

export type { EndpointReport, EndpointStats, IdTimes, OutageMode, OutageRecord, PoisonKind, PoisonRequest } from './fault-endpoint.js';

const START_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 30_000;

type CommandBody =
  | { type: 'down'; mode: OutageMode }
  | { type: 'up' }
  | { type: 'stats' }
  | { type: 'report'; prefix: string; count: number }
  | { type: 'functionDown'; functionName: string }
  | { type: 'functionUp'; functionName: string }
  | { type: 'poison'; id: string; kind: PoisonKind }
  | { type: 'cure'; id: string }
  | { type: 'poisonRequests'; id: string }
  | { type: 'idTimes'; prefix: string; count: number };

export class FaultEndpoint {
  readonly #child: ChildProcess;
  readonly port: number;
  #seq = 0;
  readonly #waiting = new Map<number, { resolve: (m: Extract<EndpointMessage, { type: 'reply' }>) => void; reject: (e: Error) => void }>();
  #stderr = '';

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.port = port;
    child.on('message', (message: EndpointMessage) => {
      if (message.type === 'reply') {
        const waiter = this.#waiting.get(message.seq);
        this.#waiting.delete(message.seq);
        waiter?.resolve(message);
      } else if (message.type === 'error') {
        this.#failAll(new Error(`endpoint: ${message.message}`));
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-4000);
    });
    child.once('exit', (code, signal) => this.#failAll(new Error(`endpoint exited (${signal ?? code}): ${this.#stderr.trim()}`)));
  }

  static start(): Promise<FaultEndpoint> {
    const script = join(dirname(fileURLToPath(import.meta.url)), 'fault-endpoint.js');
    const child = fork(script, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`fault endpoint did not listen within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`fault endpoint exited while starting (${signal ?? code})`));
      });
      child.on('message', (message: EndpointMessage) => {
        if (message.type === 'listening') {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          child.removeAllListeners('message');
          resolve(new FaultEndpoint(child, message.port));
        } else if (message.type === 'error') {
          clearTimeout(timer);
          child.kill('SIGKILL');
          reject(new Error(`fault endpoint: ${message.message}`));
        }
      });
    });
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/job`;
  }

  async down(mode: OutageMode): Promise<void> {
    await this.#command({ type: 'down', mode });
  }

  async up(): Promise<OutageRecord> {
    return (await this.#command({ type: 'up' })).outage as OutageRecord;
  }

  async stats(): Promise<EndpointStats> {
    return (await this.#command({ type: 'stats' })).stats as EndpointStats;
  }

  /** Everything recorded, with the ids `${prefix}-0 … ${prefix}-${count-1}` never answered 200. */
  async report(prefix: string, count: number): Promise<EndpointReport> {
    return (await this.#command({ type: 'report', prefix, count })).report as EndpointReport;
  }

  /** Answers 503 to the function's jobs only, the others are served as before. */
  async functionDown(functionName: string): Promise<void> {
    await this.#command({ type: 'functionDown', functionName });
  }

  /** Serves the function again; resolves to how many of its requests were answered 503. */
  async functionUp(functionName: string): Promise<number> {
    return (await this.#command({ type: 'functionUp', functionName })).requests ?? 0;
  }

  /** Every POST of the id fails `kind`'s way from now on, and is logged (poisonRequests). */
  async poison(id: string, kind: PoisonKind): Promise<void> {
    await this.#command({ type: 'poison', id, kind });
  }

  /** The id is served like any other from now on (its POSTs are still logged). */
  async cure(id: string): Promise<void> {
    await this.#command({ type: 'cure', id });
  }

  async poisonRequests(id: string): Promise<PoisonRequest[]> {
    return (await this.#command({ type: 'poisonRequests', id })).poisonRequests ?? [];
  }

  /** When each id `${prefix}-0 … ${prefix}-${count-1}` was first answered 200, and the repeats. */
  async idTimes(prefix: string, count: number): Promise<IdTimes> {
    return (await this.#command({ type: 'idTimes', prefix, count })).idTimes as IdTimes;
  }

  stop(): Promise<void> {
    return stopChild(this.#child, 'SIGTERM', 5_000);
  }

  #command(body: CommandBody): Promise<Extract<EndpointMessage, { type: 'reply' }>> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(seq);
        reject(new Error(`endpoint: no reply to ${body.type} within ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.#waiting.set(seq, {
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#child.send({ ...body, seq } as EndpointCommand);
    });
  }

  #failAll(error: Error): void {
    for (const waiter of this.#waiting.values()) waiter.reject(error);
    this.#waiting.clear();
  }
}
