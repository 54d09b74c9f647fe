/**
 * Parser maxWorkloadSize: a job assignment whose workload is over the limit is never assembled; its
 * leading arguments and the workload's size reach onOversizedPacket, and the stream stays in step.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_LEADING_BYTES, Parser, type OversizedPacket, type Packet, type ParserOptions } from '../../src/codec/index.js';
import { InternalError } from '../../src/errors.js';
import type { ProtocolError } from '../../src/errors.js';
import { buildPacket, HEADER_SIZE, T } from '../helpers/packet-builder.js';
import { BINARY } from './fixtures.js';

const LIMIT = 40;

/** Packets and oversized reports in arrival order, as plain data. */
interface Events {
  parser: Parser;
  events: string[];
  packets: Packet[];
  oversized: OversizedPacket[];
  errors: ProtocolError[];
}

function collect(options: Partial<ParserOptions> = {}): Events {
  const events: string[] = [];
  const packets: Packet[] = [];
  const oversized: OversizedPacket[] = [];
  const errors: ProtocolError[] = [];
  const parser = new Parser({
    onPacket: (packet) => {
      packets.push(packet);
      events.push(`packet ${packet.magic} ${packet.type} ${packet.args.map((a) => a.toString('hex')).join(',')}`);
    },
    onOversizedPacket: (packet) => {
      oversized.push(packet);
      events.push(`oversized ${packet.magic} ${packet.type} ${packet.args.map((a) => a.toString('hex')).join(',')} ${packet.workloadSize}`);
    },
    onError: (error) => {
      errors.push(error);
      events.push(`error ${error.message}`);
    },
    maxWorkloadSize: LIMIT,
    ...options,
  });
  return { parser, events, packets, oversized, errors };
}

function parse(chunks: readonly Buffer[], options: Partial<ParserOptions> = {}): Events {
  const collected = collect(options);
  for (const chunk of chunks) collected.parser.push(chunk);
  return collected;
}

function cut(bytes: Buffer, ...offsets: number[]): Buffer[] {
  const bounds = [0, ...offsets, bytes.length];
  return bounds.slice(1).map((end, i) => Buffer.from(bytes.subarray(bounds[i], end)));
}

const hex = (text: string | Buffer): string => Buffer.from(text).toString('hex');
const workload = (size: number): Buffer => Buffer.alloc(size, BINARY);
const assign = (handle: string, workloadSize: number): Buffer => buildPacket('RES', T.JOB_ASSIGN, [handle, 'fn', workload(workloadSize)]);
const assignUniq = (handle: string, workloadSize: number, fn = 'fn', unique = 'u-1'): Buffer =>
  buildPacket('RES', T.JOB_ASSIGN_UNIQ, [handle, fn, unique, workload(workloadSize)]);

/**
 * A stream with every case next to each other: workloads exactly at the limit and one over, all three
 * assignment types, a long function name whose packet is bigger than the limit but whose workload is
 * not, and a big packet of another type (not limited by maxWorkloadSize).
 */
const STREAM = Buffer.concat([
  buildPacket('RES', T.NOOP, []),
  assignUniq('H:a', LIMIT),
  assignUniq('H:b', LIMIT + 1),
  assign('H:c', LIMIT + 1000),
  assign('H:d', 0),
  buildPacket('RES', T.JOB_ASSIGN_ALL, ['H:e', 'fn', 'u', 'reducer', workload(LIMIT * 3)]),
  assignUniq('H:f', LIMIT, 'f'.repeat(500), 'u'.repeat(64)),
  buildPacket('RES', T.WORK_COMPLETE, ['H:g', workload(LIMIT * 5)]),
  assignUniq('H:h', 0, 'fn', ''),
  buildPacket('RES', T.NOOP, []),
]);

const EXPECTED = [
  `packet RES ${T.NOOP} `,
  `packet RES ${T.JOB_ASSIGN_UNIQ} ${hex('H:a')},${hex('fn')},${hex('u-1')},${workload(LIMIT).toString('hex')}`,
  `oversized RES ${T.JOB_ASSIGN_UNIQ} ${hex('H:b')},${hex('fn')},${hex('u-1')} ${LIMIT + 1}`,
  `oversized RES ${T.JOB_ASSIGN} ${hex('H:c')},${hex('fn')} ${LIMIT + 1000}`,
  `packet RES ${T.JOB_ASSIGN} ${hex('H:d')},${hex('fn')},`,
  `oversized RES ${T.JOB_ASSIGN_ALL} ${hex('H:e')},${hex('fn')},${hex('u')},${hex('reducer')} ${LIMIT * 3}`,
  `packet RES ${T.JOB_ASSIGN_UNIQ} ${hex('H:f')},${hex('f'.repeat(500))},${hex('u'.repeat(64))},${workload(LIMIT).toString('hex')}`,
  `packet RES ${T.WORK_COMPLETE} ${hex('H:g')},${workload(LIMIT * 5).toString('hex')}`,
  `packet RES ${T.JOB_ASSIGN_UNIQ} ${hex('H:h')},${hex('fn')},,`,
  `packet RES ${T.NOOP} `,
];

describe('Parser maxWorkloadSize', () => {
  test('Parser.push should report workloads over the limit and deliver the rest, the stream pushed whole', () => {
    const result = parse([STREAM]);
    assert.deepEqual(result.events, EXPECTED);
    assert.equal(result.parser.partial, false);
  });

  test('Parser.push should give the same events for the stream cut at every offset', () => {
    for (let at = 0; at <= STREAM.length; at++) {
      const result = parse(cut(STREAM, at));
      assert.deepEqual(result.events, EXPECTED, `cut at ${at}`);
      assert.equal(result.parser.partial, false, `cut at ${at}`);
    }
  });

  test('Parser.push should give the same events for the stream cut at every pair of offsets around the oversized packets', () => {
    // Every pair would be ~1.5 M parses; the packets around H:b … H:e hold every oversized case.
    const from = STREAM.indexOf(Buffer.from('H:b')) - HEADER_SIZE - 2;
    const to = STREAM.indexOf(Buffer.from('H:f')) - HEADER_SIZE;
    for (let a = from; a <= to; a += 3) {
      for (let b = a; b <= to; b++) {
        assert.deepEqual(parse(cut(STREAM, a, b)).events, EXPECTED, `cuts at ${a} and ${b}`);
      }
    }
  });

  test('Parser.push should give the same events for the stream fed one byte at a time', () => {
    const result = parse(Array.from(STREAM, (byte) => Buffer.from([byte])));
    assert.deepEqual(result.events, EXPECTED);
    assert.equal(result.parser.partial, false);
  });

  test('Parser.push should apply the limit exactly at the boundary, 0 included', () => {
    for (const limit of [0, 1, 7, 100]) {
      for (const size of [limit, limit + 1]) {
        const bytes = assignUniq('H:x', size);
        for (const chunks of [[bytes], cut(bytes, HEADER_SIZE + 3), Array.from(bytes, (b) => Buffer.from([b]))]) {
          const result = parse(chunks, { maxWorkloadSize: limit });
          assert.deepEqual(result.errors, []);
          assert.equal(result.packets.length, size <= limit ? 1 : 0, `limit ${limit}, workload ${size}`);
          assert.deepEqual(result.oversized.map((p) => p.workloadSize), size <= limit ? [] : [size], `limit ${limit}, workload ${size}`);
        }
      }
    }
  });

  test('Parser.push should never allocate the oversized workload, however it arrives', () => {
    const big = 10 * 1024 * 1024;
    const header = Buffer.from(assignUniq('H:big', 0));
    header.writeUInt32BE(header.length - HEADER_SIZE + big, 8);
    const slice = Buffer.alloc(64 * 1024, 0x61);
    const allocations: number[] = [];
    // eslint-disable-next-line @typescript-eslint/unbound-method -- Buffer's static allocators do not use `this`
    const { allocUnsafe, alloc } = Buffer;
    Buffer.allocUnsafe = (size: number) => {
      allocations.push(size);
      return allocUnsafe(size);
    };
    Buffer.alloc = ((size: number, ...rest: []) => {
      allocations.push(size);
      return alloc(size, ...rest);
    }) as typeof Buffer.alloc;
    let result: Events;
    try {
      result = collect({ maxWorkloadSize: 1024 * 1024 });
      result.parser.push(header);
      for (let sent = 0; sent < big; sent += slice.length) result.parser.push(slice);
      result.parser.push(buildPacket('RES', T.NOOP, []));
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
      Buffer.alloc = alloc;
    }
    assert.deepEqual(result.events, [`oversized RES ${T.JOB_ASSIGN_UNIQ} ${hex('H:big')},${hex('fn')},${hex('u-1')} ${big}`, `packet RES ${T.NOOP} `]);
    assert.ok(Math.max(...allocations) <= MAX_LEADING_BYTES, `largest allocation ${Math.max(...allocations)} bytes`);
  });

  test('Parser.push should take assignments over maxPacketSize when it streams them, and still refuse other big packets', () => {
    const bytes = Buffer.concat([assignUniq('H:a', 5000), assign('H:b', 30)]);
    for (const chunks of [[bytes], cut(bytes, 100), cut(bytes, 20, 3000)]) {
      const result = parse(chunks, { maxPacketSize: 1024, maxWorkloadSize: 100 });
      assert.deepEqual(result.events, [`oversized RES ${T.JOB_ASSIGN_UNIQ} ${hex('H:a')},${hex('fn')},${hex('u-1')} 5000`, `packet RES ${T.JOB_ASSIGN} ${hex('H:b')},${hex('fn')},${workload(30).toString('hex')}`]);
    }
    const other = parse([buildPacket('RES', T.WORK_COMPLETE, ['H:a', workload(5000)])], { maxPacketSize: 1024, maxWorkloadSize: 100 });
    assert.match(other.errors[0]?.message ?? '', /WORK_COMPLETE data size 5004 exceeds the limit of 1024 bytes/);
    // Without maxWorkloadSize an assignment is a packet like any other.
    const plain = new Parser({ onPacket: () => undefined, onError: (error) => assert.match(error.message, /JOB_ASSIGN_UNIQ data size/), maxPacketSize: 1024 });
    plain.push(assignUniq('H:a', 5000));
    assert.equal(plain.failed, true);
  });

  test('Parser.push should report a malformed oversized assignment as a protocol error', () => {
    const fewArgs = buildPacket('RES', T.JOB_ASSIGN_UNIQ, ['H:a', `fn${'x'.repeat(100)}`]);
    const longLeading = buildPacket('RES', T.JOB_ASSIGN_UNIQ, ['H:a', 'f'.repeat(MAX_LEADING_BYTES), 'u', workload(10)]);
    const longHandle = buildPacket('RES', T.JOB_ASSIGN_UNIQ, ['H'.repeat(65), 'fn', 'u', workload(100)]);
    const cases: Array<[Buffer, RegExp]> = [
      [fewArgs, /JOB_ASSIGN_UNIQ needs 4 arguments but has 2/],
      [longLeading, /JOB_ASSIGN_UNIQ has no workload within its first 4096 bytes/],
      [longHandle, /job handle is 65 bytes, over the 64-byte limit/],
    ];
    for (const [bytes, message] of cases) {
      for (const chunks of [[bytes], cut(bytes, HEADER_SIZE + 1), Array.from(bytes, (b) => Buffer.from([b]))]) {
        const result = parse(chunks);
        assert.equal(result.errors.length, 1, String(message));
        assert.match(result.errors[0]?.message ?? '', message);
        assert.deepEqual(result.oversized, []);
        assert.equal(result.parser.failed, true);
      }
    }
  });

  test('Parser.push should keep reported leading arguments intact while it parses on', () => {
    const result = parse(cut(Buffer.concat([assignUniq('H:1', 500), assignUniq('H:2', 500), assignUniq('H:3', 500)]), 30, 700, 1100));
    assert.deepEqual(result.oversized.map((p) => p.args.map((a) => a.toString())), [['H:1', 'fn', 'u-1'], ['H:2', 'fn', 'u-1'], ['H:3', 'fn', 'u-1']]);
  });

  test('Parser.push should stop the current chunk when onOversizedPacket calls reset()', () => {
    const events: string[] = [];
    const parser: Parser = new Parser({
      onPacket: (packet) => events.push(`packet ${packet.type}`),
      onOversizedPacket: () => {
        events.push('oversized');
        parser.reset();
      },
      onError: (error) => events.push(error.message),
      maxWorkloadSize: 10,
    });
    const bytes = Buffer.concat([assign('H:a', 50), buildPacket('RES', T.NOOP, [])]);
    parser.push(bytes.subarray(0, 30));
    parser.push(bytes.subarray(30));
    parser.push(buildPacket('RES', T.NO_JOB, []));
    assert.deepEqual(events, ['oversized', `packet ${T.NO_JOB}`]);
  });

  test('Parser constructor should refuse a bad maxWorkloadSize, or one without onOversizedPacket', () => {
    for (const bad of [-1, 1.5, NaN, 2 ** 32]) {
      assert.throws(() => new Parser({ onPacket: () => undefined, onError: () => undefined, onOversizedPacket: () => undefined, maxWorkloadSize: bad }), InternalError);
    }
    assert.throws(() => new Parser({ onPacket: () => undefined, onError: () => undefined, maxWorkloadSize: 10 }), /needs an onOversizedPacket callback/);
  });
});
