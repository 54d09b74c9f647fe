import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { isProcessAlive, isZombie, PidFile } from '../../src/daemon/pid-file.js';
import { tempDir } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const result = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(result.stdout);
}

test('PidFile.acquire should write our pid and leave no temporary file', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'driveshaft.pid');
  const pidFile = PidFile.acquire(file);
  assert.equal(readFileSync(file, 'utf8'), `${process.pid}\n`);
  assert.deepEqual(readdirSync(dir), ['driveshaft.pid']);
  assert.equal(pidFile.release(), true);
  assert.equal(existsSync(file), false);
  assert.equal(pidFile.release(), false);
});

test('PidFile.acquire should refuse a file naming a live process', (t) => {
  const file = path.join(tempDir(t), 'live.pid');
  writeFileSync(file, `${process.ppid}\n`);
  assert.throws(
    () => PidFile.acquire(file),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, ErrorCode.PID_FILE);
      assert.match(error.message, new RegExp(`live.pid: pid file names process ${process.ppid}, which is running`));
      return true;
    },
  );
  assert.equal(readFileSync(file, 'utf8'), `${process.ppid}\n`);
});

test('PidFile.acquire should take over a stale file (dead pid, garbage, empty, our own pid)', (t) => {
  const dir = tempDir(t);
  for (const content of [`${deadPid()}\n`, 'not a pid', '', `${process.pid}`]) {
    const file = path.join(dir, 'stale.pid');
    writeFileSync(file, content);
    const stale: Array<number | null> = [];
    const pidFile = PidFile.acquire(file, { onStale: (pid) => stale.push(pid) });
    assert.equal(readFileSync(file, 'utf8'), `${process.pid}\n`, JSON.stringify(content));
    assert.equal(stale.length, 1);
    pidFile.release();
  }
});

test('PidFile.release should leave a file that another process has taken over', (t) => {
  const file = path.join(tempDir(t), 'taken.pid');
  const pidFile = PidFile.acquire(file);
  writeFileSync(file, '12345\n');
  assert.equal(pidFile.release(), false);
  assert.equal(readFileSync(file, 'utf8'), '12345\n');
});

test('PidFile.acquire should fail clearly when the folder does not exist', (t) => {
  const file = path.join(tempDir(t), 'missing', 'x.pid');
  assert.throws(() => PidFile.acquire(file), /x\.pid: cannot write pid file: ENOENT/);
});

test('isProcessAlive should tell live and dead pids apart', () => {
  assert.equal(isProcessAlive(process.pid), true);
  assert.equal(isProcessAlive(deadPid()), false);
});

test('isProcessAlive should count an unreaped (zombie) process as dead, and PidFile.acquire take its file over', async (t) => {
  // `sh` forks a subshell, then execs into `sleep`, which never reaps it. The subshell exits only once
  // its parent has become `sleep`: exiting earlier would let the shell itself reap it (a flaky test).
  const script = 'p=$$; (while [ "$(cat /proc/$p/comm)" != sleep ]; do sleep 0.01; done) & echo $!; exec sleep 30';
  const parent = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => parent.kill('SIGKILL'));
  const [line] = (await once(parent.stdout, 'data')) as [Buffer];
  const zombie = Number(line.toString().trim());
  await waitFor(() => isZombie(zombie), { timeoutMs: 5000, message: `pid ${zombie} to become a zombie` });
  assert.equal(isProcessAlive(zombie), false);
  const file = path.join(tempDir(t), 'driveshaft.pid');
  writeFileSync(file, `${zombie}\n`);
  const pidFile = PidFile.acquire(file);
  t.after(() => pidFile.release());
  assert.equal(readFileSync(file, 'utf8').trim(), String(process.pid));
});
