/**
 * Codec micro-benchmarks: src/codec's Parser and encoders, beside gearman-packet's Parser measured in
 * the same run on the same bytes. Run with `npm run bench:codec`; see bench/README.md for how to read it.
 *
 * Every figure is the median of ROUNDS timed rounds after WARMUP_ROUNDS untimed ones; a round runs for
 * about ROUND_MS. What is compared runs interleaved, round by round, and ratios are medians of per-round
 * ratios. Absolute numbers depend on the (shared, noisy) machine; the ratios are what to compare.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable, type Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  Magic,
  PacketType,
  Parser,
  encodeCanDo,
  encodeJobAssignUniq,
  encodePacket,
  encodeWorkComplete,
  encodeWorkCompleteHead,
  type Packet,
} from '../src/codec/index.js';

const ROUND_MS = 80;
const WARMUP_ROUNDS = 3;
const ROUNDS = 9;
const KIB = 1024;
const MIB = 1024 * KIB;

// ── Inputs ────────────────────────────────────────────────────────────────────────────────────────

const HANDLE = 'H:worker-host.example:1234567';
const FUNCTION_NAME = 'resize_image';
const UNIQUE = 'c5b0f1a2-9d4e-4e77-8c1d-2b7f0e9a6d31';

/** Deterministic bytes covering every value, NULs included: workloads are binary. */
function binary(size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buffer[i] = (i * 131 + 7) & 0xff;
  return buffer;
}

function jobAssignUniq(workloadSize: number): Buffer {
  return encodePacket(Magic.RES, PacketType.JOB_ASSIGN_UNIQ, [HANDLE, FUNCTION_NAME, UNIQUE, binary(workloadSize)]);
}

/** Splits `bytes` into `parts` chunks of about equal size, each a fresh buffer (as a socket delivers). */
function splitEven(bytes: Buffer, parts: number): Buffer[] {
  const chunks: Buffer[] = [];
  const step = Math.ceil(bytes.length / parts);
  for (let start = 0; start < bytes.length; start += step) chunks.push(Buffer.from(bytes.subarray(start, start + step)));
  return chunks;
}

interface ParseCase {
  name: string;
  /** One unit of input: these chunks, pushed in order, hold `packets` whole packets. */
  chunks: Buffer[];
  packets: number;
  bytes: number;
  /** Whether this case is one of the "small packets" the ≥5× target is checked on. */
  small: boolean;
}

function parseCase(name: string, chunks: Buffer[], packets: number, small = false): ParseCase {
  return { name, chunks, packets, bytes: chunks.reduce((sum, chunk) => sum + chunk.length, 0), small };
}

/** The packet a worker parses on its hot path: JOB_ASSIGN_UNIQ with a 16-byte workload (85 bytes). */
const SMALL = jobAssignUniq(16);
const NO_JOB = encodePacket(Magic.RES, PacketType.NO_JOB, []);
const SMALL_BATCH = 1000;

const PARSE_CASES: ParseCase[] = [
  parseCase('small packet, one per chunk', [SMALL], 1, true),
  parseCase('1000 small packets in one chunk', [Buffer.concat(new Array<Buffer>(SMALL_BATCH).fill(SMALL))], SMALL_BATCH, true),
  parseCase('1000 NO_JOB in one chunk (framing only)', [Buffer.concat(new Array<Buffer>(SMALL_BATCH).fill(NO_JOB))], SMALL_BATCH, true),
  parseCase('small packet, header split at byte 5', [SMALL.subarray(0, 5), SMALL.subarray(5)], 1),
  parseCase('JOB_ASSIGN_UNIQ 16 B, one chunk', [jobAssignUniq(16)], 1),
  parseCase('JOB_ASSIGN_UNIQ 64 KiB, one chunk', [jobAssignUniq(64 * KIB)], 1),
  parseCase('JOB_ASSIGN_UNIQ 1 MiB, one chunk', [jobAssignUniq(MIB)], 1),
  parseCase('JOB_ASSIGN_UNIQ 16 B, split in 3', splitEven(jobAssignUniq(16), 3), 1),
  parseCase('JOB_ASSIGN_UNIQ 64 KiB, split in 3', splitEven(jobAssignUniq(64 * KIB), 3), 1),
  parseCase('JOB_ASSIGN_UNIQ 1 MiB, split in 3', splitEven(jobAssignUniq(MIB), 3), 1),
];

// ── Timing ────────────────────────────────────────────────────────────────────────────────────────

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

type Body = (iterations: number) => void | Promise<void>;

/** The iteration count that makes one call of `body` take about ROUND_MS. */
async function calibrate(body: Body): Promise<number> {
  let iterations = 1;
  for (;;) {
    const start = process.hrtime.bigint();
    await body(iterations);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    if (elapsed >= ROUND_MS / 4 || iterations >= 1 << 24) {
      return Math.max(1, Math.round((iterations * ROUND_MS) / Math.max(elapsed, 0.001)));
    }
    iterations *= 2;
  }
}

interface Comparison {
  /** Median nanoseconds per iteration of each body. */
  ns: number[];
  /** Median over rounds of (body i time / body 0 time) in the same round; ratios[0] is 1. */
  ratios: number[];
}

/**
 * Times `bodies` interleaved: every round runs each of them once, in a rotating order. The machine
 * is shared, so load changes during a run; measured side by side, the bodies of a round see the same
 * load, and the median of the per-round ratios is steadier than a ratio of two separate medians.
 */
async function compare(bodies: readonly Body[]): Promise<Comparison> {
  const iterations: number[] = [];
  for (const body of bodies) iterations.push(await calibrate(body));
  for (let round = 0; round < WARMUP_ROUNDS; round++) {
    for (let i = 0; i < bodies.length; i++) await (bodies[i] as Body)(iterations[i] as number);
  }
  const times: number[][] = bodies.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < bodies.length; k++) {
      const i = (round + k) % bodies.length;
      const start = process.hrtime.bigint();
      await (bodies[i] as Body)(iterations[i] as number);
      (times[i] as number[]).push(Number(process.hrtime.bigint() - start) / (iterations[i] as number));
    }
  }
  const base = times[0] as number[];
  return {
    ns: times.map(median),
    ratios: times.map((series) => median(series.map((ns, round) => ns / (base[round] as number)))),
  };
}

// ── Parsers under test ────────────────────────────────────────────────────────────────────────────

/** Keeps results observable so the JIT cannot drop the work. */
let sink = 0;

/** Our Parser on `input`, `iterations` times over; one parser for the whole run, as on a connection. */
function oursBody(input: ParseCase): Body {
  let packets = 0;
  const parser = new Parser({
    onPacket: (packet: Packet) => {
      packets++;
      // Touch what a worker touches: the argument views.
      sink += packet.args.length === 0 ? packet.type : (packet.args[packet.args.length - 1] as Buffer).length;
    },
    onError: (error) => {
      throw error;
    },
  });
  return (iterations) => {
    const chunks = input.chunks;
    const before = packets;
    for (let i = 0; i < iterations; i++) {
      for (let c = 0; c < chunks.length; c++) parser.push(chunks[c] as Buffer);
    }
    if (packets - before !== iterations * input.packets || parser.partial || parser.failed) {
      throw new Error(`${input.name}: our parser did not finish cleanly`);
    }
  };
}

const require = createRequire(import.meta.url);
type GearmanPacketParser = Transform;
const GearmanPacket = require('gearman-packet') as { Parser: new (options?: object) => GearmanPacketParser };

interface GearmanPacketObject {
  args?: Record<string, unknown>;
  body?: NodeJS.ReadableStream & { length: number };
}

/**
 * gearman-packet's Parser is an object-mode Transform. For packets with a body (JOB_ASSIGN_UNIQ's
 * workload) it emits the packet at once with `body` as a PassThrough stream and waits for that stream's
 * write callback (a process.nextTick at least) before it parses on. Driving it fairly therefore means:
 * write the chunks, consume every packet and its body the way a worker would, and stop the clock only
 * when the last byte of the last body has arrived.
 *
 * With `assemble`, the consumer also joins a body that came in several pieces into one Buffer, which
 * is what our Parser hands out: the fair comparison for packets split across chunks.
 */
function gearmanPacketBody(input: ParseCase, assemble: boolean): Body {
  return async (iterations) => {
    const parser = new GearmanPacket.Parser();
    const expected = iterations * input.packets;
    let packets = 0;
    let bodiesPending = 0;
    await new Promise<void>((resolve, reject) => {
      const maybeDone = (): void => {
        if (packets === expected && bodiesPending === 0) resolve();
      };
      parser.on('error', reject);
      parser.on('data', (packet: GearmanPacketObject) => {
        packets++;
        if (packet.body !== undefined) {
          bodiesPending++;
          const pieces: Buffer[] = [];
          packet.body.on('data', (chunk: Buffer) => {
            if (assemble) pieces.push(chunk);
            sink += chunk.length;
          });
          packet.body.on('end', () => {
            if (assemble && pieces.length > 1) sink += Buffer.concat(pieces).length;
            bodiesPending--;
            maybeDone();
          });
        } else {
          sink += packet.args === undefined ? 0 : Object.keys(packet.args).length;
        }
        maybeDone();
      });
      for (let i = 0; i < iterations; i++) {
        for (const chunk of input.chunks) parser.write(chunk);
      }
    });
    parser.destroy();
  };
}

// ── Encoders ──────────────────────────────────────────────────────────────────────────────────────

interface EncodeCase {
  name: string;
  /** Bytes of the resulting packet (what goes on the wire). */
  bytes: number;
  run: () => number;
}

const RESULT_16 = binary(16);
const RESULT_1M = binary(MIB);
const WORKLOAD_64K = binary(64 * KIB);

const ENCODE_CASES: EncodeCase[] = [
  { name: 'CAN_DO', bytes: encodeCanDo(FUNCTION_NAME).length, run: () => encodeCanDo(FUNCTION_NAME).length },
  {
    name: 'JOB_ASSIGN_UNIQ 16 B',
    bytes: jobAssignUniq(16).length,
    run: () => encodeJobAssignUniq(HANDLE, FUNCTION_NAME, UNIQUE, RESULT_16).length,
  },
  {
    name: 'JOB_ASSIGN_UNIQ 64 KiB',
    bytes: jobAssignUniq(64 * KIB).length,
    run: () => encodeJobAssignUniq(HANDLE, FUNCTION_NAME, UNIQUE, WORKLOAD_64K).length,
  },
  {
    name: 'JOB_ASSIGN_UNIQ 1 MiB',
    bytes: jobAssignUniq(MIB).length,
    run: () => encodeJobAssignUniq(HANDLE, FUNCTION_NAME, UNIQUE, RESULT_1M).length,
  },
  {
    name: 'WORK_COMPLETE 16 B, encodeWorkComplete (copies)',
    bytes: encodeWorkComplete(HANDLE, RESULT_16).length,
    run: () => encodeWorkComplete(HANDLE, RESULT_16).length,
  },
  {
    name: 'WORK_COMPLETE 1 MiB, encodeWorkComplete (copies)',
    bytes: encodeWorkComplete(HANDLE, RESULT_1M).length,
    run: () => encodeWorkComplete(HANDLE, RESULT_1M).length,
  },
  {
    name: 'WORK_COMPLETE 16 B, encodeWorkCompleteHead only',
    bytes: encodeWorkComplete(HANDLE, RESULT_16).length,
    run: () => encodeWorkCompleteHead(HANDLE, RESULT_16.length).length,
  },
  {
    name: 'WORK_COMPLETE 1 MiB, encodeWorkCompleteHead only',
    bytes: encodeWorkComplete(HANDLE, RESULT_1M).length,
    run: () => encodeWorkCompleteHead(HANDLE, RESULT_1M.length).length,
  },
];

/**
 * A Writable that accepts everything at once and remembers nothing but whether the last body it got
 * is the caller's own buffer: the same path a socket takes (cork → writev), minus the kernel.
 */
class NullSink extends Writable {
  lastChunks: Buffer[] = [];
  constructor() {
    super({ highWaterMark: 64 * MIB });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.lastChunks = [chunk];
    callback();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.lastChunks = chunks.map((entry) => entry.chunk);
    callback();
  }
}

/** Head + body under cork: what the worker does for a large result. */
function writeCorked(stream: Writable, result: Buffer): void {
  stream.cork();
  stream.write(encodeWorkCompleteHead(HANDLE, result.length));
  stream.write(result);
  stream.uncork();
}

function writeCopied(stream: Writable, result: Buffer): void {
  stream.write(encodeWorkComplete(HANDLE, result));
}

function writePathBody(write: (stream: Writable, result: Buffer) => void, result: Buffer): Body {
  const stream = new NullSink();
  // Let the stream drain after each call so its buffer never grows: _write/_writev call back at once,
  // but Writable finishes a write on the next tick.
  return async (iterations) => {
    for (let i = 0; i < iterations; i++) write(stream, result);
    if (stream.writableLength > 0) await new Promise<void>((resolve) => stream.once('drain', resolve));
  };
}

function encodeBody(run: () => number): Body {
  return (iterations) => {
    for (let i = 0; i < iterations; i++) sink += run();
  };
}

// ── Report ────────────────────────────────────────────────────────────────────────────────────────

interface ParseRow {
  case: string;
  packets: number;
  bytes: number;
  oursNsPerUnit: number;
  oursPacketsPerSec: number;
  oursMBPerSec: number;
  gearmanPacketPacketsPerSec: number;
  gearmanPacketMBPerSec: number;
  ratio: number;
  /** Split cases only: gearman-packet plus joining the body pieces into one Buffer, as ours delivers. */
  gearmanPacketAssembledPacketsPerSec: number | null;
  ratioAssembled: number | null;
}

interface EncodeRow {
  case: string;
  bytes: number;
  nsPerPacket: number;
  packetsPerSec: number;
  MBPerSec: number;
}

interface Target {
  target: string;
  measured: string;
  pass: boolean;
}

const MB = 1e6;

function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function commit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    // A tree without commits (or without git) still gets a result file.
    return null;
  }
}

interface PairTarget {
  target: string;
  /** Bodies compared side by side; the target is about ratios[1] (body 1 time / body 0 time). */
  bodies: [string, Body, string, Body];
  limit: number;
}

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const cpu = cpus()[0]?.model ?? 'unknown';
  const sha = commit();
  console.log(`codec bench — node ${process.version}, ${cpu}, ${cpus().length} CPUs, commit ${sha ?? '(none)'}`);
  console.log(`per case: bodies interleaved for ${ROUNDS} rounds of ~${ROUND_MS} ms after ${WARMUP_ROUNDS} warm-up rounds;`);
  console.log('figures are medians, ratios are medians of per-round ratios (gearman-packet time / ours)');
  console.log(`small packet = JOB_ASSIGN_UNIQ with a 16 B workload, ${SMALL.length} bytes on the wire\n`);

  const parseRows: ParseRow[] = [];
  console.log(
    'parse                                       ours pkt/s     ours MB/s   g-packet pkt/s  g-packet MB/s    ratio  ratio vs g-packet→Buffer',
  );
  for (const input of PARSE_CASES) {
    const split = input.chunks.length > 1;
    const bodies = [oursBody(input), gearmanPacketBody(input, false)];
    if (split) bodies.push(gearmanPacketBody(input, true));
    const { ns, ratios } = await compare(bodies);
    const [ours, theirs] = ns as [number, number];
    const row: ParseRow = {
      case: input.name,
      packets: input.packets,
      bytes: input.bytes,
      oursNsPerUnit: ours,
      oursPacketsPerSec: (input.packets * 1e9) / ours,
      oursMBPerSec: (input.bytes * 1e9) / ours / MB,
      gearmanPacketPacketsPerSec: (input.packets * 1e9) / theirs,
      gearmanPacketMBPerSec: (input.bytes * 1e9) / theirs / MB,
      ratio: ratios[1] as number,
      gearmanPacketAssembledPacketsPerSec: split ? (input.packets * 1e9) / (ns[2] as number) : null,
      ratioAssembled: split ? (ratios[2] as number) : null,
    };
    parseRows.push(row);
    console.log(
      `${pad(input.name, 42)} ${pad(fmt(row.oursPacketsPerSec), 13, true)} ${pad(fmt(row.oursMBPerSec, 1), 13, true)}` +
        ` ${pad(fmt(row.gearmanPacketPacketsPerSec), 16, true)} ${pad(fmt(row.gearmanPacketMBPerSec, 1), 14, true)}` +
        ` ${pad(`${fmt(row.ratio, 2)}×`, 8, true)}` +
        ` ${pad(row.ratioAssembled === null ? '' : `${fmt(row.ratioAssembled, 2)}×`, 25, true)}`,
    );
  }

  const encodeRows: EncodeRow[] = [];
  console.log('\nencode                                                 ns/packet      packets/s      MB/s (wire bytes)');
  for (const input of ENCODE_CASES) {
    const ns = (await compare([encodeBody(input.run)])).ns[0] as number;
    const row: EncodeRow = {
      case: input.name,
      bytes: input.bytes,
      nsPerPacket: ns,
      packetsPerSec: 1e9 / ns,
      MBPerSec: (input.bytes * 1e9) / ns / MB,
    };
    encodeRows.push(row);
    console.log(
      `${pad(input.name, 52)} ${pad(fmt(ns, 1), 12, true)} ${pad(fmt(row.packetsPerSec), 14, true)} ${pad(fmt(row.MBPerSec, 1), 14, true)}`,
    );
  }

  const probe = new NullSink();
  writeCorked(probe, RESULT_1M);
  await new Promise((resolve) => setImmediate(resolve));
  const wroteCallersBuffer = probe.lastChunks.length === 2 && probe.lastChunks[1] === RESULT_1M;
  console.log(`\nhead + cork: the chunks written are [head, result] and the result is the caller's buffer (===): ${wroteCallersBuffer}`);

  // ── Targets, each measured as its own side-by-side pair so load cannot tilt it ──
  const targets: Target[] = [];
  for (const row of parseRows.filter((_, i) => (PARSE_CASES[i] as ParseCase).small)) {
    targets.push({ target: `parse ≥ 5× gearman-packet packets/s: ${row.case}`, measured: `${fmt(row.ratio, 1)}×`, pass: row.ratio >= 5 });
  }
  const one16 = PARSE_CASES.find((c) => c.name === 'JOB_ASSIGN_UNIQ 16 B, one chunk') as ParseCase;
  const one1M = PARSE_CASES.find((c) => c.name === 'JOB_ASSIGN_UNIQ 1 MiB, one chunk') as ParseCase;
  const pairs: PairTarget[] = [
    {
      target: '1 MiB workload in one chunk parses within 2× the time of a 16 B one',
      bodies: ['16 B', oursBody(one16), '1 MiB', oursBody(one1M)],
      limit: 2,
    },
    {
      target: 'WORK_COMPLETE head encode time independent of result size (1 MiB head within 2× of 16 B head)',
      bodies: [
        '16 B head',
        encodeBody(() => encodeWorkCompleteHead(HANDLE, RESULT_16.length).length),
        '1 MiB head',
        encodeBody(() => encodeWorkCompleteHead(HANDLE, RESULT_1M.length).length),
      ],
      limit: 2,
    },
    {
      target: 'WORK_COMPLETE 1 MiB to a stream: head + cork write ≥ 10× faster than encodeWorkComplete + write',
      bodies: ['copy', writePathBody(writeCopied, RESULT_1M), 'head + cork', writePathBody(writeCorked, RESULT_1M)],
      limit: 0.1,
    },
  ];
  const pairResults: Array<{ target: string; names: [string, string]; ns: number[]; ratio: number }> = [];
  for (const pair of pairs) {
    const { ns, ratios } = await compare([pair.bodies[1], pair.bodies[3]]);
    const ratio = ratios[1] as number;
    pairResults.push({ target: pair.target, names: [pair.bodies[0], pair.bodies[2]], ns, ratio });
    const detail = `${pair.bodies[2]} ${fmt(ns[1] as number, 0)} ns vs ${pair.bodies[0]} ${fmt(ns[0] as number, 0)} ns`;
    const isCork = pair.limit < 1;
    targets.push({
      target: pair.target,
      measured: isCork ? `${fmt(1 / ratio, 1)}× faster (${detail}); writes the caller's buffer: ${wroteCallersBuffer}` : `${fmt(ratio, 2)}× (${detail})`,
      pass: ratio <= pair.limit && (!isCork || wroteCallersBuffer),
    });
  }

  console.log('\ntargets');
  for (const target of targets) console.log(`${target.pass ? 'PASS' : 'FAIL'}  ${target.target}: ${target.measured}`);

  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const date = new Date();
  const result = {
    date: date.toISOString(),
    node: process.version,
    cpu,
    cpus: cpus().length,
    loadAverage: loadavg(),
    commit: sha,
    method: { roundMs: ROUND_MS, warmupRounds: WARMUP_ROUNDS, rounds: ROUNDS, statistic: 'median; ratios are medians of per-round ratios of interleaved bodies' },
    smallPacketBytes: SMALL.length,
    parse: parseRows,
    encode: encodeRows,
    pairs: pairResults,
    wroteCallersBuffer,
    targets,
    seconds,
  };
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/bench/ → bench/results at the repository root.
  const resultsDir = join(here, '..', '..', 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `codec-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\n${fmt(seconds, 1)} s, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; results in ${file} (sink ${sink > 0 ? 'ok' : 'empty'})`);
  if (targets.some((target) => !target.pass)) process.exitCode = 1;
}

await main();
