import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { lookupUser, programFiles } from '../../src/daemon/drop-privileges.js';
import { DEFAULT_CHILD_EXEC } from '../../src/master/child-process.js';
import { nodeForEveryone } from '../helpers/node-for-everyone.js';
import { tempDir } from '../helpers/temp-dir.js';

const MODULE = new URL('../../src/daemon/drop-privileges.js', import.meta.url).href;
const isRoot = process.getuid?.() === 0;
/** The node the as-nobody scripts run on: nobody may run it wherever the checkout lives. */
const NODE = isRoot ? nodeForEveryone() : process.execPath;

test('lookupUser should read uid and gid from the passwd file', (t) => {
  const dir = tempDir(t);
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

test('programFiles should list node, the child entry, the package.json and each runtime dependency', () => {
  const programDir = path.dirname(path.dirname(DEFAULT_CHILD_EXEC));
  const packageJson = path.join(programDir, '..', '..', 'package.json');
  const files = programFiles(programDir, packageJson);
  assert.equal(files[0], process.execPath);
  assert.ok(files.includes(packageJson));
  assert.ok(files.includes(DEFAULT_CHILD_EXEC), 'the child entry');
  assert.ok(files.some((file) => file.endsWith(path.join('undici', 'package.json'))), 'undici, which only the children load');
});

test('checkProgramReadable should name the unreadable file and the directory that stops the user', { skip: isRoot ? false : 'needs root' }, (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const shut = path.join(dir, 'shut');
  mkdirSync(path.join(shut, 'inner'), { recursive: true });
  chmodSync(shut, 0o700);
  const hidden = path.join(shut, 'inner', 'main.js');
  writeFileSync(hidden, '');
  const open = path.join(dir, 'open.js');
  writeFileSync(open, '');
  chmodSync(open, 0o644);
  const secret = path.join(dir, 'secret.js');
  writeFileSync(secret, '');
  chmodSync(secret, 0o600);
  const run = (files: string[]) => {
    const script = `import { checkProgramReadable, dropPrivileges } from ${JSON.stringify(MODULE)};
      dropPrivileges('nobody');
      try { checkProgramReadable('nobody', ${JSON.stringify(files)}); process.stdout.write('ok'); } catch (e) { process.stdout.write(e.code + ' ' + e.message); }`;
    // A node nobody may run (this one may sit in a private checkout): the check looks at the running node first.
    return spawnSync(NODE, ['--input-type=module', '-e', script], { encoding: 'utf8' }).stdout;
  };
  assert.equal(run([NODE, open]), 'ok');
  assert.equal(
    run([open, hidden]),
    `DS_USER --user nobody: the pool processes run as nobody and cannot read ${hidden}: EACCES (${shut} is not searchable by nobody); install driveshaft where nobody can read it (e.g. under /opt or /usr/local) or give nobody access to every directory on the way`,
  );
  // A file that is itself unreadable has no directory to blame.
  assert.match(run([secret]), new RegExp(`^DS_USER --user nobody: the pool processes run as nobody and cannot read ${secret}: EACCES; install`));
});
