/**
 * Reads every gearmand's own queue, per function, with the admin text command `status`, in the
 * background (issue #7): the Prometheus exporter and the status page show the worker side and the
 * queues together, and a scrape must never wait on a slow or dead gearmand, so scrapes only read the
 * cache this fills.
 *
 * Decisions:
 * - One short-lived TCP connection per poll and server: `status\n`, read to the "." line, close. A
 *   persistent connection would save a handshake every loop_timeout and add reconnect logic for no
 *   gain at this rate.
 * - Every poll is bounded by `timeoutMs`; a server still being polled when the next round comes is
 *   skipped for that round, so a hung gearmand never piles up connections.
 * - A failed poll drops that server's queue figures (stale numbers would mislead an alert) and keeps
 *   the reason; `ok` says whether the last poll worked.
 * - Failures are logged once when a server goes from ok to failing (and its recovery at info), not
 *   every loop_timeout.
 */
import net from 'node:net';
import type { AdminFunctionStatus } from '../codec/admin.js';
import type { ServerAddress } from '../config/types.js';
import type { Logger } from '../log/logger.js';

export interface GearmandScrape {
  /** The server's label (`host:port`). */
  server: string;
  /** The last poll worked. */
  ok: boolean;
  /** Date.now() when the last poll finished; 0 before the first. */
  at: number;
  /** How long the last poll took. */
  durationMs: number;
  /** The functions of the last poll when it worked, else empty. */
  functions: AdminFunctionStatus[];
  /** Why the last poll failed. */
  error: string | null;
}

export interface GearmandPollerOptions {
  servers: readonly ServerAddress[];
  intervalMs: number;
  timeoutMs: number;
  logger: Logger;
}

export { MAX_ADMIN_REPLY_CHARS, queryStatus } from '../admin-query.js';
import { queryStatus } from '../admin-query.js';

export class GearmandPoller {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  #servers: readonly ServerAddress[];
  readonly #scrapes = new Map<string, GearmandScrape>();
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #sockets = new Set<net.Socket>();
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(options: GearmandPollerOptions) {
    this.#log = options.logger.child({ component: 'gearmand-poller' });
    this.#intervalMs = options.intervalMs;
    this.#timeoutMs = options.timeoutMs;
    this.#servers = options.servers;
  }

  /** Polls now and then every intervalMs. */
  start(): void {
    if (this.#timer !== null || this.#stopped) return;
    void this.pollOnce();
    this.#timer = setInterval(() => void this.pollOnce(), this.#intervalMs);
    // The master's life is held by its children and servers; this timer must not keep it alive.
    this.#timer.unref();
  }

  /** After a reload: servers no longer listed are forgotten, new ones are polled at once. */
  setServers(servers: readonly ServerAddress[]): void {
    this.#servers = servers;
    const labels = new Set(servers.map((s) => s.label));
    for (const label of this.#scrapes.keys()) if (!labels.has(label)) this.#scrapes.delete(label);
    if (this.#timer !== null) void this.pollOnce();
  }

  /** The cache, in gearman_servers_list order; servers not polled yet show as not ok with no time. */
  get scrapes(): GearmandScrape[] {
    return this.#servers.map(
      (server) => this.#scrapes.get(server.label) ?? { server: server.label, ok: false, at: 0, durationMs: 0, functions: [], error: 'not polled yet' },
    );
  }

  /** One round over every server (those still busy from the last round are skipped). */
  pollOnce(): Promise<void> {
    return Promise.all(this.#servers.map((server) => this.#inFlight.get(server.label) ?? this.#poll(server))).then(() => undefined);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const socket of this.#sockets) socket.destroy();
  }

  #poll(server: ServerAddress): Promise<void> {
    const started = performance.now();
    const poll = queryStatus(server, this.#timeoutMs, (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    })
      .then(
        (functions) => this.#record(server, { ok: true, functions, error: null }, started),
        (error: Error) => this.#record(server, { ok: false, functions: [], error: error.message }, started),
      )
      .finally(() => this.#inFlight.delete(server.label));
    this.#inFlight.set(server.label, poll);
    return poll;
  }

  #record(server: ServerAddress, result: Pick<GearmandScrape, 'ok' | 'functions' | 'error'>, started: number): void {
    if (this.#stopped || !this.#servers.some((s) => s.label === server.label)) return;
    const previous = this.#scrapes.get(server.label);
    const scrape: GearmandScrape = { server: server.label, at: Date.now(), durationMs: Math.round((performance.now() - started) * 100) / 100, ...result };
    this.#scrapes.set(server.label, scrape);
    if (!scrape.ok && (previous === undefined || previous.ok)) {
      this.#log.warn({ event: 'gearmand-status-failed', server: server.label, reason: scrape.error }, `cannot read gearmand ${server.label} queue status: ${scrape.error}`);
    } else if (scrape.ok && previous !== undefined && !previous.ok) {
      this.#log.info({ event: 'gearmand-status-ok', server: server.label }, `reading gearmand ${server.label} queue status again`);
    }
  }
}
