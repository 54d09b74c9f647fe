/**
 * Starts the daemon under test through its real command line, as an operator would, and stops it
 * with every process it forked. The same code runs the original C++ Driveshaft (a compare binary that
 * is not a `.js` file), which takes a log4cxx XML log config, insists on --max_running_time,
 * --loop_timeout and --status_port all being given, binds its status port on every address and runs
 * every worker as a thread of one process.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Gearmand } from '../../test/helpers/gearmand.js';
import { freePort } from '../../test/helpers/free-port.js';
import { processTree, signalAll } from './proc-stats.js';

/** Repository root, from dist/bench/e2e/. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const OUR_BIN = join(REPO_ROOT, 'bin', 'driveshaft.js');

/** Where the original's build lives, relative to the repository (it is never copied into it). */
const ORIGINAL_RELATIVE = join('..', 'shared', 'reference', 'original', 'driveshaft');

/**
 * The original C++ Driveshaft beside the repository (`../shared/reference/original/driveshaft`). In a
 * git worktree the repository's folder is elsewhere, so the main checkout's neighbour is tried next.
 * Throws, naming every place looked at, when there is none.
 */
export function originalBinary(): string {
  const roots = [REPO_ROOT];
  try {
    const common = execFileSync('git', ['rev-parse', '--path-format=absolute', '--git-common-dir'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    roots.push(dirname(common));
  } catch {
    // not a git checkout: the repository's own neighbour is the only candidate
  }
  const candidates = [...new Set(roots.map((root) => resolvePath(root, ORIGINAL_RELATIVE)))];
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(`--original: the original daemon is not at ${candidates.join(' nor ')}; set DRIVESHAFT_COMPARE_BIN to its path instead`);
  }
  return found;
}

/**
 * The original's --loop_timeout. It re-reads its config every loop_timeout/2 s, and at 1 s that loop
 * spins: measured here, 1 s cost 0.55 of a core with nothing to do, 2 s nothing (its README's value).
 */
const ORIGINAL_LOOP_TIMEOUT_S = 2;

export interface PoolSpec {
  name: string;
  slots: number;
  functionName: string;
  /** More keys of the pool's jobs-config object (e.g. `delivery`, `max_running_time`, `headers`). */
  extra?: Record<string, unknown>;
}

export interface DaemonOptions {
  /** Path of the executable; a `.js` file is run with this Node. */
  bin: string;
  /** Our daemon, any build of it (bunyan JSON log config), or the original C++ one (log4cxx XML). */
  flavour: 'ours' | 'original';
  dir: string;
  gearmand: Gearmand;
  /** Every server the pools use (gearman_servers_list); default `gearmand` alone. */
  servers?: readonly Gearmand[];
  endpointUrl: string;
  pools: readonly PoolSpec[];
  logLevel: 'warn' | 'info';
  /** Our daemon's --loop_timeout (default 1: config changes are seen within half a second). */
  loopTimeoutS?: number;
  /**
   * Where the daemon logs: a file (default), or its stdout, which goes to `daemon.out` in `dir` (the
   * fault benchmarks count the lines an operator's journal would receive).
   */
  logTo?: 'file' | 'stdout';
  /**
   * Extra Node arguments for a `.js` daemon, e.g. --cpu-prof. Not NODE_OPTIONS: Node 20 refuses
   * --cpu-prof there. cluster.fork() gives children the master's execArgv, so they profile too.
   */
  nodeArgs?: string[];
  /** Environment variables set on top of the harness's own (e.g. MALLOC_* for a memory A/B). */
  env?: Record<string, string>;
}

export interface Daemon {
  readonly pid: number;
  readonly statusPort: number;
  readonly logPath: string;
  /** The jobs config the daemon was started with (rewrite it, then SIGHUP, to reload). */
  readonly jobsPath: string;
  /** Where the daemon's stdout and stderr go (appended to across restarts in the same `dir`). */
  readonly outPath: string;
  /** Master and every descendant right now. */
  pids(): number[];
  /** Raw reply to a status-port command (one command per connection). */
  status(command: string): Promise<string>;
  /** Whether the master is still running. */
  alive(): boolean;
  /** Graceful stop (SIGTERM), then SIGKILL to every process of the tree after `graceMs`. */
  stop(graceMs?: number): Promise<{ graceful: boolean }>;
  /** Last lines of the daemon's stdout/stderr, for error reports. */
  output(): string;
}

const STATUS_TIMEOUT_MS = 5_000;

export function jobsConfig(options: Pick<DaemonOptions, 'gearmand' | 'servers' | 'endpointUrl' | 'pools'>): unknown {
  const pools: Record<string, unknown> = {};
  for (const pool of options.pools) {
    pools[pool.name] = {
      job_processing_uri: options.endpointUrl,
      worker_count: pool.slots,
      jobs_list: [pool.functionName],
      ...pool.extra,
    };
  }
  return { gearman_servers_list: (options.servers ?? [options.gearmand]).map((server) => server.label), pools_list: pools };
}

/**
 * The log4cxx config for the original: the reference folder's `logconfig-<level>.xml` beside the
 * binary when there is one (console output, which goes to `daemon.out`), else a file appender.
 */
function originalLogConfig(options: DaemonOptions, logPath: string): string {
  const beside = join(dirname(options.bin), `logconfig-${options.logLevel}.xml`);
  if (existsSync(beside)) return beside;
  const generated = join(options.dir, 'log4cxx.xml');
  writeFileSync(generated, log4cxxConfig(logPath, options.logLevel.toUpperCase()));
  return generated;
}

function log4cxxConfig(logPath: string, level: string): string {
  return `<?xml version="1.0" encoding="UTF-8" ?>
<log4j:configuration xmlns:log4j="http://jakarta.apache.org/log4j/">
  <appender name="file" class="org.apache.log4j.FileAppender">
    <param name="File" value="${logPath}"/>
    <layout class="org.apache.log4j.PatternLayout"><param name="ConversionPattern" value="%d %p %m%n"/></layout>
  </appender>
  <root><priority value="${level}"/><appender-ref ref="file"/></root>
</log4j:configuration>
`;
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const jobsPath = join(options.dir, 'jobs.json');
  const logPath = join(options.dir, 'daemon.log');
  writeFileSync(jobsPath, `${JSON.stringify(jobsConfig(options), null, 2)}\n`);
  let logConfigPath: string;
  if (options.flavour === 'ours') {
    logConfigPath = join(options.dir, 'log.json');
    const stream = options.logTo === 'stdout' ? { type: 'stdout' } : { type: 'file', path: logPath };
    const logConfig = { name: 'driveshaft', level: options.logLevel, streams: [stream] };
    writeFileSync(logConfigPath, `${JSON.stringify(logConfig)}\n`);
  } else {
    logConfigPath = originalLogConfig(options, logPath);
  }
  // The original listens on 0.0.0.0: a port free on 127.0.0.1 alone could still clash there.
  const statusPort = options.flavour === 'ours' ? await freePort() : await freePortAnyAddress();
  const args = [
    '--jobsconfig', jobsPath,
    '--logconfig', logConfigPath,
    '--loop_timeout', options.flavour === 'ours' ? String(options.loopTimeoutS ?? 1) : String(ORIGINAL_LOOP_TIMEOUT_S),
    '--max_running_time', '300',
    '--status_port', String(statusPort),
  ];
  const isJs = options.bin.endsWith('.js');
  const command = isJs ? process.execPath : options.bin;
  const argv = isJs ? [...(options.nodeArgs ?? []), options.bin, ...args] : args;
  // Dead letters of a bench's daemon stay in its run folder, not under the default (/var/lib/… as root).
  // An environment variable, not --dead_letter_dir: builds from before that option ignore it.
  const env = { DRIVESHAFT_DEAD_LETTER_DIR: join(options.dir, 'dead-letters'), ...process.env, ...options.env };
  // Output goes to a file, not a pipe: a pipe the harness reads would put the daemon's logging on the
  // harness's event loop, and a full pipe would block the daemon.
  const outPath = join(options.dir, 'daemon.out');
  const outFd = openSync(outPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, argv, { stdio: ['ignore', outFd, outFd], env, cwd: options.dir });
  } finally {
    closeSync(outFd);
  }
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const pid = child.pid ?? 0;
  let knownPids: number[] = [pid];

  const daemon: Daemon = {
    pid,
    statusPort,
    logPath,
    jobsPath,
    outPath,
    pids() {
      const tree = processTree(pid);
      if (tree.length > 0) knownPids = [...new Set([...knownPids, ...tree])];
      return tree;
    },
    status: (command) => statusCommand(statusPort, command),
    alive: () => child.exitCode === null && child.signalCode === null,
    async stop(graceMs = 10_000) {
      daemon.pids(); // remember the children before the master can no longer be asked for them
      if (!daemon.alive()) {
        signalAll(knownPids, 'SIGKILL');
        return { graceful: false };
      }
      signalAll(knownPids, 'SIGCONT'); // a frozen tree would hold SIGTERM pending
      child.kill('SIGTERM');
      const graceful = await Promise.race([exited.then(() => true), delay(graceMs).then(() => false)]);
      // Children outliving their master would keep gearmand connections and skew the next scenario.
      const left = knownPids.filter((p) => processTree(p).length > 0);
      if (left.length > 0) {
        signalAll(left, 'SIGKILL');
        await delay(100);
      }
      if (!graceful) await Promise.race([exited, delay(2_000)]);
      return { graceful: graceful && left.length === 0 };
    },
    output: () => readTail(outPath),
  };
  return daemon;
}

/** Resolves once gearmand lists `slots` worker connections registered for the pools' functions. */
export async function waitRegistered(
  gearmand: Gearmand,
  daemon: Daemon,
  pools: readonly PoolSpec[],
  timeoutMs: number,
): Promise<number> {
  const want = new Map<string, number>();
  for (const pool of pools) want.set(pool.functionName, (want.get(pool.functionName) ?? 0) + pool.slots);
  const deadline = Date.now() + timeoutMs;
  let seen = '';
  for (;;) {
    if (!daemon.alive()) {
      const output = daemon.output().trim();
      throw new Error(`daemon exited while starting: ${output.split('\n').pop() ?? '<no output>'}\n${output}`);
    }
    const workers = await gearmand.workers().catch(() => []);
    const have = new Map<string, number>();
    for (const worker of workers) for (const fn of worker.functions) have.set(fn, (have.get(fn) ?? 0) + 1);
    seen = [...want.keys()].map((fn) => `${fn}: ${have.get(fn) ?? 0}/${want.get(fn)}`).join(', ');
    if ([...want].every(([fn, n]) => (have.get(fn) ?? 0) >= n)) return workers.length;
    if (Date.now() > deadline) {
      throw new Error(`daemon did not register all slots within ${timeoutMs} ms (${seen}); output:\n${daemon.output()}`);
    }
    await delay(50);
  }
}

/** A TCP port that was free on every address (0.0.0.0) a moment ago. */
function freePortAnyAddress(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePortAnyAddress: unexpected listen address ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolvePort(port)));
    });
  });
}

function statusCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`status port ${port}: no reply to ${command} within ${STATUS_TIMEOUT_MS} ms`));
    }, STATUS_TIMEOUT_MS);
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/** `pool.name: value` lines of the `counters` reply, summed over pools per counter name. */
export function sumCounters(reply: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of reply.split(/\r?\n/)) {
    const match = /^(.*)\.([a-z_]+): (-?\d+)$/.exec(line.trim());
    if (match === null) continue;
    const name = match[2] as string;
    sums[name] = (sums[name] ?? 0) + Number(match[3]);
  }
  return sums;
}

function readTail(path: string): string {
  try {
    const fd = openSync(path, 'r');
    try {
      const buffer = Buffer.alloc(4000);
      const { size } = fstatSync(fd);
      const n = readSync(fd, buffer, 0, buffer.length, Math.max(0, size - buffer.length));
      return buffer.subarray(0, n).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '<no output>';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
