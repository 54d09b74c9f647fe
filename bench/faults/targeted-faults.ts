/**
 * The fault endpoint's narrow faults, for the chaos benchmark's liveness runs: one function answered
 * 503 while the others are served, and single poisoned ids whose every POST fails the same transient
 * way (503 at once, no answer at all, or a 200 ndjson answer that never ends) until the harness cures
 * them. Every POST of a poisoned id is logged with its time and Driveshaft-Attempt header: the POSTs
 * a poison job costs are the figure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** How every POST of a poisoned id fails: 503 at once, no answer, or a 200 ndjson stream that never ends. */
export type PoisonKind = '503' | 'hang' | 'stream';

/** One POST of a poisoned id. */
export interface PoisonRequest {
  atMs: number;
  /** The Driveshaft-Attempt header (undefined when absent). */
  attempt: number | undefined;
  /** When the daemon closed it (hang, stream) or the answer was written (503). */
  closedAtMs?: number;
  /** The id was cured by then: served like any other job. */
  cured?: boolean;
}

/** A stream's progress lines come this often: a slow trickle, as a stuck job's progress would. */
const STREAM_LINE_MS = 200;

export function answer503(res: ServerResponse): void {
  res.writeHead(503, { 'Content-Type': 'text/plain', 'Content-Length': 11 });
  res.end('unavailable');
}

export class TargetedFaults {
  /** Functions answered 503, with the requests so answered. */
  readonly #downFunctions = new Map<string, number>();
  readonly #poisoned = new Map<string, PoisonKind>();
  /** Every POST of an id ever poisoned, cured ones included. */
  readonly #poisonLog = new Map<string, PoisonRequest[]>();

  functionDown(functionName: string): void {
    this.#downFunctions.set(functionName, 0);
  }

  /** Serves the function again; returns how many of its requests were answered 503. */
  functionUp(functionName: string): number {
    const requests = this.#downFunctions.get(functionName) ?? 0;
    this.#downFunctions.delete(functionName);
    return requests;
  }

  poison(id: string, kind: PoisonKind): void {
    this.#poisoned.set(id, kind);
    if (!this.#poisonLog.has(id)) this.#poisonLog.set(id, []);
  }

  cure(id: string): void {
    this.#poisoned.delete(id);
  }

  requests(id: string): PoisonRequest[] {
    return this.#poisonLog.get(id) ?? [];
  }

  /** Answers the request when a targeted fault covers it (true); false leaves it to the endpoint. */
  handle(req: IncomingMessage, res: ServerResponse, id: string | undefined, functionName: string | undefined): boolean {
    const log = id === undefined ? undefined : this.#poisonLog.get(id);
    if (log !== undefined) {
      const attempt = Number(req.headers['driveshaft-attempt']);
      const entry: PoisonRequest = { atMs: Date.now(), attempt: Number.isInteger(attempt) ? attempt : undefined };
      log.push(entry);
      const kind = this.#poisoned.get(id as string);
      if (kind !== undefined) {
        answerPoisoned(res, entry, kind);
        return true;
      }
      entry.cured = true;
      entry.closedAtMs = entry.atMs;
    }
    const requests = functionName === undefined ? undefined : this.#downFunctions.get(functionName);
    if (requests === undefined) return false;
    this.#downFunctions.set(functionName as string, requests + 1);
    answer503(res);
    return true;
  }
}

function answerPoisoned(res: ServerResponse, entry: PoisonRequest, kind: PoisonKind): void {
  let ticker: NodeJS.Timeout | undefined;
  res.on('close', () => {
    clearInterval(ticker);
    entry.closedAtMs ??= Date.now();
  });
  if (kind === '503') {
    answer503(res);
  } else if (kind === 'stream') {
    // Progress now and then, never the final line: only the daemon's max_running_time ends it.
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    let n = 0;
    const line = (): boolean => res.write(`{"status":[${++n},1000000]}\n`);
    line();
    ticker = setInterval(line, STREAM_LINE_MS);
  }
  // hang: read, never answered
}
