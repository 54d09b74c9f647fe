import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createPrivateFolder, fileAppendProblem, folderWriteProblem } from '../../src/daemon/private-folder.js';
import { tempDir, writeFile } from '../helpers/temp-dir.js';

const NOBODY = { uid: 65534, gid: 65534 };
const isRoot = process.getuid?.() === 0;

test('createPrivateFolder should create the folder 0700 with its missing parents, and leave an existing one alone', (t) => {
  const dir = tempDir(t);
  const target = path.join(dir, 'state', 'driveshaft', 'dead-letters');
  assert.deepEqual(createPrivateFolder(target, null), [path.join(dir, 'state'), path.join(dir, 'state', 'driveshaft'), target]);
  assert.equal(fs.statSync(target).mode & 0o777, 0o700);
  // Parents are ordinary folders (umask applies), so another user may be let through them.
  assert.notEqual(fs.statSync(path.join(dir, 'state')).mode & 0o777, 0o700);
  fs.chmodSync(target, 0o750);
  assert.deepEqual(createPrivateFolder(target, null), []);
  assert.equal(fs.statSync(target).mode & 0o777, 0o750, 'an existing folder keeps its mode');
  writeFile(dir, 'file', '');
  assert.throws(() => createPrivateFolder(path.join(dir, 'file', 'sub'), null), { code: 'ENOTDIR' });
});

test('createPrivateFolder as root should give every folder it creates to the owner', { skip: isRoot ? false : 'needs root' }, (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'existing'));
  const target = path.join(dir, 'existing', 'driveshaft', 'dead-letters');
  createPrivateFolder(target, NOBODY);
  assert.equal(fs.statSync(target).uid, NOBODY.uid);
  assert.equal(fs.statSync(target).gid, NOBODY.gid);
  assert.equal(fs.statSync(path.dirname(target)).uid, NOBODY.uid);
  assert.equal(fs.statSync(path.join(dir, 'existing')).uid, 0, 'a folder that existed keeps its owner');
});

test('folderWriteProblem and fileAppendProblem should name what stops a write, and leave nothing behind', (t) => {
  const dir = tempDir(t);
  assert.equal(folderWriteProblem(dir), null);
  assert.deepEqual(fs.readdirSync(dir), []);
  assert.equal(folderWriteProblem(path.join(dir, 'missing')), `directory ${path.join(dir, 'missing')}: does not exist`);
  const file = writeFile(dir, 'letters.jsonl', '');
  assert.equal(folderWriteProblem(file), `${file} is not a directory`);
  assert.equal(fileAppendProblem(file), null);
  assert.equal(fileAppendProblem(path.join(dir, 'not-yet.jsonl')), null);
  assert.equal(fileAppendProblem(dir), 'it exists and is not a regular file');
});
