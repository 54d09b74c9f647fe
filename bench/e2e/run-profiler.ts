/**
 * `--profile-runs`: CPU profiles of the measured queue runs alone, taken through each daemon process's
 * inspector (`--inspect=127.0.0.1:P`; node:cluster gives the children P+1, P+2…). A
 * whole-life `--cpu-prof` profile of 5,000 slots is mostly their start-up and shutdown (5,000
 * connects, then 5,000 closes); this one starts after the daemon is released on the queued jobs and
 * stops when the endpoint has logged the last one.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/free-port.js';

const LISTENING = /Debugger listening on (ws:\/\/\S+)/g;
const REPLY_TIMEOUT_MS = 30_000;

/** Whether `port` on 127.0.0.1 can be listened on right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port P with P+1 … P+children free too: node:cluster starts each child's inspector on the master's
 * port plus the child's number, and a child whose port is taken runs without one.
 */
export async function inspectorBasePort(children: number): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = await freePort();
    let free = true;
    for (let i = 1; i <= children && free; i++) free = base + i < 65536 && (await portFree(base + i));
    if (free) return base;
  }
  throw new Error(`--profile-runs: found no ${children + 1} consecutive free ports for the inspectors`);
}

/** The inspector URLs the daemon printed (master first, then each child as it started). */
export function inspectorUrls(outPath: string): string[] {
  let text: string;
  try {
    text = readFileSync(outPath, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(LISTENING)].map((match) => match[1] as string);
}

/** One process's inspector session, enough of the DevTools protocol to take a CPU profile. */
class InspectorSession {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  #nextId = 1;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (waiter === undefined) return;
      this.#pending.delete(message.id as number);
      if (message.error !== undefined) waiter.reject(new Error(message.error.message));
      else waiter.resolve(message.result);
    });
  }

  static open(url: string): Promise<InspectorSession> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.addEventListener('open', () => resolve(new InspectorSession(socket)), { once: true });
      socket.addEventListener('error', () => reject(new Error(`inspector ${url}: cannot connect`)), { once: true });
    });
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`inspector: no reply to ${method} within ${REPLY_TIMEOUT_MS} ms`));
      }, REPLY_TIMEOUT_MS);
      this.#pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): void {
    this.#socket.close();
  }
}

/** Profiles every process of the daemon (the inspector URLs it printed) from start() to stop(). */
export class RunProfiler {
  readonly #sessions: InspectorSession[];

  private constructor(sessions: InspectorSession[]) {
    this.#sessions = sessions;
  }

  static async attach(urls: readonly string[]): Promise<RunProfiler> {
    const sessions = await Promise.all(urls.map((url) => InspectorSession.open(url)));
    // 250 µs between samples: a 10-s run gives 40,000 samples per process without slowing it much.
    await Promise.all(sessions.map(async (s) => {
      await s.call('Profiler.enable');
      await s.call('HeapProfiler.enable');
      await s.call('Profiler.setSamplingInterval', { interval: 250 });
    }));
    return new RunProfiler(sessions);
  }

  /** Starts the CPU profile and V8's sampling of allocations (where the garbage comes from). */
  async start(): Promise<void> {
    await Promise.all(
      this.#sessions.map(async (s) => {
        // Collected objects too: the garbage is what the question is about.
        await s.call('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env['PROFILE_MINOR_GC'] !== '0' });
        await s.call('Profiler.start');
      }),
    );
  }

  /** Writes a .cpuprofile and a .heapprofile per process into `dir`, named `<prefix>-<master|childN>`. */
  async stop(dir: string, prefix: string): Promise<void> {
    await Promise.all(
      this.#sessions.map(async (s, i) => {
        const name = join(dir, `${prefix}-${i === 0 ? 'master' : `child${i}`}`);
        const cpu = (await s.call('Profiler.stop')) as { profile: unknown };
        const heap = (await s.call('HeapProfiler.stopSampling')) as { profile: unknown };
        writeFileSync(`${name}.cpuprofile`, JSON.stringify(cpu.profile));
        writeFileSync(`${name}.heapprofile`, JSON.stringify(heap.profile));
      }),
    );
  }

  close(): void {
    for (const session of this.#sessions) session.close();
  }
}
