/**
 * USR2 (docs/operations.md, Signals and reload): reopen log files after logrotate moved them away.
 *
 * bunyan's own reopenFileStreams() cannot be used: it calls WriteStream.destroySoon(), which
 * fs.WriteStream no longer has, so it throws; and it only updates the logger it is called on, while
 * every `logger.child(...)` holds copies of the stream entries that keep writing to the old stream.
 * So, before any child logger exists, each file entry's stream is swapped for a ReopenableFile: one
 * object that all the copies share, whose target file can be reopened underneath it.
 */
import type { WriteStream } from 'node:fs';
import { Writable } from 'node:stream';
import { logStreamEntries, openLogFile } from '../log/bunyan-logger.js';
import type { Logger } from '../log/logger.js';

export class ReopenableFile extends Writable {
  readonly path: string;
  #current: WriteStream;

  constructor(file: string, current: WriteStream) {
    super({ decodeStrings: false });
    this.path = file;
    this.#current = current;
    this.#watch(current);
  }

  /** Opens the path again (a new file if it was moved); records in flight finish in the old one. */
  reopen(): void {
    const old = this.#current;
    this.#current = openLogFile(this.path);
    this.#watch(this.#current);
    old.end();
  }

  override _write(chunk: string | Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#current.write(chunk, encoding, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#current.end(() => callback());
  }

  #watch(stream: WriteStream): void {
    // A log file that cannot be written must not take the daemon down (bunyan would re-emit the error
    // on the logger, which throws without a listener); say it once on stderr instead.
    stream.once('error', (error) => process.stderr.write(`driveshaft: log file ${this.path}: ${error.message}\n`));
  }
}

/** Wraps every file stream of `logger` in a ReopenableFile. Call before creating any child logger. */
export function makeFileStreamsReopenable(logger: Logger): void {
  for (const entry of logStreamEntries(logger)) {
    if (entry.type !== 'file' || entry.path === undefined || entry.stream instanceof ReopenableFile) continue;
    // createLogger opened a 'file' entry's stream with openLogFile (fs.createWriteStream).
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    entry.stream = new ReopenableFile(entry.path, entry.stream as WriteStream);
  }
}

/** Reopens every wrapped file stream; returns their paths. */
export function reopenLogFiles(logger: Logger): string[] {
  const reopened: string[] = [];
  for (const entry of logStreamEntries(logger)) {
    if (entry.stream instanceof ReopenableFile) {
      entry.stream.reopen();
      reopened.push(entry.stream.path);
    }
  }
  return reopened;
}
