/**
 * `--profile-runs`: CPU profiles of the measured queue runs alone, taken through each daemon process's
 * inspector (`--inspect=127.0.0.1:0`, which cluster children inherit with a port of their own). A
 * whole-life `--cpu-prof` profile of 5,000 slots is mostly their start-up and shutdown (5,000
 * connects, then 5,000 closes); this one starts after the daemon is released on the queued jobs and
 * stops when the endpoint has logged the last one.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const LISTENING = /Debugger listening on (ws:\/\/\S+)/g;
const REPLY_TIMEOUT_MS = 30_000;

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
      await s.call('Profiler.setSamplingInterval', { interval: 250 });
    }));
    return new RunProfiler(sessions);
  }

  async start(): Promise<void> {
    await Promise.all(this.#sessions.map((s) => s.call('Profiler.start')));
  }

  /** Writes one .cpuprofile per process into `dir`, named `<prefix>-<process index>`. */
  async stop(dir: string, prefix: string): Promise<void> {
    const profiles = await Promise.all(this.#sessions.map((s) => s.call('Profiler.stop') as Promise<{ profile: unknown }>));
    profiles.forEach((result, i) => writeFileSync(join(dir, `${prefix}-${i === 0 ? 'master' : `child${i}`}.cpuprofile`), JSON.stringify(result.profile)));
  }

  close(): void {
    for (const session of this.#sessions) session.close();
  }
}
