/**
 * What the parser keeps alive, observed through the garbage collector (node-postgres PRs #3531/#3533
 * were a parser holding the last buffer). Each test has a control that keeps a reference on purpose,
 * so "collected" cannot pass just because the probe is blind.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Parser, type Packet } from '../../src/codec/index.js';
import { buildPacket, T } from '../helpers/packet-builder.js';

// `node --test` gives no way to pass --expose-gc to one file; a fresh context picks the flag up.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A WeakRef is only cleared after the job that created it ends, so each attempt yields first. */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let attempt = 0; attempt < 10; attempt++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    if (ref.deref() === undefined) return true;
  }
  return false;
}

/** Bigger than Buffer.poolSize / 2, so the buffer owns its ArrayBuffer instead of sharing the pool slab. */
const BIG = 64 * 1024;

function job(workloadSize: number): Buffer {
  return buildPacket('RES', T.JOB_ASSIGN_UNIQ, ['H:x:1', 'f', 'u', Buffer.alloc(workloadSize, 0x61)]);
}

describe('Parser retention', () => {
  test('Parser.push should keep no reference to a chunk of complete packets once emitted', async () => {
    let kept: Packet | undefined;
    const parser = new Parser({ onPacket: () => {}, onError: (error) => assert.fail(error) });
    const keeping = new Parser({ onPacket: (packet) => (kept = packet), onError: (error) => assert.fail(error) });

    const refs = ((): [WeakRef<object>, WeakRef<object>] => {
      const dropped = job(BIG);
      const held = job(BIG);
      parser.push(dropped);
      keeping.push(held);
      return [new WeakRef(dropped.buffer), new WeakRef(held.buffer)];
    })();

    assert.equal(parser.partial, false);
    assert.equal(await collected(refs[0]), true, 'the parser kept the chunk alive');
    // Control: a consumer holding a packet holds the chunk its views point into.
    assert.equal(await collected(refs[1]), false, 'the probe cannot see retention');
    assert.equal(kept?.args[3]?.length, BIG);
  });

  test('Parser.push should not keep the chunk that holds the start of a split packet', async () => {
    const packets: Packet[] = [];
    const parser = new Parser({ onPacket: (packet) => packets.push(packet), onError: (error) => assert.fail(error) });
    const bytes = job(BIG);
    const ref = ((): WeakRef<object> => {
      // A fresh chunk (own ArrayBuffer) carrying the header and half the body.
      const first = Buffer.from(bytes.subarray(0, BIG / 2));
      parser.push(first);
      return new WeakRef(first.buffer);
    })();
    assert.equal(parser.partial, true);
    // The parser copied what it needs; the chunk itself must be free while the packet is incomplete.
    assert.equal(await collected(ref), true, 'the parser kept the first chunk of a split packet');
    parser.push(Buffer.from(bytes.subarray(BIG / 2)));
    assert.equal(packets.length, 1);
    assert.ok(packets[0]?.args[3]?.equals(Buffer.alloc(BIG, 0x61)));
  });

  test('Parser.push should release an assembled split packet once the consumer drops it', async () => {
    let kept: Packet | undefined;
    let keep = false;
    const parser = new Parser({
      onPacket: (packet) => {
        if (keep) kept = packet;
        else refs.push(new WeakRef(packet.args[3]?.buffer as ArrayBuffer));
      },
      onError: (error) => assert.fail(error),
    });
    const refs: Array<WeakRef<object>> = [];
    const bytes = job(BIG);
    for (const at of [5, 100, BIG / 2]) {
      parser.push(Buffer.from(bytes.subarray(0, at)));
      parser.push(Buffer.from(bytes.subarray(at)));
    }
    assert.equal(parser.partial, false);
    assert.equal(refs.length, 3);
    for (const ref of refs) assert.equal(await collected(ref), true, 'the parser kept an assembled body');

    // Control: the same path with the consumer keeping the packet.
    keep = true;
    parser.push(Buffer.from(bytes.subarray(0, 100)));
    parser.push(Buffer.from(bytes.subarray(100)));
    const control = new WeakRef(kept?.args[3]?.buffer as ArrayBuffer);
    assert.equal(await collected(control), false);
    assert.equal(kept?.args[3]?.length, BIG);
  });
});
