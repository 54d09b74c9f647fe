/**
 * Reading one line of a dead-letter file (the format src/child/delivery/dead-letters.ts writes) back into the
 * bytes to submit. Only what a submit needs is required (time, function, unique, workload); the other
 * fields are shown by --dry-run when present and checked only for their type.
 */
import { isUtf8 } from 'node:buffer';
import type { DeadLetterRecord } from '../child/delivery/dead-letters.js';
import { parseIsoTime } from './options.js';

export interface ReplayLetter {
  /** 1-based line number in the file. */
  line: number;
  /** ms since the epoch. */
  time: number;
  timeText: string;
  functionName: string;
  unique: Buffer;
  workload: Buffer;
  pool: string | null;
  attempts: number | null;
  reason: string | null;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PREVIEW_MAX = 60;

function decodeBase64(text: string): Buffer | null {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : null;
}

function preview(value: unknown): string {
  const text = value === undefined ? 'nothing' : JSON.stringify(value);
  return text.length > PREVIEW_MAX ? `${text.slice(0, PREVIEW_MAX - 1)}…` : text;
}

/** The letter on this line, or what is wrong with it (one phrase, without the line number). */
export function parseLetterLine(text: string, line: number): ReplayLetter | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `not JSON (${(error as Error).message})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `expected a JSON object, got ${preview(value)}`;
  const record = value as Partial<Record<keyof DeadLetterRecord, unknown>>;

  if (typeof record.time !== 'string') return `"time": expected an ISO 8601 time, got ${preview(record.time)}`;
  const time = parseIsoTime(record.time);
  if (time === null) return `"time": expected an ISO 8601 time, got ${preview(record.time)}`;

  const functionName = record.function;
  if (typeof functionName !== 'string' || functionName === '' || functionName.includes('\0')) {
    return `"function": expected a non-empty function name without NUL bytes, got ${preview(functionName)}`;
  }

  if (typeof record.unique !== 'string') return `"unique": expected a string, got ${preview(record.unique)}`;
  let unique: Buffer = Buffer.from(record.unique, 'utf8');
  if (record.unique_base64 !== undefined) {
    const bytes = typeof record.unique_base64 === 'string' ? decodeBase64(record.unique_base64) : null;
    if (bytes === null) return `"unique_base64": expected base64, got ${preview(record.unique_base64)}`;
    unique = bytes;
  } else if (!isUtf8(unique)) {
    // Cannot happen for a string from JSON.parse (lone surrogates become U+FFFD), kept as a guard.
    return '"unique": not valid UTF-8 and no "unique_base64" given';
  }
  // The unique is a NUL-terminated field of SUBMIT_JOB: a NUL would cut it and shift the workload.
  if (unique.includes(0)) return '"unique": contains a NUL byte, which a submit cannot carry';

  if (typeof record.workload !== 'string') return `"workload": expected base64, got ${preview(record.workload)}`;
  const workload = decodeBase64(record.workload);
  if (workload === null) return `"workload": expected base64, got ${preview(record.workload)}`;

  for (const key of ['pool', 'reason', 'handle', 'server'] as const) {
    if (record[key] !== undefined && typeof record[key] !== 'string') return `"${key}": expected a string, got ${preview(record[key])}`;
  }
  if (record.attempts !== undefined && (typeof record.attempts !== 'number' || !Number.isInteger(record.attempts) || record.attempts < 0)) {
    return `"attempts": expected a whole number, got ${preview(record.attempts)}`;
  }

  return {
    line,
    time,
    timeText: record.time,
    functionName,
    unique,
    workload,
    pool: typeof record.pool === 'string' ? record.pool : null,
    attempts: typeof record.attempts === 'number' ? record.attempts : null,
    reason: typeof record.reason === 'string' ? record.reason : null,
  };
}
