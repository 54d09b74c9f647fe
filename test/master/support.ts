/**
 * Shared pieces of the master tests: config builders and fast supervisor timings.
 */
import { fileURLToPath } from 'node:url';
import { defaultPoolExtensions } from '../../src/config/types.js';
import { zeroCounters } from '../../src/ipc/counters.js';
import type { ChildStatus } from '../../src/ipc/messages.js';
import type { ChildObservation, Observation } from '../../src/observe/observation.js';
import { daemonOptions as baseDaemonOptions } from '../helpers/daemon-options.js';
import type { DaemonOptions, JobsConfig, PoolConfig, ServerAddress } from '../../src/config/types.js';
import type { SupervisorTiming } from '../../src/master/supervisor.js';

/** The compiled stand-in child (see fixtures/fake-child.ts). */
export const FAKE_CHILD = fileURLToPath(new URL('./fixtures/fake-child.js', import.meta.url));

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

/**
 * A running pool child in a snapshot, answering its status poll: one idle slot `<pid>-1` and zero
 * counters unless `status` says otherwise; `overrides` on the child itself (retiring, restarts…).
 */
export function runningChild(name: string, pid: number, status: Partial<ChildStatus> = {}, overrides: Partial<ChildObservation> = {}): ChildObservation {
  return {
    pool: name,
    state: 'running',
    pid,
    restarts: 0,
    failReason: null,
    retiring: false,
    status: { pool: name, pid, slots: [{ id: `${pid}-1`, stopping: false, job: null, connectedServers: 1 }], counters: zeroCounters(), ...status },
    statusError: null,
    ...overrides,
  };
}
