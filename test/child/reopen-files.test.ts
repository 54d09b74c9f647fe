/**
 * USR2 for dead-letter files: the master sends `reopen-files`, and the real child entry closes every
 * open DeadLetterFile after its pending writes, answers `files-reopened` with their paths, and the next
 * letter goes to a new file at the path.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ChildToMaster } from '../../src/ipc/messages.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/dead-letter-child.js');

function uniques(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { unique: string }).unique);
}

test('reopen-files should make the child close its dead-letter files and write the next letter to a new file', async (t) => {
  const file = path.join(tempDir(t), 'dead.jsonl');
  const child = fork(FIXTURE, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, DEAD_LETTER_FILE: file } });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const messages: Array<Record<string, unknown>> = [];
  child.on('message', (message) => messages.push(message as Record<string, unknown>));
  const find = (predicate: (m: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> =>
    waitFor(() => messages.find(predicate), { timeoutMs: 10_000, intervalMs: 5, message: what });
  const writeLetter = async (unique: string): Promise<void> => {
    child.send({ type: 'test-write-letter', unique });
    const reply = await find((m) => m['type'] === 'test-letter-written' && m['unique'] === unique, `letter ${unique} written`);
    assert.equal(reply['error'], undefined);
  };

  await find((m) => m['type'] === 'hello', 'the child hello');
  await writeLetter('before');
  renameSync(file, `${file}.1`);
  child.send({ type: 'reopen-files', seq: 7 });
  const reply = (await find((m) => m['type'] === 'files-reopened', 'files-reopened')) as Extract<ChildToMaster, { type: 'files-reopened' }>;
  assert.deepEqual(reply, { type: 'files-reopened', ack: 7, files: [file] });
  await writeLetter('after');
  assert.deepEqual(uniques(`${file}.1`), ['before']);
  assert.deepEqual(uniques(file), ['after']);
});
