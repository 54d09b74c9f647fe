/**
 * Shared pieces of the master tests: an in-memory logger, config builders and fast supervisor timings.
 */
import { fileURLToPath } from 'node:url';
import bunyan from 'bunyan';
import { defaultPoolExtensions } from '../../src/config/types.js';
import type { Observation } from '../../src/observe/observation.js';
import { daemonOptions as baseDaemonOptions } from '../helpers/daemon-options.js';
import type { DaemonOptions, JobsConfig, PoolConfig, ServerAddress } from '../../src/config/types.js';
import type { Logger } from '../../src/log/logger.js';
import type { SupervisorTiming } from '../../src/master/supervisor.js';

/** The compiled stand-in child (see fixtures/fake-child.ts). */
export const FAKE_CHILD = fileURLToPath(new URL('./fixtures/fake-child.js', import.meta.url));

export type LogRecord = Record<string, unknown> & { msg: string; level: number };

/** A logger that keeps every record (trace and up) in `records`. */
export function memoryLogger(): { logger: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const stream = { write: (record: LogRecord) => void records.push(record) };
  const logger = bunyan.createLogger({ name: 'driveshaft', level: 'trace', streams: [{ type: 'raw', level: 'trace', stream: stream as unknown as NodeJS.WritableStream }] });
  return { logger, records };
}

export function server(port = 4730): ServerAddress {
  return { host: '127.0.0.1', port, label: `127.0.0.1:${port}` };
}

export function pool(name: string, overrides: Partial<PoolConfig> = {}): PoolConfig {
  return {
    name,
    jobProcessingUri: 'http://127.0.0.1:1/job',
    workerCount: 2,
    jobsList: ['Sum'],
    requestFormat: 'json',
    maxRunningTimeMs: 1000,
    headers: {},
    ...defaultPoolExtensions(),
    ...overrides,
  };
}

export function jobsConfig(pools: PoolConfig[], file = '/nonexistent/jobs.json', servers: ServerAddress[] = [server()]): JobsConfig {
  return { path: file, servers, pools: Object.fromEntries(pools.map((p) => [p.name, p])) };
}

export function fastTiming(overrides: Partial<SupervisorTiming> = {}): SupervisorTiming {
  return {
    readyTimeoutMs: 5000,
    reconfigureTimeoutMs: 2000,
    statusTimeoutMs: 300,
    restartDelayMs: 20,
    restartDelayMaxMs: 100,
    restartFactor: 1.5,
    minUptimeMs: 2000,
    maxUnstableRestarts: 3,
    killGraceMs: 200,
    // The fake child sends no heartbeats: only a test that asks for it is watched closely.
    heartbeatIntervalMs: 250,
    unresponsiveAfterMs: 10_000,
    killAfterMs: 0,
    ...overrides,
  };
}

/** The seed's JSON shape of a jobs config, for writing files; `maxRunningTime` (seconds) is the pool's own max_running_time. */
export function jobsFile(servers: string[], pools: Record<string, { uri: string; count: number; jobs: string[]; maxRunningTime?: number }>): string {
  const poolsList: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(pools)) {
    poolsList[name] = { job_processing_uri: p.uri, worker_count: p.count, jobs_list: p.jobs, ...(p.maxRunningTime === undefined ? {} : { max_running_time: p.maxRunningTime }) };
  }
  return `${JSON.stringify({ gearman_servers_list: servers, pools_list: poolsList }, null, 2)}\n`;
}

/** Daemon options as the master tests run it: fast loop_timeout, no listeners, `overrides` on top. */
export function daemonOptions(jobsconfig: string, overrides: Partial<DaemonOptions> = {}): DaemonOptions {
  return baseDaemonOptions(jobsconfig, { max_running_time: 1, loop_timeout: 0.2, ...overrides });
}

/** A master snapshot for the pure view functions: fixed times and names, one server, no pool; `overrides` on top. */
export function observationOf(overrides: Partial<Observation> = {}): Observation {
  return {
    takenAt: 1_700_000_010_000,
    version: 'driveshaft 0.0.0',
    pid: 1,
    state: 'running',
    startedAt: 1_700_000_000_000,
    configFile: '/etc/driveshaft/jobs.json',
    configLoadedAt: 1_700_000_000_000,
    servers: [server()],
    pools: {},
    poolNames: [],
    children: [],
    totals: new Map(),
    reloads: { ok: 0, failed: 0 },
    childRestarts: 0,
    ...overrides,
  };
}
