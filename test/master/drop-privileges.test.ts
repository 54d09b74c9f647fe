import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { lookupUser } from '../../src/master/drop-privileges.js';

const MODULE = new URL('../../src/master/drop-privileges.js', import.meta.url).href;
const isRoot = process.getuid?.() === 0;

test('lookupUser should read uid and gid from the passwd file', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ds-user-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const passwd = path.join(dir, 'passwd');
  writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/sh\nworker:x:1234:567::/home/worker:/bin/false\n');
  assert.deepEqual(lookupUser('worker', passwd), { name: 'worker', uid: 1234, gid: 567 });
  assert.deepEqual(lookupUser('root'), { name: 'root', uid: 0, gid: 0 });
});

test('lookupUser should name an unknown user', () => {
  assert.throws(
    () => lookupUser('no-such-user-ds'),
    (error: Error & { code?: string }) => error.code === ErrorCode.USER && error.message === '--user no-such-user-ds: no such user',
  );
});

test('dropPrivileges should become the user with its groups', { skip: isRoot ? false : 'needs root' }, () => {
  const script = `import { dropPrivileges } from ${JSON.stringify(MODULE)};
    const id = dropPrivileges('nobody');
    process.stdout.write(JSON.stringify({ id, uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(), groups: process.getgroups() }));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout) as { id: { uid: number; gid: number }; uid: number; euid: number; gid: number; groups: number[] };
  assert.equal(out.uid, out.id.uid);
  assert.equal(out.euid, out.id.uid);
  assert.equal(out.gid, out.id.gid);
  assert.ok(!out.groups.includes(0), `root's group 0 kept: ${out.groups.join(',')}`);
});

test('dropPrivileges should refuse clearly when not root', { skip: isRoot ? false : 'needs root to set up' }, () => {
  const script = `import { dropPrivileges } from ${JSON.stringify(MODULE)};
    process.setgid(65534); process.setuid(65534);
    try { dropPrivileges('root'); } catch (e) { process.stdout.write(e.code + ' ' + e.message); }`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(result.stdout, 'DS_USER --user root: only root can change user (running as uid 65534)');
});
