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
 * - `shutdown` → graceful drain (deadlineMs = how long running jobs may still take, from receipt) or
 *   hard destroy → `stopped`, exit 0. A later hard `shutdown` cuts a graceful drain short.
 * - IPC `disconnect` (the master is gone, SPEC §5): drain with a short deadline, exit.
 * Uncaught errors are logged and the child exits 1: the master restarts it, and gearmand re-queues the
 * jobs of its dropped connections.
 */
import { serializeError } from '../errors.js';
import { zeroCounters } from '../ipc/messages.js';
import type { ChildSettings, ChildStatus, ChildToMaster, MasterToChild } from '../ipc/messages.js';
import { createForwardingLogger } from '../forwarding-logger.js';
import type { Logger } from '../log.js';
import { reopenDeadLetterFiles } from './dead-letters.js';
import { WorkerPool, validateSettings } from './worker-pool.js';

/** After losing the master: running jobs get this long at most (bounded by 2×loop_timeout). */
const ORPHAN_DRAIN_MAX_MS = 5000;
/** Exit even if a drain hangs (a bug): the master is waiting for the process to go. */
const EXIT_WATCHDOG_SLACK_MS = 5000;

let pool: WorkerPool | null = null;
let log: Logger | null = null;
let loopTimeoutMs = 10_000;
let exiting = false;

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
      log?.error('drain did not finish in time; exiting');
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
        send({ type: 'init-failed', ack: message.seq, error: { name: 'Error', code: 'DS_IPC', message: 'already initialised' } });
        return;
      }
      let settings: ChildSettings;
      try {
        settings = validateSettings(message.settings);
        log = createForwardingLogger('driveshaft', settings.logLevel, (record) => send({ type: 'log', record })).child({ pool: settings.pool.name });
        loopTimeoutMs = settings.loopTimeoutMs;
        const created = new WorkerPool({ log });
        created.start(settings);
        pool = created;
      } catch (error) {
        send({ type: 'init-failed', ack: message.seq, error: serializeError(error) }, () => exit(2));
        return;
      }
      send({ type: 'ready', ack: message.seq });
      return;
    }
    case 'reconfigure': {
      if (pool === null || exiting) {
        send({ type: 'reconfigure-failed', ack: message.seq, error: { name: 'Error', code: 'DS_IPC', message: exiting ? 'the pool is shutting down' : 'not initialised' } });
        return;
      }
      try {
        const settings = validateSettings(message.settings);
        pool.reconfigure(settings);
        loopTimeoutMs = settings.loopTimeoutMs;
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

process.on('disconnect', () => {
  // SPEC §5: a child that loses the master exits on its own. Stop grabbing at once and give running
  // jobs a short while: nobody is left to report to, and a new master may already be starting.
  stop('graceful', Math.min(ORPHAN_DRAIN_MAX_MS, 2 * loopTimeoutMs), null);
});

process.on('uncaughtException', (error) => {
  try {
    log?.fatal({ err: error }, 'uncaught exception; the child exits');
  } finally {
    if (log === null) process.stderr.write(`driveshaft child: uncaught exception: ${error.stack ?? String(error)}\n`);
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
