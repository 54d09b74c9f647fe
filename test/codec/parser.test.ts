import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Parser, type Packet, type ParserOptions } from '../../src/codec/index.js';
import { MAX_DECLARED_WORKLOAD_SIZE } from '../../src/codec/constants.js';
import { ErrorCode, InternalError, ProtocolError } from '../../src/errors.js';
import { buildPacket, T } from '../helpers/packet-builder.js';
import { ARGS, BINARY, FIXTURES, HANDLE_FIRST_TYPES, STREAM, fixture, prng, randomBytes, type Fixture } from './fixtures.js';

interface Collected {
  parser: Parser;
  packets: Packet[];
  errors: ProtocolError[];
}

function collect(options: Partial<ParserOptions> = {}): Collected {
  const packets: Packet[] = [];
  const errors: ProtocolError[] = [];
  const parser = new Parser({
    onPacket: (packet) => packets.push(packet),
    onError: (error) => errors.push(error),
    ...options,
  });
  return { parser, packets, errors };
}

/** Parses `chunks` in order with a fresh parser. */
function parse(chunks: readonly Buffer[], options: Partial<ParserOptions> = {}): Collected {
  const collected = collect(options);
  for (const chunk of chunks) collected.parser.push(chunk);
  return collected;
}

/** What a packet looks like for comparison: plain data, args as hex so a diff is readable. */
function shape(packet: { magic: string; type: number; args: readonly Buffer[] }): object {
  return { magic: packet.magic, type: packet.type, args: packet.args.map((arg) => arg.toString('hex')) };
}

function expectPackets(result: Collected, expected: readonly Fixture[], context: string): void {
  assert.deepEqual(result.errors, [], `${context}: unexpected error`);
  assert.deepEqual(result.packets.map(shape), expected.map(shape), context);
  assert.equal(result.parser.partial, false, `${context}: parser still holds a partial packet`);
}

/** Fresh copies, as a socket hands out: no chunk shares memory with the fixture or another chunk. */
function cut(bytes: Buffer, ...offsets: number[]): Buffer[] {
  const bounds = [0, ...offsets, bytes.length];
  return bounds.slice(1).map((end, i) => Buffer.from(bytes.subarray(bounds[i], end)));
}

/** A RES header declaring `size` data bytes, whatever follows it (written here, not by the builder: the size is the point). */
function header(type: number, size: number): Buffer {
  const bytes = Buffer.from([0x00, 0x52, 0x45, 0x53, 0, 0, 0, 0, 0, 0, 0, 0]);
  bytes.writeUInt32BE(type, 4);
  bytes.writeUInt32BE(size, 8);
  return bytes;
}

function bytewise(bytes: Buffer): Buffer[] {
  return Array.from(bytes, (byte) => Buffer.from([byte]));
}

describe('Parser', () => {
  test('Parser.push should parse every fixture pushed whole', () => {
    for (const f of FIXTURES) expectPackets(parse([f.bytes]), [f], f.name);
  });

  test('Parser.push should report REQ and RES magic as sent', () => {
    const result = parse([buildPacket('REQ', T.NOOP, []), buildPacket('RES', T.NOOP, [])]);
    assert.deepEqual(
      result.packets.map((p) => p.magic),
      ['REQ', 'RES'],
    );
  });

  test('Parser.push should parse every fixture cut at every offset, header included, in two pushes', () => {
    for (const f of FIXTURES) {
      // Framed by other packets so the cut also meets the fast path before and after the split.
      const before = FIXTURES[0] as Fixture;
      const after = FIXTURES[2] as Fixture;
      const bytes = Buffer.concat([before.bytes, f.bytes, after.bytes]);
      for (let i = 0; i <= bytes.length; i++) {
        expectPackets(parse(cut(bytes, i)), [before, f, after], `${f.name} cut at ${i}`);
      }
    }
  });

  test('Parser.push should parse every fixture split three ways at every pair of offsets', () => {
    for (const f of FIXTURES) {
      const bytes = f.bytes;
      for (let i = 0; i <= bytes.length; i++) {
        for (let j = i; j <= bytes.length; j++) {
          expectPackets(parse(cut(bytes, i, j)), [f], `${f.name} cut at ${i} and ${j}`);
        }
      }
    }
  });

  test('Parser.push should parse a stream fed one byte at a time', () => {
    expectPackets(parse(bytewise(STREAM)), FIXTURES, 'byte at a time');
  });

  test('Parser.push should parse many packets in one chunk', () => {
    const copies = 200;
    const many = Buffer.concat(new Array<Buffer>(copies).fill(STREAM));
    const expected = new Array<readonly Fixture[]>(copies).fill(FIXTURES).flat();
    expectPackets(parse([many]), expected, 'one chunk');
  });

  test('Parser.push should parse a stream cut at random points', () => {
    const random = prng(0x5eed);
    for (let round = 0; round < 300; round++) {
      const offsets = Array.from({ length: 1 + Math.floor(random() * 20) }, () => Math.floor(random() * STREAM.length));
      offsets.sort((a, b) => a - b);
      expectPackets(parse(cut(STREAM, ...offsets)), FIXTURES, `round ${round} cut at ${offsets.join(',')}`);
    }
  });

  test('Parser.push should keep binary workloads intact: NUL, invalid UTF-8, 1 MiB', () => {
    const random = prng(42);
    const mib = randomBytes(random, 1024 * 1024);
    // NULs at both ends and invalid UTF-8 inside, so a decode/re-encode or a trim would show.
    mib[0] = 0;
    mib[mib.length - 1] = 0;
    BINARY.copy(mib, 1000);
    const f = fixture('1 MiB', 'RES', T.JOB_ASSIGN_UNIQ, ['H:x:1', 'f', 'u', mib]);
    const socketLike: Buffer[] = [];
    for (let start = 0; start < f.bytes.length; start += 65536) socketLike.push(Buffer.from(f.bytes.subarray(start, start + 65536)));

    for (const [how, chunks] of [
      ['one chunk', [f.bytes]],
      ['64 KiB chunks', socketLike],
      ['split in 3 with a cut inside the header', cut(f.bytes, 7, 500_000)],
    ] as const) {
      const result = parse(chunks);
      expectPackets(result, [f], how);
      assert.ok((result.packets[0]?.args[3] as Buffer).equals(mib), `${how}: workload differs`);
    }
    const small = fixture('binary', 'RES', T.JOB_ASSIGN_UNIQ, ['H:x:1', 'f', 'u', BINARY]);
    expectPackets(parse(bytewise(small.bytes)), [small], 'binary, byte at a time');
  });

  test('Parser.push should give the last argument its NUL bytes', () => {
    const withNuls = Buffer.from([0, 0, 0x41, 0, 0x42, 0]);
    for (const type of [T.WORK_COMPLETE, T.WORK_DATA, T.ECHO_RES, T.JOB_ASSIGN_UNIQ] as const) {
      const args = new Array<Buffer>((ARGS[type] as number) - 1).fill(Buffer.from('x')).concat([withNuls]);
      const result = parse([buildPacket('RES', type, args)]);
      assert.deepEqual(result.errors, []);
      assert.deepEqual(result.packets[0]?.args.map((a) => a.toString('hex')), args.map((a) => a.toString('hex')));
    }
  });

  test('Parser.push should emit exactly the arity of every known type', () => {
    for (const [typeText, arity] of Object.entries(ARGS)) {
      const type = Number(typeText);
      const args = Array.from({ length: arity }, (_, i) => `a${i}`);
      const result = parse([buildPacket('RES', type, args)]);
      assert.deepEqual(result.errors, [], `type ${type}`);
      assert.deepEqual(result.packets[0]?.args.map(String), args, `type ${type}`);
    }
  });

  test('Parser.push should accept a 64-byte job handle and reject a 65-byte one in every handle-first packet', () => {
    for (const type of HANDLE_FIRST_TYPES) {
      const rest = new Array<string>((ARGS[type] as number) - 1).fill('x');
      const ok = parse([buildPacket('RES', type, ['h'.repeat(64), ...rest])]);
      assert.deepEqual(ok.errors, [], `type ${type} with 64 bytes`);
      assert.equal(ok.packets[0]?.args[0]?.length, 64);

      const long = buildPacket('RES', type, ['h'.repeat(65), ...rest]);
      for (const chunks of [[long], cut(long, 20)]) {
        const bad = parse(chunks);
        assert.equal(bad.packets.length, 0, `type ${type} with 65 bytes`);
        assert.equal(bad.errors.length, 1);
        assert.equal(bad.errors[0]?.packetType, type);
        assert.match(bad.errors[0]?.message ?? '', /65 bytes/);
      }
    }
  });

  test('Parser.push should not bound first arguments that are not job handles', () => {
    for (const type of [T.CAN_DO, T.SUBMIT_JOB, T.GET_STATUS_UNIQUE, T.STATUS_RES_UNIQUE, T.ECHO_RES] as const) {
      const rest = new Array<string>((ARGS[type] as number) - 1).fill('x');
      const result = parse([buildPacket('RES', type, ['n'.repeat(200), ...rest])]);
      assert.deepEqual(result.errors, [], `type ${type}`);
      assert.equal(result.packets.length, 1);
    }
  });

  test('Parser.push should reject a size field over maxPacketSize from the header alone, with offset, type and preview', () => {
    const first = buildPacket('RES', T.NOOP, []);
    const big = buildPacket('RES', T.JOB_ASSIGN_UNIQ, ['h', 'f', 'u', Buffer.alloc(101 - 6, 0x61)]);
    // Only the header of the oversize packet arrives: the parser must not wait for (or allocate) its body.
    const result = parse([first, big.subarray(0, 12)], { maxPacketSize: 100 });
    assert.equal(result.packets.length, 1);
    assert.equal(result.errors.length, 1);
    const error = result.errors[0] as ProtocolError;
    assert.ok(error instanceof ProtocolError);
    assert.equal(error.code, ErrorCode.PROTOCOL);
    assert.equal(error.offset, first.length);
    assert.equal(error.packetType, T.JOB_ASSIGN_UNIQ);
    assert.equal(error.preview, big.subarray(0, 12).toString('hex'));
    assert.match(error.message, /JOB_ASSIGN_UNIQ data size 101 exceeds the limit of 100 bytes/);
    assert.equal(result.parser.failed, true);
    assert.equal(result.parser.partial, false);

    const atLimit = parse([buildPacket('RES', T.JOB_ASSIGN_UNIQ, ['h', 'f', 'u', Buffer.alloc(100 - 6)])], { maxPacketSize: 100 });
    assert.deepEqual(atLimit.errors, []);
    assert.equal(atLimit.packets.length, 1);
  });

  test('Parser.push should refuse from the header alone a size no packet of its type can have', () => {
    const cases: Array<[string, Buffer, Partial<ParserOptions>, RegExp]> = [
      ['NOOP with data', header(T.NOOP, 3), {}, /NOOP takes no arguments but declares 3 data bytes/],
      ['NO_JOB declaring 0xFFFFFFF0', header(T.NO_JOB, 0xfffffff0), {}, /NO_JOB takes no arguments but declares 4294967280 data bytes/],
      ['JOB_CREATED over a handle', header(T.JOB_CREATED, 65), {}, /JOB_CREATED declares a job handle of 65 bytes, over the 64-byte limit/],
      ['WORK_FAIL declaring 0xFFFFFFF0', header(T.WORK_FAIL, 0xfffffff0), {}, /WORK_FAIL declares a job handle of 4294967280 bytes/],
      // With maxWorkloadSize the workload is dropped, not buffered: only the declared-size ceiling bounds it.
      ['JOB_ASSIGN_UNIQ declaring 0xFFFFFFF0', header(T.JOB_ASSIGN_UNIQ, 0xfffffff0), { maxWorkloadSize: 1024, onOversizedPacket: () => undefined }, /JOB_ASSIGN_UNIQ data size 4294967280 exceeds the limit of 1073741824 bytes/],
      ['JOB_ASSIGN declaring 0xFFFFFFF0', header(T.JOB_ASSIGN, 0xfffffff0), { maxWorkloadSize: 1024, onOversizedPacket: () => undefined }, /JOB_ASSIGN data size 4294967280 exceeds/],
      ['ECHO_RES declaring 0xFFFFFFF0', header(T.ECHO_RES, 0xfffffff0), { maxWorkloadSize: 1024, onOversizedPacket: () => undefined }, /ECHO_RES data size 4294967280 exceeds the limit of 268435456 bytes/],
    ];
    const prefix = buildPacket('RES', T.NOOP, []);
    for (const [name, head, options, message] of cases) {
      // Only the 12 header bytes arrive, whole or byte by byte: the refusal cannot wait for data.
      for (const chunks of [[prefix, head], [prefix, ...bytewise(head)]]) {
        const result = parse(chunks, options);
        assert.equal(result.packets.length, 1, name);
        assert.equal(result.errors.length, 1, name);
        const error = result.errors[0] as ProtocolError;
        assert.match(error.message, message, name);
        assert.equal(error.offset, prefix.length, name);
        assert.equal(error.preview, head.toString('hex'), name);
        assert.equal(result.parser.failed, true, name);
        assert.equal(result.parser.partial, false, name);
      }
    }
    // At the ceiling a dropped workload is still waited for; a pool limit above it raises the ceiling.
    const dropping = { onOversizedPacket: () => undefined };
    const atCeiling = parse([header(T.JOB_ASSIGN_UNIQ, MAX_DECLARED_WORKLOAD_SIZE)], { ...dropping, maxWorkloadSize: 1024 });
    assert.deepEqual(atCeiling.errors, []);
    assert.equal(atCeiling.parser.partial, true);
    const raised = parse([header(T.JOB_ASSIGN_UNIQ, 0xfffffff0)], { ...dropping, maxWorkloadSize: 0xfffff000 });
    assert.deepEqual(raised.errors, []);
    const handle = parse([header(T.JOB_CREATED, 64)]);
    assert.deepEqual(handle.errors, []);
  });

  test('Parser.push should reject unknown packet types', () => {
    for (const type of [0, 5, 43, 0xffffffff]) {
      const bytes = buildPacket('RES', type, []);
      for (const chunks of [[bytes], bytewise(bytes)]) {
        const result = parse(chunks);
        assert.equal(result.packets.length, 0);
        assert.equal(result.errors.length, 1, `type ${type}`);
        assert.equal(result.errors[0]?.packetType, type);
        assert.equal(result.errors[0]?.offset, 0);
        assert.match(result.errors[0]?.message ?? '', new RegExp(`unknown packet type ${type}`));
      }
    }
  });

  test('Parser.push should reject text as bad magic, at once and byte by byte', () => {
    const text = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const whole = parse([text]);
    assert.equal(whole.errors.length, 1);
    assert.equal(whole.errors[0]?.packetType, -1);
    assert.equal(whole.errors[0]?.offset, 0);
    assert.equal(whole.errors[0]?.preview, text.subarray(0, 32).toString('hex'));
    assert.match(whole.errors[0]?.message ?? '', /bad magic/);

    // The first byte already cannot start a packet: no need to wait for 12 bytes that may never come.
    const short = parse([Buffer.from('G')]);
    assert.equal(short.errors.length, 1);
    assert.equal(short.errors[0]?.preview, '47');

    const afterPacket = parse([Buffer.concat([buildPacket('RES', T.NOOP, []), Buffer.from('OK\n')])]);
    assert.equal(afterPacket.packets.length, 1);
    assert.equal(afterPacket.errors[0]?.offset, 12);
  });

  test('Parser.push should reject a magic that differs in any byte', () => {
    const good = buildPacket('RES', T.NOOP, []);
    for (let i = 0; i < 4; i++) {
      const bad = Buffer.from(good);
      bad[i] = (bad[i] as number) ^ 0x01;
      for (const chunks of [[bad], bytewise(bad), cut(bad, i)]) {
        const result = parse(chunks);
        assert.equal(result.packets.length, 0, `byte ${i}`);
        assert.equal(result.errors.length, 1, `byte ${i}`);
        assert.equal(result.errors[0]?.packetType, -1);
      }
    }
  });

  test('Parser.push should reject wrong arity: too few NULs, and data on a 0-arity packet', () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['JOB_ASSIGN_UNIQ with 2 NULs', buildPacket('RES', T.JOB_ASSIGN_UNIQ, ['h', 'f', 'workload']), /JOB_ASSIGN_UNIQ needs 4 arguments but has 3/],
      ['WORK_COMPLETE without NUL', buildPacket('REQ', T.WORK_COMPLETE, ['h-and-result']), /WORK_COMPLETE needs 2 arguments but has 1/],
      ['SUBMIT_JOB_SCHED short', buildPacket('REQ', T.SUBMIT_JOB_SCHED, ['f', 'u', '1']), /needs 8 arguments but has 3/],
      ['JOB_ASSIGN empty data', buildPacket('RES', T.JOB_ASSIGN, []), /needs 3 arguments but has 1/],
    ];
    const prefix = buildPacket('RES', T.NOOP, []);
    for (const [name, bytes, message] of cases) {
      const stream = Buffer.concat([prefix, bytes]);
      // Whole (views into the chunk) and split inside the data (assembled body): same report.
      for (const chunks of [[stream], cut(stream, stream.length - 1)]) {
        const result = parse(chunks);
        assert.equal(result.packets.length, 1, name);
        assert.equal(result.errors.length, 1, name);
        const error = result.errors[0] as ProtocolError;
        assert.match(error.message, message, name);
        assert.equal(error.offset, prefix.length, name);
        // The preview starts at the packet's header, whichever way its bytes arrived.
        assert.equal(error.preview, bytes.subarray(0, 32).toString('hex'), name);
      }
    }
  });

  test('Parser.push should refuse input after an error until reset(), and parse again after reset()', () => {
    const good = buildPacket('RES', T.NO_JOB, []);
    const { parser, packets, errors } = collect();
    parser.push(Buffer.from('ERR x\n'));
    assert.equal(errors.length, 1);
    assert.equal(parser.failed, true);

    parser.push(good);
    parser.push(good);
    assert.equal(packets.length, 0, 'a failed parser must not emit');
    assert.equal(errors.length, 1, 'a failed parser reports once');

    parser.reset();
    assert.equal(parser.failed, false);
    parser.push(Buffer.concat([good, good.subarray(0, 5)]));
    assert.equal(packets.length, 1);
    assert.equal(parser.partial, true);
    parser.push(good.subarray(5));
    assert.equal(packets.length, 2);
    assert.equal(parser.partial, false);
  });

  test('Parser.reset should drop a partial packet and restart error offsets at 0', () => {
    const { parser, packets, errors } = collect();
    const job = (FIXTURES[3] as Fixture).bytes;
    parser.push(job.subarray(0, 20));
    assert.equal(parser.partial, true);
    parser.reset();
    assert.equal(parser.partial, false);
    // Without the reset, these bytes would be taken as the rest of the dropped packet.
    parser.push(job);
    assert.equal(packets.length, 1);
    parser.push(Buffer.from('x'));
    assert.equal(errors[0]?.offset, job.length);
  });

  test('Parser.push should stop the current chunk when onPacket calls reset()', () => {
    const three = Buffer.concat([STREAM.subarray(0, 12), STREAM.subarray(0, 12), STREAM.subarray(0, 12)]);
    const seen: number[] = [];
    const parser: Parser = new Parser({
      onPacket: (packet) => {
        seen.push(packet.type);
        if (seen.length === 1) parser.reset();
      },
      onError: (error) => assert.fail(error),
    });
    parser.push(three);
    assert.deepEqual(seen, [T.NOOP], 'packets after the reset must be dropped');
    assert.equal(parser.partial, false);
    parser.push(buildPacket('RES', T.NO_JOB, []));
    assert.deepEqual(seen, [T.NOOP, T.NO_JOB]);
  });

  test('Parser.push should stop when onPacket calls reset() on a packet assembled across chunks', () => {
    const job = (FIXTURES[3] as Fixture).bytes;
    const noop = buildPacket('RES', T.NOOP, []);
    const seen: number[] = [];
    const parser: Parser = new Parser({
      onPacket: (packet) => {
        seen.push(packet.type);
        if (packet.type === T.JOB_ASSIGN_UNIQ) parser.reset();
      },
      onError: (error) => assert.fail(error),
    });
    parser.push(job.subarray(0, 30));
    // The tail of the job, then a NOOP and half a NOOP: dropped by the reset.
    parser.push(Buffer.concat([job.subarray(30), noop, noop.subarray(0, 6)]));
    assert.deepEqual(seen, [T.JOB_ASSIGN_UNIQ]);
    assert.equal(parser.partial, false);
    parser.push(noop);
    assert.deepEqual(seen, [T.JOB_ASSIGN_UNIQ, T.NOOP]);
  });

  test('Parser.push should queue a push made from inside onPacket behind the current chunk', () => {
    const noop = buildPacket('RES', T.NOOP, []);
    const noJob = buildPacket('RES', T.NO_JOB, []);
    const seen: number[] = [];
    let pushed = false;
    const parser: Parser = new Parser({
      onPacket: (packet) => {
        seen.push(packet.type);
        if (!pushed) {
          pushed = true;
          // A fake socket that answers synchronously would do this: its bytes come after this chunk's.
          parser.push(noJob);
        }
      },
      onError: (error) => assert.fail(error),
    });
    parser.push(Buffer.concat([noop, noop]));
    // Parsed in the middle of the chunk, NO_JOB would have come between the two NOOPs.
    assert.deepEqual(seen, [T.NOOP, T.NOOP, T.NO_JOB]);
    // And a queued chunk must not land inside a packet: here it completes what the first chunk started.
    const order: number[] = [];
    let once = false;
    const p3: Parser = new Parser({
      onPacket: (packet) => {
        order.push(packet.type);
        if (!once) {
          once = true;
          p3.push(noJob.subarray(4));
        }
      },
      onError: (error) => assert.fail(error),
    });
    p3.push(Buffer.concat([noop, noJob.subarray(0, 4)]));
    assert.deepEqual(order, [T.NOOP, T.NO_JOB]);
    assert.equal(p3.partial, false);
  });

  test('Parser.push should rethrow an exception from onPacket and then refuse input until reset()', () => {
    const noop = buildPacket('RES', T.NOOP, []);
    let calls = 0;
    const parser = new Parser({
      onPacket: () => {
        calls++;
        if (calls === 1) throw new Error('consumer bug');
      },
      onError: (error) => assert.fail(error),
    });
    assert.throws(() => parser.push(Buffer.concat([noop, noop, noop.subarray(0, 3)])), /consumer bug/);
    assert.equal(parser.failed, true);
    assert.equal(parser.partial, false);
    // The rest of that chunk was never parsed: these bytes would be read from the middle of a packet.
    parser.push(noop.subarray(3));
    assert.equal(calls, 1);
    parser.reset();
    parser.push(noop);
    assert.equal(calls, 2);
  });

  test('Parser.push should report error offsets in the whole stream across pushes', () => {
    const { parser, errors } = collect();
    const job = (FIXTURES[3] as Fixture).bytes;
    parser.push(job.subarray(0, 7));
    parser.push(job.subarray(7));
    parser.push(job.subarray(0, 3));
    parser.push(Buffer.concat([job.subarray(3), buildPacket('RES', 99, [])]));
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.offset, job.length * 2);
    assert.equal(errors[0]?.packetType, 99);
  });

  test('Parser.push should hold nothing once a chunk ends on a packet boundary', () => {
    const { parser, packets } = collect();
    parser.push(STREAM);
    assert.equal(parser.partial, false);
    parser.push(STREAM.subarray(0, 30));
    assert.equal(parser.partial, true);
    parser.push(STREAM.subarray(30));
    assert.equal(parser.partial, false);
    assert.equal(packets.length, FIXTURES.length * 2);
  });

  test('Parser.push should leave kept packets intact while it parses 100 more chunks, split ones included', () => {
    const { parser, packets } = collect();
    const random = prng(7);
    // Every packet split somewhere, so each is assembled in a parser-made buffer that a buggy parser
    // could reuse for the next split packet.
    const expected: Fixture[] = [];
    for (let round = 0; round < 100; round++) {
      const f = fixture(`round ${round}`, 'RES', T.JOB_ASSIGN_UNIQ, [`H:x:${round}`, 'f', `u${round}`, randomBytes(random, 1 + Math.floor(random() * 300))]);
      expected.push(f);
      const at = 1 + Math.floor(random() * (f.bytes.length - 1));
      for (const chunk of cut(f.bytes, at)) parser.push(chunk);
    }
    // And views into whole chunks stay what they were after other chunks were pushed.
    for (const f of FIXTURES) {
      parser.push(Buffer.from(f.bytes));
      expected.push(f);
    }
    assert.equal(packets.length, expected.length);
    assert.deepEqual(packets.map(shape), expected.map(shape));
  });

  test('Parser constructor should refuse a maxPacketSize that is not a uint32', () => {
    for (const bad of [Number.NaN, -1, 1.5, 2 ** 32, Infinity]) {
      assert.throws(() => collect({ maxPacketSize: bad }), InternalError, String(bad));
    }
    assert.doesNotThrow(() => collect({ maxPacketSize: 0 }));
  });

  test('Parser.push should accept empty chunks anywhere', () => {
    const chunks = cut(STREAM, 0, 0, 5, 5, 12, 12, 40, STREAM.length);
    expectPackets(parse(chunks), FIXTURES, 'with empty chunks');
  });
});

describe('Parser fuzz', () => {
  interface Outcome {
    packets: object[];
    error: { offset: number; packetType: number; message: string } | null;
    threw: unknown;
  }

  function run(chunks: readonly Buffer[], maxPacketSize: number): Outcome {
    const packets: object[] = [];
    let error: Outcome['error'] = null;
    let errors = 0;
    let threw: unknown = null;
    const parser = new Parser({
      onPacket: (packet) => {
        // Invariants a consumer relies on, whatever the input.
        assert.equal(error, null, 'packet after an error');
        assert.equal(packet.args.length, ARGS[packet.type], `arity of type ${packet.type}`);
        for (const arg of packet.args) assert.ok(Buffer.isBuffer(arg));
        packets.push(shape(packet));
      },
      onError: (e) => {
        errors++;
        assert.ok(e instanceof ProtocolError);
        assert.ok(e.preview.length > 0 && e.preview.length <= 64);
        error = { offset: e.offset, packetType: e.packetType, message: e.message.replace(/ \(offset.*$/, '') };
      },
      maxPacketSize,
    });
    try {
      for (const chunk of chunks) parser.push(chunk);
    } catch (err) {
      threw = err;
    }
    assert.ok(errors <= 1, 'more than one error for one stream');
    return { packets, error, threw };
  }

  function randomCuts(random: () => number, bytes: Buffer): Buffer[] {
    const offsets = Array.from({ length: Math.floor(random() * 6) }, () => Math.floor(random() * (bytes.length + 1)));
    return cut(bytes, ...offsets.sort((a, b) => a - b));
  }

  test('Parser.push should never throw on random bytes, whatever the split points', () => {
    const random = prng(0xc0dec);
    for (let i = 0; i < 3000; i++) {
      const input = randomBytes(random, Math.floor(random() * 200));
      // Half the inputs start with a valid magic so the fuzz gets past the first check.
      if (i % 2 === 0 && input.length >= 4) Buffer.from([0, 0x52, 0x45, random() < 0.5 ? 0x51 : 0x53]).copy(input);
      const outcome = run(randomCuts(random, input), 4096);
      assert.equal(outcome.threw, null, `input ${i} ${input.toString('hex')}`);
    }
  });

  test('Parser.push should give the same packets and error for mutated streams however they are split', () => {
    const random = prng(0xbadc0de);
    let withError = 0;
    let withPackets = 0;
    for (let i = 0; i < 2000; i++) {
      const input = Buffer.from(STREAM.subarray(0, Math.floor(random() * (STREAM.length + 1))));
      const flips = Math.floor(random() * 4);
      for (let f = 0; f < flips && input.length > 0; f++) {
        input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      }
      const whole = run([input], 4096);
      const split = run(randomCuts(random, input), 4096);
      const bytes = run(bytewise(input), 4096);
      assert.equal(whole.threw, null);
      assert.deepEqual(split, whole, `input ${i} ${input.toString('hex')}`);
      assert.deepEqual(bytes, whole, `input ${i} byte by byte`);
      if (whole.error !== null) withError++;
      if (whole.packets.length > 0) withPackets++;
    }
    // The fuzz must exercise both outcomes to mean anything.
    assert.ok(withError > 200, `only ${withError} inputs failed`);
    assert.ok(withPackets > 200, `only ${withPackets} inputs produced packets`);
  });
});
