/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) for the job POSTs: every job is one trace,
 * every attempt of it one span. The trace id stays the same across a job's retries, the parent id
 * (the span of the attempt) is new for each POST, so an endpoint's tracer shows a redelivery as a
 * sibling span of the same trace.
 *
 * Ids come from a pool of random bytes refilled 4 KiB at a time: one randomFillSync per ~170 jobs
 * instead of one per job (see the figures in docs/performance.md, Performance). They are fully
 * random, not a prefix plus a counter, because samplers (OpenTelemetry's TraceIdRatioBased) compare
 * the low bytes of the trace id against a threshold and a counter there would bias them.
 */
import { randomFillSync } from 'node:crypto';

/** The traceparent version this daemon writes. */
const VERSION = '00';
/** Sampled: the daemon records nothing itself, but a parent-based sampler at the endpoint keeps the span. */
export const SAMPLED_FLAGS = '01';
const TRACE_ID_BYTES = 16;
const SPAN_ID_BYTES = 8;
const POOL_BYTES = 4096;
const ALL_ZERO_TRACE = '0'.repeat(TRACE_ID_BYTES * 2);
const ALL_ZERO_SPAN = '0'.repeat(SPAN_ID_BYTES * 2);

const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolOffset = POOL_BYTES;

function randomHex(bytes: number): string {
  if (poolOffset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

/** 32 lower-case hex digits, random, never all zero (the spec's invalid value). */
export function newTraceId(): string {
  let id = randomHex(TRACE_ID_BYTES);
  while (id === ALL_ZERO_TRACE) id = randomHex(TRACE_ID_BYTES);
  return id;
}

/** 16 lower-case hex digits, random, never all zero. */
export function newSpanId(): string {
  let id = randomHex(SPAN_ID_BYTES);
  while (id === ALL_ZERO_SPAN) id = randomHex(SPAN_ID_BYTES);
  return id;
}

/** A job's trace: its id and the trace-flags every attempt's traceparent carries. */
export interface JobTrace {
  traceId: string;
  flags: string;
}

/** A new trace, for a job that brings none. */
export function newJobTrace(): JobTrace {
  return { traceId: newTraceId(), flags: SAMPLED_FLAGS };
}

/** The traceparent header of one attempt: the job's trace, a new span. */
export function traceparentFor(trace: JobTrace): string {
  return `${VERSION}-${trace.traceId}-${newSpanId()}-${trace.flags}`;
}

const HEX_DIGITS = /^[0-9a-f]+$/;

/**
 * The trace of a traceparent value, or null when it is not a valid one. Version 00 must be exactly
 * 55 characters; a later version (not ff) may append fields after a dash, which are ignored, and only
 * its sampled flag is kept (the spec's rule for versions a parser does not know). Upper-case hex, an
 * all-zero trace or parent id, and version ff are invalid.
 */
export function parseTraceparent(value: string): JobTrace | null {
  if (value.length < 55 || value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return null;
  const version = value.slice(0, 2);
  if (!HEX_DIGITS.test(version) || version === 'ff') return null;
  if (version === VERSION ? value.length !== 55 : value.length > 55 && value[55] !== '-') return null;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  let flags = value.slice(53, 55);
  if (!HEX_DIGITS.test(traceId) || !HEX_DIGITS.test(parentId) || !HEX_DIGITS.test(flags)) return null;
  if (traceId === ALL_ZERO_TRACE || parentId === ALL_ZERO_SPAN) return null;
  if (version !== VERSION) flags = (Number.parseInt(flags, 16) & 1) === 1 ? '01' : '00';
  return { traceId, flags };
}

/**
 * The trace named by the string member `field` of a JSON-object workload, or null: not JSON, not an
 * object, no such string member, or not a valid traceparent. The whole workload is parsed, so this
 * runs only for pools that set trace_parent_field; a workload that does not start with `{` (after
 * whitespace) is not parsed at all.
 */
export function traceFromWorkload(workload: Buffer, field: string): JobTrace | null {
  let i = 0;
  while (i < workload.length && (workload[i] === 0x20 || workload[i] === 0x0a || workload[i] === 0x0d || workload[i] === 0x09)) i++;
  if (workload[i] !== 0x7b) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(workload.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const value = Object.hasOwn(parsed, field) ? (parsed as Record<string, unknown>)[field] : undefined;
  return typeof value === 'string' ? parseTraceparent(value) : null;
}
