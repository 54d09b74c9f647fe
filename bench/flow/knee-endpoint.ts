/**
 * The flow benchmark's endpoint: a service whose latency depends on how many requests it serves at
 * once. Up to `knee` at once each takes `baseMs`; each request past the knee adds `perExtraMs` to the
 * ones that arrive while it runs (a database that thrashes, a PHP-FPM whose workers swap). The latency
 * is fixed when a request arrives, from the count then, and the request counts until its answer leaves.
 * Every answer is recorded (when it left, how long it took) for the harness to read windows of.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface KneeModel {
  baseMs: number;
  knee: number;
  perExtraMs: number;
}

export interface KneeEndpoint {
  url: string;
  /** Answers that left in [from, to) (performance.now()): how many, and their latencies, sorted. */
  window(from: number, to: number): { answered: number; latencies: Float64Array };
  /** Most requests served at once in [from, to). */
  peak(from: number, to: number): number;
  close(): Promise<void>;
}

const BODY = Buffer.from('{"gearman_ret":0,"response_string":"ok"}');

export function latencyFor(model: KneeModel, concurrent: number): number {
  return model.baseMs + model.perExtraMs * Math.max(0, concurrent - model.knee);
}

export async function startKneeEndpoint(model: KneeModel): Promise<KneeEndpoint> {
  let inFlight = 0;
  // Parallel arrays, appended to: no object per request.
  const doneAt: number[] = [];
  const took: number[] = [];
  const peaks: Array<[number, number]> = [];
  const server = createServer((req, res) => {
    const arrived = performance.now();
    req.resume();
    req.once('end', () => {
      inFlight++;
      peaks.push([arrived, inFlight]);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
        res.end(BODY, () => {
          inFlight--;
          const now = performance.now();
          doneAt.push(now);
          took.push(now - arrived);
        });
      }, latencyFor(model, inFlight));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/job`,
    window(from, to) {
      const latencies: number[] = [];
      for (let i = 0; i < doneAt.length; i++) {
        const at = doneAt[i] as number;
        if (at >= from && at < to) latencies.push(took[i] as number);
      }
      return { answered: latencies.length, latencies: Float64Array.from(latencies).sort() };
    },
    peak(from, to) {
      let most = 0;
      for (const [at, count] of peaks) if (at >= from && at < to && count > most) most = count;
      return most;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
