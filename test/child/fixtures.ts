/**
 * Shared set-up for the child tests: settings builders and a WorkerPool started (its logger in memory)
 * against a real gearmand and a real HTTP endpoint, all cleaned up through `t.after`.
 */
import type { TestContext } from 'node:test';
import { defaultPoolExtensions } from '../../src/config/types.js';
import type { PoolConfig, ServerAddress } from '../../src/config/types.js';
import type { ChildSettings } from '../../src/ipc/settings.js';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { memoryLogger, type MemoryLogger } from '../helpers/memory-logger.js';
import { startEndpoint, type Endpoint, type EndpointHandler, type EndpointTls } from '../helpers/http-endpoint.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { waitFor } from '../helpers/wait-for.js';

export function serverOf(gearmand: Gearmand): ServerAddress {
  return { host: gearmand.host, port: gearmand.port, label: gearmand.label };
}

let poolCounter = 0;

export function makeSettings(servers: ServerAddress[], uri: string, pool: Partial<PoolConfig> = {}, extra: Partial<ChildSettings> = {}): ChildSettings {
  poolCounter++;
  return {
    pool: {
      name: pool.name ?? `Pool${poolCounter}`,
      jobProcessingUri: uri,
      workerCount: 1,
      jobsList: [`fn${poolCounter}`],
      requestFormat: 'json',
      maxRunningTimeMs: 10_000,
      headers: {},
      ...defaultPoolExtensions(),
      ...pool,
    },
    servers,
    loopTimeoutMs: 1000,
    logLevel: 'warn',
    ...extra,
  };
}

export interface Rig {
  gearmand: Gearmand;
  endpoint: Endpoint;
  pool: WorkerPool;
  settings: ChildSettings;
  client: GearmanClient;
  logger: MemoryLogger;
  /** The pool's first function name. */
  fn: string;
}

export interface RigOptions {
  pool?: Partial<PoolConfig>;
  settings?: Partial<ChildSettings>;
  handler?: EndpointHandler;
  /** An https endpoint with this certificate (and client CA for mutual TLS). */
  endpointTls?: EndpointTls;
  logLevel?: import('bunyan').LogLevel;
  /** Wait until gearmand lists this many workers for fn (default workerCount). */
  waitWorkers?: number;
}

/** gearmand + endpoint + a started WorkerPool + a client, torn down after the test. */
export async function rig(t: TestContext, options: RigOptions = {}): Promise<Rig> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const endpoint = await startEndpoint(options.handler, options.endpointTls === undefined ? {} : { tls: options.endpointTls });
  t.after(() => endpoint.close());
  const logger = memoryLogger(options.logLevel ?? 'warn');
  const settings = makeSettings([serverOf(gearmand)], endpoint.url, options.pool, options.settings);
  const pool = new WorkerPool({ log: logger.logger });
  pool.start(settings);
  t.after(() => pool.destroy());
  const fn = settings.pool.jobsList[0] as string;
  await waitForWorkers(gearmand, fn, options.waitWorkers ?? settings.pool.workerCount);
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  return { gearmand, endpoint, pool, settings, client, logger, fn };
}

/** Waits until gearmand lists `count` registered workers for `fn`. */
export async function waitForWorkers(gearmand: Gearmand, fn: string, count: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => (await gearmand.workers()).filter((w) => w.functions.includes(fn)).length === count || undefined, {
    timeoutMs,
    message: `gearmand ${gearmand.label} to list ${count} workers for ${fn}`,
  });
}
