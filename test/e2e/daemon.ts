/**
 * Runs the real CLI (`node bin/driveshaft.js …`) for end-to-end tests: collects its JSON log lines from
 * stdout so tests can wait for events ("started", "reloaded") instead of sleeping, talks to its status
 * port, and always kills it (and its children) when the test ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

export { isAlive } from '../helpers/process.js';

/** dist/test/e2e/daemon.js → bin/driveshaft.js */
export const BIN = fileURLToPath(new URL('../../../bin/driveshaft.js', import.meta.url));

/**
 * Every daemon a test starts with execFile and process.env keeps its default dead letters
 * (--dead_letter_dir) in a folder of this test process, not in /var/lib/driveshaft or the user's
 * home (spawnDaemon gives each daemon a folder of its own). 0755, so that a --user daemon's pool
 * processes can reach the folder the master creates in it.
 */
if (process.env.DRIVESHAFT_DEAD_LETTER_DIR === undefined) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'driveshaft-test-dead-letters-'));
  chmodSync(root, 0o755);
  process.env.DRIVESHAFT_DEAD_LETTER_DIR = path.join(root, 'dead-letters');
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
}

export type LogRecord = Record<string, unknown> & { msg: string; level: number; pid: number };

export interface Daemon {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly logs: LogRecord[];
  /** Non-JSON stdout lines and all of stderr. */
  readonly output: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly exitInfo: () => { code: number | null; signal: NodeJS.Signals | null } | null;
  waitForLog(predicate: (r: LogRecord) => boolean, message: string, timeoutMs?: number): Promise<LogRecord>;
  /** Counts matching records (for "no second reload" checks). */
  count(predicate: (r: LogRecord) => boolean): number;
}

/** Spawns the CLI with `args` (`bin`: another copy of bin/driveshaft.js). Does not wait for anything; see startServing. */
export function spawnDaemon(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}, bin = BIN, node = process.execPath): Daemon {
  // A folder of its own per daemon: one started with --user must find none left by a root daemon.
  const deadLetterRoot = tempDir(t);
  chmodSync(deadLetterRoot, 0o755);
  const ownDeadLetterDir = { DRIVESHAFT_DEAD_LETTER_DIR: path.join(deadLetterRoot, 'dead-letters') };
  const proc = spawn(node, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...ownDeadLetterDir, ...env } });
  const logs: LogRecord[] = [];
  let other = '';
  let pending = '';
  let info: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  proc.stdout?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as LogRecord);
      } catch {
        other += `${line}\n`;
      }
    }
  });
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => (other += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      info = { code, signal };
      resolve(info);
    }),
  );
  t.after(async () => {
    if (info !== null) return;
    // Hard stop first so children go too; SIGKILL if that does not end it.
    proc.kill('SIGQUIT');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  const daemon: Daemon = {
    proc,
    pid: proc.pid as number,
    logs,
    output: () => other,
    exited,
    exitInfo: () => info,
    waitForLog: (predicate, message, timeoutMs = 15_000) =>
      waitFor(
        () => {
          const found = logs.find(predicate);
          if (found !== undefined) return found;
          if (info !== null) throw new Error(`daemon exited (${JSON.stringify(info)}) before: ${message}\n${other}`);
          return undefined;
        },
        { timeoutMs, message },
      ),
    count: (predicate) => logs.filter(predicate).length,
  };
  return daemon;
}

/** Spawns the CLI and waits for its "started" log line. */
export async function startServing(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}, bin = BIN, node = process.execPath): Promise<Daemon> {
  const daemon = spawnDaemon(t, args, env, bin, node);
  await daemon.waitForLog((r) => r.event === 'started', 'the daemon to start');
  return daemon;
}

/** One status-port exchange: sends `text` as is, returns everything until the server closes. */
export function statusExchange(port: number, text: string | Buffer, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let reply = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (reply += d));
    socket.on('error', reject);
    socket.on('close', () => resolve(reply));
    socket.on('connect', () => socket.write(text));
    socket.setTimeout(15_000, () => socket.destroy(new Error('status exchange timed out')));
  });
}

/** Parses `name: value` lines (counters, gauges). */
export function nameValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\r\n')) {
    const match = /^([^:]+): (-?\d+)$/.exec(line);
    if (match !== null) out.set(match[1] as string, Number(match[2]));
  }
  return out;
}

/** One `threads` line, field by field. */
export interface ThreadLine {
  id: string;
  pool: string;
  stopping: string;
  state: string;
}

export function parseThreads(text: string): ThreadLine[] {
  if (text === '') return [];
  if (!text.endsWith('\r\n')) throw new Error(`threads reply does not end with CRLF: ${JSON.stringify(text)}`);
  return text
    .slice(0, -2)
    .split('\r\n')
    .map((line) => {
      const fields = line.split('\t');
      if (fields.length !== 4) throw new Error(`threads line without 4 fields: ${JSON.stringify(line)}`);
      const [id, pool, stopping, state] = fields as [string, string, string, string];
      return { id, pool, stopping, state };
    });
}

