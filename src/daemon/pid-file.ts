/**
 * The --pid_file (docs/configuration.md, Options): refuse to start when it names a live process, take over a stale one, write
 * atomically, remove on exit.
 *
 * The file is written to a temporary name and then hard-linked into place: link() fails when the target
 * exists, so two daemons started at once cannot both win, and a reader never sees a half-written file.
 * A stale file (its process is gone, or it holds no pid) is removed and the link retried.
 */
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PidFileError } from '../errors.js';

const MAX_ATTEMPTS = 3;

export type PidOwner = { kind: 'live'; pid: number } | { kind: 'stale'; pid: number | null };

/** Whether `pid` names a running process (EPERM means it runs under another user: still live). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // kill(0) succeeds on a zombie: a crashed daemon its parent has not reaped yet. In a container whose
  // init never reaps, that stale pid file would otherwise block every restart.
  return !isZombie(pid);
}

/** True when /proc says `pid` has exited but is not reaped (state Z). False where /proc is absent. */
export function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ")": the state is the
  // first field after the LAST ")".
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}

/** Reads the pid in `file`; null when the file holds no pid. Throws the fs error (ENOENT…) as is. */
export function readPid(file: string): number | null {
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9]{1,10}$/.test(text)) return null;
  const pid = Number(text);
  return pid > 0 ? pid : null;
}

export class PidFile {
  readonly path: string;
  readonly #pid: number;
  #written = false;

  private constructor(file: string, pid: number) {
    this.path = file;
    this.#pid = pid;
  }

  /**
   * Writes `pid` (default: this process) to `file`. Throws PidFileError when the file names another live
   * process or cannot be written. `onStale` hears about a stale file that was taken over.
   */
  static acquire(file: string, options: { pid?: number; onStale?: (pid: number | null) => void } = {}): PidFile {
    const pid = options.pid ?? process.pid;
    const pidFile = new PidFile(file, pid);
    const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${pid}.${Date.now()}.tmp`);
    try {
      writeFileSync(temporary, `${pid}\n`, { mode: 0o644, flag: 'wx' });
    } catch (error) {
      throw new PidFileError(`${file}: cannot write pid file: ${(error as Error).message}`, { cause: error });
    }
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          linkSync(temporary, file);
          pidFile.#written = true;
          return pidFile;
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code !== 'EEXIST' || attempt >= MAX_ATTEMPTS) {
            throw new PidFileError(`${file}: cannot write pid file: ${(error as Error).message}`, { cause: error });
          }
        }
        const owner = PidFile.owner(file, pid);
        if (owner === null) continue; // vanished meanwhile: link again
        if (owner.kind === 'live') {
          throw new PidFileError(`${file}: pid file names process ${owner.pid}, which is running; stop it first or remove the file`);
        }
        options.onStale?.(owner.pid);
        try {
          unlinkSync(file);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
            throw new PidFileError(`${file}: cannot remove stale pid file: ${(error as Error).message}`, { cause: error });
          }
        }
      }
    } finally {
      try {
        unlinkSync(temporary);
      } catch {
        // Already gone; nothing to clean.
      }
    }
  }

  /** Who holds `file`: null when it does not exist. Our own pid counts as stale (a reused pid). */
  static owner(file: string, ownPid: number = process.pid): PidOwner | null {
    let pid: number | null;
    try {
      pid = readPid(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new PidFileError(`${file}: cannot read pid file: ${(error as Error).message}`, { cause: error });
    }
    if (pid !== null && pid !== ownPid && isProcessAlive(pid)) return { kind: 'live', pid };
    return { kind: 'stale', pid };
  }

  /**
   * Removes the file if it still holds our pid (another daemon may have taken a file we thought stale).
   * Synchronous so it can run from an 'exit' handler. Idempotent; returns whether it removed the file.
   */
  release(): boolean {
    if (!this.#written) return false;
    this.#written = false;
    try {
      if (readPid(this.path) !== this.#pid) return false;
      unlinkSync(this.path);
      return true;
    } catch {
      // Gone already, or no longer ours to remove (privileges dropped): a stale file is taken over next time.
      return false;
    }
  }
}
