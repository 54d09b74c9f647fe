import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { DeadLetterFile, reopenDeadLetterFiles, type DeadLetter, type DeadLetterRecord } from '../../../src/child/delivery/dead-letters.js';
import { tempDir } from '../../helpers/temp-dir.js';

/** Bytes no text encoding keeps: NUL, bytes that are not UTF-8, a lone continuation byte, CR/LF. */
const BINARY = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x22, 0x5c, 0x00]);

function letter(fields: Partial<DeadLetter> = {}): DeadLetter {
  return {
    pool: 'Regular',
    functionName: 'Sum',
    handle: Buffer.from('H:vm:42'),
    unique: Buffer.from('u-1'),
    workload: Buffer.from('[1,2]'),
    server: '127.0.0.1:4730',
    attempts: 5,
    reason: 'HTTP 503 from http://127.0.0.1:8080/job',
    ...fields,
  };
}

function readRecords(file: string): DeadLetterRecord[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as DeadLetterRecord);
}

function deadLetterFile(t: TestContext, file: string): DeadLetterFile {
  const writer = new DeadLetterFile(file);
  t.after(() => writer.close());
  return writer;
}

test('each letter should be one JSON line with the documented fields, the exact bytes recoverable, in a 0600 file', async (t) => {
  const file = path.join(tempDir(t), 'dead.jsonl');
  const writer = deadLetterFile(t, file);
  const time = new Date('2026-12-01T10:00:00.123Z');
  await writer.write(letter({ time }));
  await writer.write(letter({ unique: Buffer.from([0x75, 0xff, 0x2d]), workload: BINARY, attempts: 1, reason: 'gearman_ret 1' }));
  await writer.write(letter({ unique: Buffer.alloc(0), workload: Buffer.alloc(0), functionName: 'Empty' }));

  const text = readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  const records = readRecords(file);
  assert.equal(records.length, 3);
  assert.deepEqual(records[0], {
    time: '2026-12-01T10:00:00.123Z',
    pool: 'Regular',
    function: 'Sum',
    handle: 'H:vm:42',
    unique: 'u-1',
    workload: Buffer.from('[1,2]').toString('base64'),
    attempts: 5,
    reason: 'HTTP 503 from http://127.0.0.1:8080/job',
    server: '127.0.0.1:4730',
  });
  const binary = records[1] as DeadLetterRecord;
  assert.deepEqual(Buffer.from(binary.workload, 'base64'), BINARY);
  assert.deepEqual(Buffer.from(binary.unique_base64 as string, 'base64'), Buffer.from([0x75, 0xff, 0x2d]), 'a unique that is not UTF-8 keeps its bytes');
  assert.equal(binary.attempts, 1);
  assert.ok(!Number.isNaN(Date.parse(binary.time)) && binary.time.endsWith('Z'), 'time defaults to now, ISO 8601 UTC');
  assert.equal('unique_base64' in (records[0] as object), false, 'a UTF-8 unique needs no base64 copy');
  assert.equal((records[2] as DeadLetterRecord).workload, '');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(path.dirname(file)), ['dead.jsonl'], 'nothing but the file is created');
});

test('write should resolve only after the batch is fsynced, and letters queued meanwhile share one write and fsync', async (t) => {
  const file = path.join(tempDir(t), 'dead.jsonl');
  // Count and hold fsyncs on the real FileHandle class. The file already holds a line, so the only
  // fsyncs are the batches' (a new, empty file also gets its directory fsynced).
  writeFileSync(file, `${JSON.stringify({ unique: 'earlier' })}\n`);
  const probe = await open(file, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const realSync = proto.sync;
  t.after(() => {
    proto.sync = realSync;
  });
  let syncs = 0;
  let release: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (release = resolve));
  proto.sync = async function (this: unknown) {
    syncs++;
    await gate;
    return realSync.call(this);
  };

  const writer = deadLetterFile(t, file);
  let firstDone = false;
  const first = writer.write(letter({ unique: Buffer.from('first') })).then(() => (firstDone = true));
  // Held in its fsync: the letter is in the file but write() has not resolved.
  const deadline = Date.now() + 10_000;
  while (syncs === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(syncs, 1);
  assert.equal(readRecords(file).length, 2, 'the letter is written before its fsync');
  assert.equal(firstDone, false, 'write() must not resolve before fsync completes');

  const rest = Array.from({ length: 20 }, (_, i) => writer.write(letter({ unique: Buffer.from(`queued-${i}`) })));
  const nextGate = new Promise<void>((resolve) => setImmediate(resolve));
  release();
  await first;
  gate = nextGate;
  await Promise.all(rest);
  assert.equal(syncs, 2, 'the 20 letters queued behind the first went out in one batch');
  assert.deepEqual(writer.stats, { letters: 21, batches: 2, opens: 1 });
  assert.deepEqual(
    readRecords(file).map((r) => r.unique),
    ['earlier', 'first', ...Array.from({ length: 20 }, (_, i) => `queued-${i}`)],
    'in the order write() was called',
  );
});

test('many concurrent writes of mixed sizes should each stay one whole line', async (t) => {
  const file = path.join(tempDir(t), 'dead.jsonl');
  const writer = deadLetterFile(t, file);
  const count = 600;
  const sizes = [0, 1, 100, 70_000, 300_000];
  await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const size = sizes[i % sizes.length] as number;
      const workload = Buffer.alloc(size, i % 251);
      return writer.write(letter({ unique: Buffer.from(`u-${i}`), workload }));
    }),
  );
  const records = readRecords(file);
  assert.equal(records.length, count);
  const seen = new Set<string>();
  for (const record of records) {
    const i = Number(record.unique.slice(2));
    assert.ok(!seen.has(record.unique), `${record.unique} twice`);
    seen.add(record.unique);
    assert.deepEqual(Buffer.from(record.workload, 'base64'), Buffer.alloc(sizes[i % sizes.length] as number, i % 251), record.unique);
  }
  assert.ok(writer.stats.batches < count / 4, `expected batching, got ${writer.stats.batches} batches for ${count} letters`);
});

test('reopen should finish pending letters in the old file and write later ones to a new file at the path', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'dead.jsonl');
  const writer = deadLetterFile(t, file);
  await writer.write(letter({ unique: Buffer.from('a') }));
  let pendingDone = false;
  const pending = writer.write(letter({ unique: Buffer.from('b') })).then(() => (pendingDone = true));
  await writer.reopen();
  assert.equal(pendingDone, true, 'reopen waits for the letters queued before it');
  await pending;
  await writer.write(letter({ unique: Buffer.from('b2') }));
  assert.deepEqual(readRecords(file).map((r) => r.unique), ['a', 'b', 'b2'], 'a reopen of a file still in place appends to it');

  // logrotate: move the file away, then USR2 (reopenDeadLetterFiles is what the child runs for it).
  renameSync(file, `${file}.1`);
  await writer.write(letter({ unique: Buffer.from('c') }));
  assert.deepEqual(readRecords(`${file}.1`).map((r) => r.unique), ['a', 'b', 'b2', 'c'], 'without a reopen the moved file is still written');
  const reopened = await reopenDeadLetterFiles();
  assert.ok(reopened.includes(file), `reopenDeadLetterFiles should list ${file}: ${reopened.join(', ')}`);
  await writer.write(letter({ unique: Buffer.from('d') }));
  assert.deepEqual(readRecords(file).map((r) => r.unique), ['d']);
  assert.deepEqual(readRecords(`${file}.1`).map((r) => r.unique), ['a', 'b', 'b2', 'c']);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(writer.stats.opens, 3);
});

test('a write that cannot be done should reject with DS_DEAD_LETTER naming the path and the OS reason, and recover once fixed', async (t) => {
  const dir = tempDir(t);
  const missing = path.join(dir, 'missing', 'dead.jsonl');
  const writer = deadLetterFile(t, missing);
  await assert.rejects(writer.write(letter()), (error: Error & { code?: string; osCode?: string }) => {
    assert.equal(error.code, 'DS_DEAD_LETTER');
    assert.equal(error.osCode, 'ENOENT');
    assert.ok(error.message.includes(missing), error.message);
    assert.match(error.message, /cannot open: ENOENT/);
    return true;
  });
  assert.equal(existsSync(path.dirname(missing)), false, 'the directory is not created');
  mkdirSync(path.dirname(missing));
  await writer.write(letter());
  assert.equal(readRecords(missing).length, 1, 'the next write opens the path afresh');

  const notADirectory = path.join(dir, 'plain-file');
  writeFileSync(notADirectory, '');
  await assert.rejects(deadLetterFile(t, path.join(notADirectory, 'dead.jsonl')).write(letter()), { code: 'DS_DEAD_LETTER', osCode: 'ENOTDIR' });

  // /dev/full opens fine and fails every write with ENOSPC: a full disk without filling one.
  const full = deadLetterFile(t, '/dev/full');
  const results = await Promise.allSettled([full.write(letter()), full.write(letter())]);
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    const error = (result as PromiseRejectedResult).reason as Error & { code?: string; osCode?: string };
    assert.equal(error.code, 'DS_DEAD_LETTER');
    assert.equal(error.osCode, 'ENOSPC');
    assert.match(error.message, /^dead-letter file \/dev\/full: cannot write: ENOSPC/);
  }
  assert.equal(full.stats.letters, 0);
});

test('an unwritable directory should reject with EACCES (skipped as root, whom directory permissions do not stop)', async (t) => {
  if (process.getuid?.() === 0) {
    t.skip('root ignores directory permissions');
    return;
  }
  const dir = path.join(tempDir(t), 'locked');
  mkdirSync(dir);
  chmodSync(dir, 0o500);
  t.after(() => chmodSync(dir, 0o700));
  await assert.rejects(deadLetterFile(t, path.join(dir, 'dead.jsonl')).write(letter()), { code: 'DS_DEAD_LETTER', osCode: 'EACCES' });
});

test('a file left ending mid-line should get its fragment terminated so the next letter is a line of its own', async (t) => {
  const file = path.join(tempDir(t), 'dead.jsonl');
  // A writer killed part-way through a line.
  writeFileSync(file, `${JSON.stringify({ function: 'Sum' })}\n{"time":"2026-12-01T1`);
  const writer = deadLetterFile(t, file);
  await writer.write(letter({ unique: Buffer.from('after') }));
  const lines = readFileSync(file, 'utf8').split('\n');
  assert.equal(lines[1], '{"time":"2026-12-01T1');
  assert.equal((JSON.parse(lines[2] as string) as DeadLetterRecord).unique, 'after');
});

test('close should write what is queued, then refuse further letters', async (t) => {
  const file = path.join(tempDir(t), 'dead.jsonl');
  const writer = new DeadLetterFile(file);
  const queued = writer.write(letter());
  await writer.close();
  await queued;
  assert.equal(readRecords(file).length, 1);
  await assert.rejects(writer.write(letter()), (error: Error & { code?: string }) => error.code === 'DS_DEAD_LETTER' && /closed/.test(error.message));
  assert.equal((await reopenDeadLetterFiles()).includes(file), false, 'a closed file leaves the registry');
  assert.throws(() => new DeadLetterFile('relative/dead.jsonl'), { code: 'DS_DEAD_LETTER' });
});
