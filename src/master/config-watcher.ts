/**
 * Notices a changed jobs config file (checked every loop_timeout/2 s, the original's
 * behaviour). Only a stat() per tick: the original re-parsed the file every tick because its mtime
 * check was dead. A change of mtime, size or inode counts, so an editor
 * that replaces the file by rename is seen even when the new file has the same mtime and size.
 *
 * fs.watch is not used: it misses changes on network and overlay file systems and loses the watch when
 * the file is replaced, and the spec promises polling anyway.
 */
import { statSync } from 'node:fs';

/** What identifies one version of the file. `missing` when stat failed (with its error code). */
export type FileSignature = { mtimeMs: number; size: number; ino: number; dev: number } | { missing: string };

export function fileSignature(file: string): FileSignature {
  try {
    const stat = statSync(file);
    return { mtimeMs: stat.mtimeMs, size: stat.size, ino: stat.ino, dev: stat.dev };
  } catch (error) {
    return { missing: (error as NodeJS.ErrnoException).code ?? 'unknown error' };
  }
}

export function sameSignature(a: FileSignature, b: FileSignature): boolean {
  if ('missing' in a || 'missing' in b) return 'missing' in a && 'missing' in b && a.missing === b.missing;
  return a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino && a.dev === b.dev;
}

export interface ConfigWatcherOptions {
  file: string;
  intervalMs: number;
  /** Called once per observed change; the owner reloads and then calls accept() with what it read. */
  onChange: (signature: FileSignature) => void;
}

export class ConfigWatcher {
  readonly #options: ConfigWatcherOptions;
  #baseline: FileSignature;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: ConfigWatcherOptions, baseline: FileSignature = fileSignature(options.file)) {
    this.#options = options;
    this.#baseline = baseline;
  }

  start(): void {
    if (this.#timer !== null) return;
    // Kept ref'd on purpose: with every pool at worker_count 0 and no status port this timer is all
    // that keeps the daemon up, waiting for the edit that turns a pool on. Master.stop()
    // closes it, so it never holds a stopping process.
    this.#timer = setInterval(() => this.check(), this.#options.intervalMs);
  }

  /** One poll; public so tests need not wait for the interval. Returns whether a change was reported. */
  check(): boolean {
    const now = fileSignature(this.#options.file);
    if (sameSignature(now, this.#baseline)) return false;
    // Moved before the callback: a change is reported once, even if the reload it starts fails (an
    // invalid edit is logged once, not every tick until it is fixed).
    this.#baseline = now;
    this.#options.onChange(now);
    return true;
  }

  /** The version a reload actually read (SIGHUP reloads too): later polls compare against it. */
  accept(signature: FileSignature): void {
    this.#baseline = signature;
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
