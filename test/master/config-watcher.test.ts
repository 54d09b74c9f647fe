import assert from 'node:assert/strict';
import { renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigWatcher, fileSignature, sameSignature } from '../../src/master/config-watcher.js';
import { waitFor } from '../helpers/wait-for.js';
import { tempDir } from '../helpers/temp-dir.js';

function tempFile(t: import('node:test').TestContext, text = 'one'): string {
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeFileSync(file, text);
  return file;
}

test('ConfigWatcher.check should report nothing while the file is untouched', (t) => {
  const file = tempFile(t);
  const changes: unknown[] = [];
  const watcher = new ConfigWatcher({ file, intervalMs: 1000, onChange: (s) => changes.push(s) });
  assert.equal(watcher.check(), false);
  assert.equal(watcher.check(), false);
  assert.equal(changes.length, 0);
});

test('ConfigWatcher.check should notice a new mtime, size or inode once each', (t) => {
  const file = tempFile(t);
  const changes: unknown[] = [];
  const watcher = new ConfigWatcher({ file, intervalMs: 1000, onChange: (s) => changes.push(s) });
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  assert.equal(watcher.check(), true);
  assert.equal(watcher.check(), false);
  // Same mtime, different size.
  const before = fileSignature(file);
  writeFileSync(file, 'longer text');
  if (!('missing' in before)) utimesSync(file, new Date(), new Date(before.mtimeMs));
  assert.equal(watcher.check(), true);
  // Replaced by rename with the same size and mtime: only the inode differs.
  const now = fileSignature(file);
  const other = `${file}.new`;
  writeFileSync(other, 'longer text');
  if (!('missing' in now)) utimesSync(other, new Date(), new Date(now.mtimeMs));
  renameSync(other, file);
  assert.equal(watcher.check(), true);
  assert.equal(changes.length, 3);
});

test('ConfigWatcher.check should report a deleted file once, and its return', (t) => {
  const file = tempFile(t);
  const changes: unknown[] = [];
  const watcher = new ConfigWatcher({ file, intervalMs: 1000, onChange: (s) => changes.push(s) });
  rmSync(file);
  assert.equal(watcher.check(), true);
  assert.equal(watcher.check(), false);
  assert.deepEqual(changes[0], { missing: 'ENOENT' });
  writeFileSync(file, 'back');
  assert.equal(watcher.check(), true);
});

test('ConfigWatcher.accept should move the baseline to what a reload read', (t) => {
  const file = tempFile(t);
  const changes: unknown[] = [];
  const watcher = new ConfigWatcher({ file, intervalMs: 1000, onChange: (s) => changes.push(s) });
  writeFileSync(file, 'edited by hand, reloaded by SIGHUP');
  watcher.accept(fileSignature(file));
  assert.equal(watcher.check(), false);
});

test('ConfigWatcher.start should poll on its interval and close should stop it', async (t) => {
  const file = tempFile(t);
  let changes = 0;
  const watcher = new ConfigWatcher({ file, intervalMs: 20, onChange: () => changes++ });
  watcher.start();
  t.after(() => watcher.close());
  writeFileSync(file, 'changed!');
  await waitFor(() => changes === 1, { timeoutMs: 2000, message: 'the watcher to notice the edit' });
  watcher.close();
  writeFileSync(file, 'changed again, unwatched');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(changes, 1);
});

test('sameSignature should compare missing files by error code', () => {
  assert.equal(sameSignature({ missing: 'ENOENT' }, { missing: 'ENOENT' }), true);
  assert.equal(sameSignature({ missing: 'ENOENT' }, { missing: 'EACCES' }), false);
  assert.equal(sameSignature({ missing: 'ENOENT' }, { mtimeMs: 1, size: 1, ino: 1, dev: 1 }), false);
});
