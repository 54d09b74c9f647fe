/**
 * `driveshaft replay`: submits the letters of a dead-letter file to gearmand again as background jobs,
 * each with its own function, unique and workload bytes, and waits for gearmand's JOB_CREATED for every
 * one. The file is only read. A malformed line is reported with its number and skipped; so is a torn
 * last line (no line end), which does not make the run incomplete: its job was handed back, not failed.
 *
 * Letters go to the first server of --servers that accepts a connection (each one skipped is reported),
 * over one connection with up to MAX_IN_FLIGHT submits outstanding: gearmand confirms them in order, so
 * when the connection is lost the letters not confirmed are the ones from the first unconfirmed line
 * on, which is what the report names, with the command that resumes there (--from-line). A letter
 * gearmand refuses (ERROR) is reported and the others go on.
 *
 * gearmand coalesces a background job with a job of the same function and unique that is still queued
 * or running: replaying a letter whose unique is still in gearmand adds no second job. The unique is
 * the endpoint's idempotency key.
 */
import { isUtf8 } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { ErrorCode, serializeError } from '../errors.js';
import { parseLetterLine, type ReplayLetter } from './letters.js';
import { parseReplayCommandLine, resumeCommand, SUBMIT_KIND, type ReplayOptions } from './options.js';
import { Submitter } from './submitter.js';

export const REPLAY_EXIT_OK = 0;
/** A bad line, a refused letter or a lost connection (a torn last line alone is not one). */
export const REPLAY_EXIT_INCOMPLETE = 1;
/** Bad options or an unreadable file: nothing was submitted. */
export const REPLAY_EXIT_USAGE = 2;

/** Submits outstanding at most, and their workload bytes: enough to hide the round trip, bounded memory. */
const MAX_IN_FLIGHT = 64;
const MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024;
const PREFIX = 'driveshaft replay: ';

export interface ReplayOutput {
  /** The --dry-run listing and the summary. */
  out(line: string): void;
  /** Bad lines, refused letters, connection problems. */
  err(line: string): void;
}

export interface ReplayReport {
  code: number;
  /** Well-formed letters in the file. */
  letters: number;
  /** Letters gearmand confirmed with JOB_CREATED (with --dry-run: letters that would be submitted). */
  replayed: number;
  filtered: number;
  badLines: number;
  /** A last line without its line end: reported and skipped (exit status unaffected). */
  tornLines: number;
  /** Letters gearmand answered with ERROR. */
  refused: number;
  /** Letters not confirmed because the connection was lost (or never submitted after that). */
  unconfirmed: number;
}

const processOutput: ReplayOutput = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${PREFIX}${line}\n`),
};

/** The `replay` subcommand: `argv` is what follows the word `replay`. Resolves with the exit status. */
export async function replayMain(argv: readonly string[], output: ReplayOutput = processOutput): Promise<number> {
  let options: ReplayOptions;
  try {
    const command = parseReplayCommandLine(argv);
    if (command.kind === 'help') {
      output.out(command.text.trimEnd());
      return REPLAY_EXIT_OK;
    }
    options = command.options;
  } catch (error) {
    output.err(serializeError(error).message);
    return REPLAY_EXIT_USAGE;
  }
  return (await replayFile(options, output)).code;
}

function selected(letter: ReplayLetter, options: ReplayOptions): boolean {
  if (options.functions.length > 0 && !options.functions.includes(letter.functionName)) return false;
  if (options.sinceMs !== null && letter.time < options.sinceMs) return false;
  if (options.untilMs !== null && letter.time >= options.untilMs) return false;
  return true;
}

function describe(letter: ReplayLetter): string {
  const unique = isUtf8(letter.unique) ? JSON.stringify(letter.unique.toString('utf8')) : `base64 ${letter.unique.toString('base64')}`;
  const context = [
    letter.timeText,
    letter.pool === null ? null : `pool ${JSON.stringify(letter.pool)}`,
    letter.attempts === null ? null : `${letter.attempts} attempts`,
    letter.reason === null ? null : `reason ${JSON.stringify(letter.reason)}`,
  ].filter((part) => part !== null);
  return `line ${letter.line}: function ${JSON.stringify(letter.functionName)}, unique ${unique}, ${letter.workload.length} workload bytes (${context.join(', ')})`;
}

/** One line of the file, without its line end; `terminated` is false for a last line that has none. */
interface FileLine {
  text: string;
  terminated: boolean;
}

function decodeLine(bytes: Buffer): string {
  // A CRLF file (edited on Windows) reads the same as an LF one.
  return (bytes.at(-1) === 0x0d ? bytes.subarray(0, -1) : bytes).toString('utf8');
}

/**
 * The file's lines. Unlike readline, it says whether the last line ended: a line without its line end
 * is a write cut short (docs/delivery.md, Dead letters and replay).
 */
async function* fileLines(input: AsyncIterable<Buffer>): AsyncGenerator<FileLine> {
  let partial: Buffer[] = [];
  for await (const chunk of input) {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, newline);
      const line = partial.length === 0 ? piece : Buffer.concat([...partial, piece]);
      partial = [];
      start = newline + 1;
      yield { text: decodeLine(line), terminated: true };
    }
    if (start < chunk.length) partial.push(chunk.subarray(start));
  }
  if (partial.length > 0) yield { text: decodeLine(Buffer.concat(partial)), terminated: false };
}

/** Reads, filters and submits (or, with --dry-run, lists) the letters of options.file. Never throws. */
export async function replayFile(options: ReplayOptions, output: ReplayOutput): Promise<ReplayReport> {
  const report: ReplayReport = { code: REPLAY_EXIT_OK, letters: 0, replayed: 0, filtered: 0, badLines: 0, tornLines: 0, refused: 0, unconfirmed: 0 };

  let file: FileHandle;
  try {
    file = await open(options.file, 'r');
  } catch (error) {
    output.err(`--file ${options.file}: cannot read: ${(error as Error).message}`);
    return { ...report, code: REPLAY_EXIT_USAGE };
  }
  // open() accepts a directory; reading it would fail only later. A pipe is fine (--file <(zcat …)).
  if ((await file.stat().catch(() => null))?.isDirectory() === true) {
    await file.close().catch(() => undefined);
    output.err(`--file ${options.file}: cannot read: is a directory`);
    return { ...report, code: REPLAY_EXIT_USAGE };
  }

  let submitter: Submitter | null = null;
  if (!options.dryRun) {
    try {
      submitter = await Submitter.connectFirst(options.servers, {
        replyTimeoutMs: options.replyTimeoutMs,
        onUnreachable: (server, reason) => output.err(`--servers: gearmand ${server.label} unreachable (${reason}); skipped`),
      });
    } catch {
      await file.close().catch(() => undefined);
      output.err(`no gearmand of --servers accepted a connection; nothing was submitted`);
      return { ...report, code: REPLAY_EXIT_INCOMPLETE };
    }
  }

  const kind = SUBMIT_KIND[options.priority];
  const inFlight = new Set<Promise<void>>();
  let inFlightBytes = 0;
  /** The connection failure that stopped the submits, and the first line gearmand did not confirm. */
  const lost: { reason: string | null; firstLine: number } = { reason: null, firstLine: Infinity };
  const unconfirmed = (line: number): void => {
    report.unconfirmed++;
    lost.firstLine = Math.min(lost.firstLine, line);
  };
  let readFailure: string | null = null;

  const submit = (active: Submitter, letter: ReplayLetter): void => {
    inFlightBytes += letter.workload.length;
    const done = active.submit(kind, letter.functionName, letter.unique, letter.workload).then(
      () => {
        report.replayed++;
      },
      (error: unknown) => {
        if ((error as { code?: unknown }).code === ErrorCode.GEARMAN_SERVER) {
          report.refused++;
          output.err(`${options.file} line ${letter.line}: ${(error as Error).message}`);
          return;
        }
        lost.reason ??= (error as Error).message;
        unconfirmed(letter.line);
      },
    );
    const tracked = done.finally(() => {
      inFlight.delete(tracked);
      inFlightBytes -= letter.workload.length;
    });
    inFlight.add(tracked);
  };

  const input = file.createReadStream({ autoClose: false });
  let lineNumber = 0;
  try {
    for await (const { text, terminated } of fileLines(input)) {
      lineNumber++;
      // A resumed run: those lines were dealt with by the run that printed --from-line.
      if (lineNumber < options.fromLine) continue;
      // An empty line carries nothing (the writer ends a line cut short by a failed write with one).
      if (text.trim() === '') continue;
      if (!terminated) {
        // The writer ends every letter with its line end and fails a job only once the whole line is
        // on disk: a last line without one is a write that failed, and its job went back to gearmand.
        report.tornLines++;
        output.err(
          `${options.file} line ${lineNumber}: torn last line (${Buffer.byteLength(text)} bytes without a line end: a write cut short, e.g. by a full disk, ` +
            `whose job was handed back to gearmand, not failed); skipped (if it is a whole letter, end it with a newline and replay it with --from-line ${lineNumber})`,
        );
        continue;
      }
      const parsed = parseLetterLine(text, lineNumber);
      if (typeof parsed === 'string') {
        report.badLines++;
        output.err(`${options.file} line ${lineNumber}: ${parsed}; skipped`);
        continue;
      }
      report.letters++;
      if (!selected(parsed, options)) {
        report.filtered++;
        continue;
      }
      if (submitter === null) {
        report.replayed++;
        output.out(`would submit ${describe(parsed)}`);
        continue;
      }
      while (inFlight.size >= MAX_IN_FLIGHT || (inFlight.size > 0 && inFlightBytes + parsed.workload.length > MAX_IN_FLIGHT_BYTES)) {
        await Promise.race(inFlight);
      }
      if (lost.reason !== null) {
        // Read on to report the bad lines and count the letters, but submit nothing more.
        unconfirmed(parsed.line);
        continue;
      }
      submit(submitter, parsed);
    }
  } catch (error) {
    readFailure = (error as Error).message;
  } finally {
    input.destroy();
    await Promise.all(inFlight);
    await submitter?.close();
    await file.close().catch(() => undefined);
  }

  const pastTheEnd = readFailure === null && options.fromLine > lineNumber && options.fromLine > 1;
  if (pastTheEnd) output.err(`--from-line ${options.fromLine}: ${options.file} has only ${lineNumber} lines; nothing was replayed`);
  if (readFailure !== null) {
    const resumeAt = Math.min(lost.firstLine, Math.max(lineNumber + 1, options.fromLine));
    output.err(`--file ${options.file}: read failed after line ${lineNumber}: ${readFailure}; to go on from there: ${resumeCommand(options, resumeAt)}`);
  }
  if (lost.reason !== null) {
    output.err(
      `stopped: ${lost.reason}; ${report.unconfirmed} letters from line ${lost.firstLine} on were not confirmed ` +
        '(those already sent may have been queued: replaying them again is coalesced only while they are still queued); ' +
        `to resume: ${resumeCommand(options, lost.firstLine)}`,
    );
  }
  const from = options.fromLine > 1 ? ` from line ${options.fromLine}` : '';
  const torn = report.tornLines > 0 ? `, ${report.tornLines} torn last line` : '';
  const counts = `${report.replayed} of ${report.letters} letters${from} (${report.filtered} skipped by filter, ${report.badLines} bad lines${torn})`;
  output.out(options.dryRun ? `dry run: would replay ${counts}` : `replayed ${counts}`);
  // A torn last line is reported but not a reason for status 1: it never was a dead letter.
  const complete = report.badLines === 0 && report.refused === 0 && lost.reason === null && readFailure === null && !pastTheEnd;
  report.code = complete ? REPLAY_EXIT_OK : REPLAY_EXIT_INCOMPLETE;
  return report;
}
