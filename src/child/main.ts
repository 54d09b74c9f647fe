/**
 * Entry of a pool's child process (forked by the master through node:cluster; `process.send` and the
 * 'message' / 'disconnect' events work as with child_process.fork).
 *
 * Lifecycle: starting → ready → draining → stopped. Protocol (src/ipc/messages.ts):
 * - `init` → `ready` as soon as the slots are started. gearmand being down does not delay readiness:
 *   the connections retry on their own. Invalid settings → `init-failed`, then exit 2.
 * - `reconfigure` → `reconfigured` | `reconfigure-failed` (the old settings stay in force).
 * - `status` → `status-reply` (before init: an empty pool).
 * - `reopen-files` (USR2) → `files-reopened` once every dead-letter file is closed for reopening.
 * - `set-pause` → `pause-set` once the pause is settled (pool-pause.ts), or `pause-failed` (not
 *   initialised, shutting down, or a malformed pause).
 * - `shutdown` → graceful drain (deadlineMs = how long running jobs may still take, from receipt) or
 *   hard destroy → `stopped`, exit 0. A later hard `shutdown` cuts a graceful drain short.
 * - `heartbeat` every heartbeatIntervalMs from `ready` on, so the master notices a child that is stopped
 *   or whose event loop is blocked without having to ask.
 * - IPC `disconnect` (the master is gone: killed, OOM): stop grabbing, let running jobs finish for the
 *   daemon's graceful deadline (4×loop_timeout), answer gearmand, exit. Nothing is forwarded any more:
 *   this child writes its own log records to stderr as JSON lines.
 * Uncaught errors are logged and the child exits 1: the master restarts it, and gearmand re-queues the
 * jobs of its dropped connections.
 */
import type { Cluster } from 'node:cluster';
import { redactUris } from '../config/redact.js';
import { ConfigError, IpcError, serializeError } from '../errors.js';
import type { ChildStatus, ChildToMaster, MasterToChild } from '../ipc/messages.js';
import { zeroCounters } from '../ipc/counters.js';
import { heartbeatIntervalMs, pauseProblems, validateSettings } from '../ipc/settings.js';
import type { ChildSettings } from '../ipc/settings.js';
import { startIdleMemoryRelease } from '../idle-memory.js';
import { createForwardingLogger } from '../log/forwarding-logger.js';
import type { Logger } from '../log/logger.js';
import { reopenDeadLetterFiles } from './delivery/dead-letters.js';
import { applyWasmTiering } from './wasm-tiering.js';
import { WorkerPool } from './worker-pool.js';

/** Exit even if a drain hangs (a bug): the master is waiting for the process to go. */
const EXIT_WATCHDOG_SLACK_MS = 5000;

let pool: WorkerPool | null = null;
let log: Logger | null = null;
let loopTimeoutMs = 10_000;
let exiting = false;
let heartbeat: NodeJS.Timeout | null = null;
/** Set once the IPC channel to the master is gone: from then on log records go to stderr. */
let orphanedAt: number | null = null;

/**
 * One bunyan-shaped record as one JSON line on stderr (what the master would have written for us),
 * under the same redaction rule the master applies to every line it writes.
 */
function writeStderr(record: Record<string, unknown>): void {
  try {
    process.stderr.write(`${redactUris(JSON.stringify(record))}\n`);
  } catch {
    // stderr closed with the master's pipe: nobody can read this child's records any more.
  }
}

function forward(record: Record<string, unknown>): void {
  if (orphanedAt !== null) writeStderr(record);
  else send({ type: 'log', record });
}

/** The child's logger, or (before `init`) one that writes to stderr: only an orphan logs that early. */
function logger(): Logger {
  return log ?? createForwardingLogger('driveshaft', 'info', writeStderr).child({ component: 'child' });
}

function startHeartbeat(intervalMs: number): void {
  if (heartbeat !== null) clearInterval(heartbeat);
  heartbeat = setInterval(() => send({ type: 'heartbeat' }), intervalMs);
  // Beats are not work: they must not keep a finished child alive.
  heartbeat.unref();
}

function runningJobs(): number {
  return pool === null ? 0 : pool.status().slots.filter((slot) => slot.job !== null).length;
}

function send(message: ChildToMaster, callback?: () => void): void {
  if (process.connected && process.send !== undefined) {
    try {
      // The callback runs once the message is handed to the channel (or failed): either way, go on.
      process.send(message, undefined, undefined, () => callback?.());
      return;
    } catch {
      // The channel closed between the check and the send: nothing to tell anyone.
    }
  }
  callback?.();
}

function emptyStatus(): ChildStatus {
  return {
    pool: '',
    pid: process.pid,
    slots: [],
    counters: zeroCounters(),
  };
}

function exit(code: number): void {
  if (orphanedAt !== null) {
    logger().warn({ event: 'orphan-exit', code, drainMs: Date.now() - orphanedAt, runningJobs: runningJobs(), ...(pool === null ? {} : { counters: pool.totals().counters }) }, `exiting (code ${code}) after losing the master`);
  }
  // Let the IPC channel flush what was queued ("stopped"), then go.
  setImmediate(() => process.exit(code));
}

function stop(mode: 'graceful' | 'hard', graceMs: number, ack: number | null): void {
  const current = pool;
  if (current === null) {
    if (ack !== null) send({ type: 'stopped', ack }, () => exit(0));
    else exit(0);
    return;
  }
  const first = !exiting;
  exiting = true;
  const done = mode === 'hard' ? current.destroy() : current.drain(Math.max(0, graceMs));
  if (first) {
    // The drain deadline plus slack: never outlive what the master expects by much.
    setTimeout(() => {
      logger().error({ event: 'drain-timeout' }, 'drain did not finish in time; exiting');
      process.exit(1);
    }, Math.min(0x7fffffff, Math.max(0, graceMs) + 2 * loopTimeoutMs + EXIT_WATCHDOG_SLACK_MS)).unref();
  }
  void done.then(() => {
    // The final totals ride along: jobs finished since the master's last status poll still count.
    if (ack !== null) send({ type: 'stopped', ack, ...current.totals() }, () => exit(0));
    else exit(0);
  });
}

function onMessage(raw: unknown): void {
  if (typeof raw !== 'object' || raw === null) return;
  const message = raw as MasterToChild;
  switch (message.type) {
    case 'init': {
      if (pool !== null) {
        send({ type: 'init-failed', ack: message.seq, error: serializeError(new IpcError('already initialised')) });
        return;
      }
      let settings: ChildSettings;
      try {
        settings = validateSettings(message.settings);
        log = createForwardingLogger('driveshaft', settings.logLevel, forward).child({ pool: settings.pool.name });
        loopTimeoutMs = settings.loopTimeoutMs;
        // Before the first HTTP connection compiles undici's parser (src/child/wasm-tiering.ts).
        applyWasmTiering(settings.pool.workerCount);
        const created = new WorkerPool({ log });
        created.start(settings);
        pool = created;
      } catch (error) {
        send({ type: 'init-failed', ack: message.seq, error: serializeError(error) }, () => exit(2));
        return;
      }
      send({ type: 'ready', ack: message.seq });
      startHeartbeat(settings.heartbeatIntervalMs ?? heartbeatIntervalMs(settings.loopTimeoutMs));
      // After the slots have connected and after every burst of jobs: see src/idle-memory.ts.
      startIdleMemoryRelease({ onRelease: (before, after) => log?.debug({ event: 'memory-released', heapBefore: before, heapAfter: after }, 'released heap memory after going idle') });
      return;
    }
    case 'reconfigure': {
      if (pool === null || exiting) {
        send({ type: 'reconfigure-failed', ack: message.seq, error: serializeError(new IpcError(exiting ? 'the pool is shutting down' : 'not initialised')) });
        return;
      }
      try {
        const settings = validateSettings(message.settings);
        pool.reconfigure(settings);
        loopTimeoutMs = settings.loopTimeoutMs;
        startHeartbeat(settings.heartbeatIntervalMs ?? heartbeatIntervalMs(settings.loopTimeoutMs));
      } catch (error) {
        log?.error({ err: error }, 'reconfigure failed; the previous settings stay in force');
        send({ type: 'reconfigure-failed', ack: message.seq, error: serializeError(error) });
        return;
      }
      send({ type: 'reconfigured', ack: message.seq });
      return;
    }
    case 'status':
      send({ type: 'status-reply', ack: message.seq, status: pool === null ? emptyStatus() : pool.status() });
      return;
    case 'reopen-files': {
      const ack = message.seq;
      void reopenDeadLetterFiles().then(
        (files) => send({ type: 'files-reopened', ack, files }),
        // reopen() only closes (the next write opens): it does not fail, but the master must get a reply.
        (error: unknown) => {
          log?.error({ err: error }, 'cannot reopen the dead-letter files');
          send({ type: 'files-reopened', ack, files: [] });
        },
      );
      return;
    }
    case 'set-pause': {
      const ack = message.seq;
      const current = pool;
      const problems = pauseProblems(message.pause, 'pause');
      if (current === null || exiting || problems.length > 0) {
        const error = problems.length > 0 ? new ConfigError(problems) : new IpcError(exiting ? 'the pool is shutting down' : 'not initialised');
        send({ type: 'pause-failed', ack, error: serializeError(error) });
        return;
      }
      current.setPause(message.pause).then(
        (applied) => send({ type: 'pause-set', ack, ...applied }),
        (error: unknown) => send({ type: 'pause-failed', ack, error: serializeError(error) }),
      );
      return;
    }
    case 'shutdown':
      log?.info({ mode: message.mode, deadlineMs: message.deadlineMs }, 'shutdown requested');
      stop(message.mode === 'hard' ? 'hard' : 'graceful', message.deadlineMs, message.seq);
      return;
    default:
      // An unknown message is a version mismatch, not a reason to crash.
      log?.warn({ type: (message as { type?: unknown }).type }, 'ignoring an unknown IPC message');
  }
}

process.on('message', onMessage);
send({ type: 'hello' });

// node:cluster's worker side listens for 'disconnect' before this module runs and calls process.exit(0)
// unless the disconnect was asked for (worker.exitedAfterDisconnect): a child whose master was killed
// would vanish mid-job, and gearmand would hand its running jobs out a second time. Marking the
// disconnect as expected, from a listener that runs before cluster's, keeps the process for the drain.
// Only a process with an IPC channel can be a cluster worker; in one, Node's own bootstrap has loaded
// node:cluster already (to set up the worker), so asking for it here costs nothing, and a module load
// without a channel (the footprint test) does not load it at all.
if (process.connected) {
  // getBuiltinModule returns the CommonJS exports: the cluster object itself, not a module namespace.
  const cluster = process.getBuiltinModule('node:cluster') as unknown as Cluster;
  process.prependListener('disconnect', () => {
    if (cluster.worker !== undefined) cluster.worker.exitedAfterDisconnect = true;
  });
}

process.on('disconnect', () => {
  // A child that loses the master exits on its own, but its running jobs are finished first and
  // answered to gearmand: dropping them would make gearmand run them again.
  orphanedAt = Date.now();
  if (heartbeat !== null) clearInterval(heartbeat);
  // With the master gone, its end of our stderr pipe may be gone too: a write error must not crash us.
  process.stderr.on('error', () => undefined);
  const deadlineMs = 4 * loopTimeoutMs;
  logger().warn(
    { event: 'master-lost', runningJobs: runningJobs(), deadlineMs, alreadyStopping: exiting },
    exiting ? 'lost the master while stopping; finishing the stop' : `lost the master; stopped grabbing jobs, running jobs get ${deadlineMs} ms, then the child exits`,
  );
  // A stop already under way keeps its own (master-given) deadline.
  if (!exiting) stop('graceful', deadlineMs, null);
});

process.on('uncaughtException', (error) => {
  try {
    log?.fatal({ err: error }, 'uncaught exception; the child exits');
  } finally {
    if (log === null && orphanedAt === null) process.stderr.write(`driveshaft child: uncaught exception: ${error.stack ?? String(error)}\n`);
    // Give the log record a moment to cross the IPC channel.
    setTimeout(() => process.exit(1), 50).unref();
  }
});

process.on('unhandledRejection', (reason) => {
  log?.error({ err: reason }, 'unhandled promise rejection');
});

// Signals meant for the daemon go to the master, which tells its children what to do over IPC. A
// terminal's Ctrl-C or a `kill -HUP` of the process group also reaches the children: ignore those.
// SIGTERM is honoured (systemd's control-group kill sends it to every process): a graceful drain as
// the master's own (4×loop_timeout); one that arrives while already stopping stops hard. Without a master nothing is ignored.
if (process.connected) {
  for (const signal of ['SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGQUIT'] as const) {
    process.on(signal, () => undefined);
  }
  process.on('SIGTERM', () => {
    // While already stopping (e.g. the master escalating after its deadline) it means: now.
    if (exiting) stop('hard', 0, null);
    else stop('graceful', 4 * loopTimeoutMs, null);
  });
}
