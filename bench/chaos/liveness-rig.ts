/**
 * The processes of one liveness run of the chaos benchmark (hung server, poison job, one function's
 * outage): the fault endpoint, one or two real gearmands, the real daemon with one pool on all of
 * them, the feeders, and a watch on the pool's circuit breaker. Everything it starts is stopped by
 * stop(), whatever happened, a SIGSTOPped gearmand included.
 */
import { mkdirSync } from 'node:fs';
import { startGearmand, type Gearmand } from '../../test/helpers/gearmand.js';
import { startDaemon, sumCounters, waitRegistered, type Daemon, type PoolSpec } from '../e2e/daemon.js';
import { daemonProcesses, delay, livePids, readDaemonLog, waitUntil, type DaemonLog, type ProcessFigures } from '../faults/common.js';
import { FaultEndpoint } from '../faults/endpoint-control.js';
import { Feeder } from '../faults/feeder.js';

export interface RigSpec {
  dir: string;
  /** The daemon's bin/driveshaft.js (ours, or the compare build). */
  bin: string;
  /** How many gearmands; every slot connects to each. */
  servers: number;
  pools: PoolSpec[];
  logLevel: 'info' | 'warn';
  /** The daemon's --loop_timeout: its connection liveness probe waits this long, twice. */
  loopTimeoutS: number;
}

const BREAKER_POLL_MS = 250;

/**
 * The pools' breaker as the status port's `gauges` shows it, polled every 250 ms: the times it was
 * anything but closed. A state shorter than a poll can be missed; the `breaker_opened` counter is
 * the count, this is the duration.
 */
export class BreakerWatch {
  readonly changes: Array<{ atMs: number; state: string }> = [];
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  start(daemon: Daemon): void {
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      daemon
        .status('gauges')
        .then((reply) => this.#record(reply))
        .catch(() => undefined)
        .finally(() => {
          this.#busy = false;
        });
    }, BREAKER_POLL_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Milliseconds of [fromMs, toMs) during which some pool's breaker was open or half-open. */
  notClosedMs(fromMs: number, toMs: number): number {
    let total = 0;
    this.changes.forEach((change, i) => {
      if (change.state === 'closed') return;
      const end = this.changes[i + 1]?.atMs ?? toMs;
      total += Math.max(0, Math.min(end, toMs) - Math.max(change.atMs, fromMs));
    });
    return total;
  }

  #record(reply: string): void {
    const states = [...reply.matchAll(/^.+\.breaker: (\S+)$/gm)].map((m) => m[1] as string);
    const state = states.find((s) => s !== 'closed') ?? states[0] ?? 'unknown';
    if (this.changes[this.changes.length - 1]?.state !== state) this.changes.push({ atMs: Date.now(), state });
  }
}

export class LivenessRig {
  readonly spec: RigSpec;
  readonly gearmands: Gearmand[] = [];
  readonly breaker = new BreakerWatch();
  readonly feeders: Feeder[] = [];
  processesStart: ProcessFigures[] = [];
  #endpoint: FaultEndpoint | undefined;
  #daemon: Daemon | undefined;

  constructor(spec: RigSpec) {
    this.spec = spec;
  }

  get endpoint(): FaultEndpoint {
    if (this.#endpoint === undefined) throw new Error('the rig is not started');
    return this.#endpoint;
  }

  get daemon(): Daemon {
    if (this.#daemon === undefined) throw new Error('the rig is not started');
    return this.#daemon;
  }

  /** The last lines of the daemon's output, for an error report. */
  output(): string {
    return this.#daemon?.output() ?? '<the daemon was not started>';
  }

  /** Starts everything and waits until every slot is registered with every gearmand. */
  async boot(): Promise<void> {
    const { spec } = this;
    mkdirSync(spec.dir, { recursive: true });
    this.#endpoint = await FaultEndpoint.start();
    livePids.add(this.#endpoint.pid);
    for (let i = 0; i < spec.servers; i++) {
      const gearmand = await startGearmand();
      livePids.add(gearmand.pid);
      this.gearmands.push(gearmand);
    }
    const first = this.gearmands[0] as Gearmand;
    this.#daemon = await startDaemon({
      bin: spec.bin, flavour: 'ours', dir: spec.dir, gearmand: first, servers: this.gearmands,
      endpointUrl: this.#endpoint.url, pools: spec.pools, logLevel: spec.logLevel, logTo: 'stdout', loopTimeoutS: spec.loopTimeoutS,
    });
    livePids.add(this.#daemon.pid);
    for (const gearmand of this.gearmands) await waitRegistered(gearmand, this.#daemon, spec.pools, 30_000);
    await delay(500);
    this.processesStart = daemonProcesses(this.#daemon);
    this.breaker.start(this.#daemon);
  }

  /** The status port's counters summed over pools, `breaker_opened` included; {} when it did not answer. */
  async counters(): Promise<Record<string, number>> {
    try {
      return sumCounters(await this.daemon.status('counters'));
    } catch {
      return {};
    }
  }

  /** A steady background feed of `total` jobs `${prefix}-i` of `functionName` into `server`. */
  feed(server: Gearmand, functionName: string, prefix: string, total: number, rate: number): Feeder {
    const feeder = new Feeder({ port: () => server.port, functionName, prefix, total, rate });
    this.feeders.push(feeder);
    return feeder;
  }

  /**
   * Waits until every feeder is done and every server's queue of `functionNames` is empty; false
   * after `timeoutMs`. A stopped gearmand would not answer: call this after its SIGCONT.
   */
  async drain(functionNames: readonly string[], timeoutMs: number): Promise<boolean> {
    return waitUntil(async () => {
      if (this.feeders.some((f) => f.finishedAtMs === 0)) return false;
      return (await this.queued(functionNames)) === 0;
    }, timeoutMs, 100);
  }

  /** Jobs of `functionNames` queued or running in all the servers (Infinity when one does not answer). */
  async queued(functionNames: readonly string[]): Promise<number> {
    let total = 0;
    for (const gearmand of this.gearmands) {
      const status = await gearmand.status().catch(() => undefined);
      if (status === undefined) return Infinity;
      for (const line of status) if (functionNames.includes(line.function)) total += line.total;
    }
    return total;
  }

  /** Stops the daemon and reads everything it logged; its processes right before the stop. */
  async finish(): Promise<{ log: DaemonLog; processesEnd: ProcessFigures[] }> {
    this.breaker.stop();
    const processesEnd = daemonProcesses(this.daemon);
    await this.daemon.stop();
    livePids.delete(this.daemon.pid);
    return { log: readDaemonLog(this.daemon.outPath), processesEnd };
  }

  /** Stops whatever was started: feeders, the daemon, the gearmands (woken first), the endpoint. */
  async stop(): Promise<void> {
    this.breaker.stop();
    for (const feeder of this.feeders) feeder.stop();
    for (const gearmand of this.gearmands) {
      try {
        process.kill(gearmand.pid, 'SIGCONT'); // a stopped gearmand would hold SIGTERM pending
      } catch {
        // already gone
      }
    }
    if (this.#daemon !== undefined) {
      await this.#daemon.stop();
      livePids.delete(this.#daemon.pid);
    }
    for (const gearmand of this.gearmands) {
      await gearmand.stop();
      livePids.delete(gearmand.pid);
    }
    if (this.#endpoint !== undefined) {
      await this.#endpoint.stop();
      livePids.delete(this.#endpoint.pid);
    }
  }
}
