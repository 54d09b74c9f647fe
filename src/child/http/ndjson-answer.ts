/**
 * An endpoint's streamed answer: `Content-Type: application/x-ndjson`, one JSON object per line.
 *
 * - `{"status":[numerator,denominator]}` → WORK_STATUS (what GET_STATUS / jobStatus() report)
 * - `{"data":"…"}` → WORK_DATA, `{"warning":"…"}` → WORK_WARNING (the string's UTF-8 bytes)
 * - the line with `gearman_ret` is the final answer, read exactly like a plain JSON answer; it must be
 *   the last non-blank line.
 *
 * A progress line may carry several of status, data and warning (sent in that order); other members
 * are ignored, as in the final answer. Lines are handled as they arrive, so each update reaches
 * gearmand while the endpoint is still working. Any line that breaks these rules ends the job with a
 * permanent failure naming the line: a malformed stream is an endpoint bug, not a passing fault.
 */
import type { ProgressUpdate } from '../job.js';
import { rawHeaderValue } from './raw-headers.js';

export type { ProgressUpdate };

/** The final line, parsed, with the bytes it was parsed from (response_string is cut from them). */
export interface FinalLine {
  line: Buffer;
  parsed: unknown;
}

const NEWLINE = 0x0a;
const PREVIEW_CHARS = 64;

export class NdjsonAnswer {
  /** The start of a line whose newline has not arrived yet. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  /** Lines seen so far, blank ones included (1-based numbers in reasons). */
  #lineNumber = 0;
  #final: FinalLine | null = null;
  readonly #emit: (update: ProgressUpdate) => void;

  constructor(emit: (update: ProgressUpdate) => void) {
    this.#emit = emit;
  }

  /** Feeds a body chunk; complete lines are handled now. Returns why the answer is invalid, else null. */
  push(chunk: Buffer): string | null {
    let start = 0;
    let newline = chunk.indexOf(NEWLINE, start);
    while (newline >= 0) {
      let line = chunk.subarray(start, newline);
      if (this.#partialBytes > 0) {
        this.#partial.push(line);
        line = Buffer.concat(this.#partial, this.#partialBytes + line.length);
        this.#partial = [];
        this.#partialBytes = 0;
      }
      const problem = this.#line(line);
      if (problem !== null) return problem;
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) {
      this.#partial.push(chunk.subarray(start));
      this.#partialBytes += chunk.length - start;
    }
    return null;
  }

  /** The body ended: the final line (a last line without a newline counts), or why there is none. */
  end(): FinalLine | string {
    if (this.#partialBytes > 0) {
      const line = Buffer.concat(this.#partial, this.#partialBytes);
      this.#partial = [];
      this.#partialBytes = 0;
      const problem = this.#line(line);
      if (problem !== null) return problem;
    }
    return this.#final ?? `the application/x-ndjson answer ended after ${this.#lineNumber} lines without a line with gearman_ret`;
  }

  #line(line: Buffer): string | null {
    this.#lineNumber++;
    if (isBlank(line)) return null;
    const at = `line ${this.#lineNumber} of the application/x-ndjson answer`;
    if (this.#final !== null) return `${at} follows the final line with gearman_ret (line ${this.#lineNumber - 1} or earlier)`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.toString('utf8'));
    } catch {
      return `${at} is not JSON: ${preview(line)}`;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return `${at} is not a JSON object: ${preview(line)}`;
    const members = parsed as Record<string, unknown>;
    if (Object.hasOwn(members, 'gearman_ret')) {
      this.#final = { line, parsed };
      return null;
    }
    const { status, data, warning } = members;
    if (status === undefined && data === undefined && warning === undefined) {
      return `${at} has none of gearman_ret, status, data and warning: ${preview(line)}`;
    }
    let statusUpdate: ProgressUpdate | null = null;
    if (status !== undefined) {
      if (!Array.isArray(status) || status.length !== 2 || !status.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) {
        return `${at}: status must be [numerator, denominator], two integers >= 0: ${preview(line)}`;
      }
      statusUpdate = { kind: 'status', numerator: status[0] as number, denominator: status[1] as number };
    }
    if (data !== undefined && typeof data !== 'string') return `${at}: data must be a string: ${preview(line)}`;
    if (warning !== undefined && typeof warning !== 'string') return `${at}: warning must be a string: ${preview(line)}`;
    if (statusUpdate !== null) this.#emit(statusUpdate);
    if (data !== undefined) this.#emit({ kind: 'data', data: Buffer.from(data as string, 'utf8') });
    if (warning !== undefined) this.#emit({ kind: 'warning', data: Buffer.from(warning as string, 'utf8') });
    return null;
  }
}

function isBlank(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const byte = line[i];
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
  }
  return true;
}

function preview(line: Buffer): string {
  return JSON.stringify(line.subarray(0, PREVIEW_CHARS * 4).toString('utf8').trimEnd().slice(0, PREVIEW_CHARS));
}

/** Whether a response's raw headers (the HTTP client's flat [name, value, …] Buffers) say application/x-ndjson. */
export function isNdjsonResponse(rawHeaders: readonly Buffer[]): boolean {
  const value = rawHeaderValue(rawHeaders, CONTENT_TYPE);
  if (value === null) return false;
  const semicolon = value.indexOf(';');
  return (semicolon < 0 ? value : value.slice(0, semicolon)).trim().toLowerCase() === 'application/x-ndjson';
}

const CONTENT_TYPE = Buffer.from('content-type', 'latin1');
