import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../helpers/free-port.js';
import { startGearmand } from '../helpers/gearmand.js';
import { nodeForEveryone } from '../helpers/node-for-everyone.js';
import { waitFor } from '../helpers/wait-for.js';
import { BIN, isAlive, spawnDaemon, startServing, statusExchange } from './daemon.js';
import { writeJobs } from '../helpers/jobs-file.js';
import { tempDir } from '../helpers/temp-dir.js';

const execFileAsync = promisify(execFile);

/** Runs the CLI to completion. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, timeout: 90_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function goodConfig(t: import('node:test').TestContext, port = 4730): { dir: string; file: string } {
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, [`127.0.0.1:${port}`], { Regular: { uri: 'http://127.0.0.1:1/job', count: 1, jobs: ['Sum'] } });
  return { dir, file };
}

test('--help and --version should print and exit 0', async () => {
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--jobsconfig PATH/);
  const version = await cli(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^driveshaft \d+\.\d+\.\d+\n$/);
});

test('bad command-line input should exit 2 with one clear line', async () => {
  for (const [args, pattern] of [
    [['--jobsconfig'], /--jobsconfig: expected a value/],
    [['--bogus'], /--bogus: unknown option/],
    [['--jobsconfig', 'x.json', '--loop_timeout', '-1'], /--loop_timeout/],
    [[], /jobsconfig/],
  ] as const) {
    const result = await cli([...args]);
    assert.equal(result.code, 2, JSON.stringify(args));
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? '', pattern);
    assert.equal(result.stdout, '');
  }
});

test('--check should validate both files and exit 0 or 2', async (t) => {
  const { dir, file } = goodConfig(t);
  const good = await cli(['--jobsconfig', file, '--check']);
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /OK/);
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, '{"gearman_servers_list": ["localhost"], "pools_list": {"Regular": {"job_processing_uri": "http://x/", "worker_cuont": 1, "jobs_list": ["A"]}}}');
  const result = await cli(['--jobsconfig', bad, '--check']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /pools_list\.Regular\.worker_cuont/);
});

test('a startup config error should exit 2 with one line per problem naming file and JSON path', async (t) => {
  const dir = tempDir(t);
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, '{"gearman_servers_list": ["localhost"], "pools_list": {"Regular": {"job_processing_uri": "ftp://x/", "worker_count": "4", "jobs_list": ["A"]}}}');
  const result = await cli(['--jobsconfig', bad]);
  assert.equal(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 2, result.stderr);
  assert.ok(lines.some((l) => l.includes(bad) && l.includes('pools_list.Regular.worker_count')), result.stderr);
  assert.ok(lines.some((l) => l.includes(bad) && l.includes('pools_list.Regular.job_processing_uri')), result.stderr);
  assert.equal(result.stdout, '', 'nothing started, nothing logged');
  const missing = await cli(['--jobsconfig', path.join(dir, 'nope.json')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.json/);
  const badLog = path.join(dir, 'log.json');
  writeFileSync(badLog, '{"level": "loud"}');
  const { file } = goodConfig(t);
  const log = await cli(['--jobsconfig', file, '--logconfig', badLog]);
  assert.equal(log.code, 2);
  assert.match(log.stderr, /log\.json: level: expected one of/);
});

test('a config over the open-file limit should be refused at startup with exit 2 and both numbers', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'jobs.json');
  writeJobs(file, ['127.0.0.1:4730'], { Huge: { uri: 'http://127.0.0.1:1/job', count: 100, jobs: ['Sum'] } });
  const result = await execFileAsync('sh', ['-c', `ulimit -n 100 && exec "${process.execPath}" "${BIN}" --jobsconfig "${file}"`]).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
  assert.equal(result.code, 2);
  assert.match(result.stderr, /needs 232 file descriptors .* limit is 100/);
});

test('a status port already in use should exit 2 with a clear line', async (t) => {
  const { file } = goodConfig(t);
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const daemon = spawnDaemon(t, ['--jobsconfig', file, '--status_port', String(port)]);
  assert.equal((await daemon.exited).code, 2);
  assert.match(daemon.output(), new RegExp(`--status_port ${port}: cannot listen on 127.0.0.1:${port}: .*EADDRINUSE`));
});

test('the status port should refuse unknown commands, garbage and long lines, time out idle clients, and keep serving', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const { file } = goodConfig(t, gearmand.port);
  const port = await freePort();
  const daemon = await startServing(t, ['--jobsconfig', file, '--status_port', String(port), '--loop_timeout', '0.5']);
  assert.equal(await statusExchange(port, 'hello\r\n'), 'Error: unrecognized command\r\n');
  assert.equal(await statusExchange(port, Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x0a])), 'Error: unrecognized command\r\n');
  assert.equal(await statusExchange(port, 'x'.repeat(5000)), 'Error: line too long\r\n');
  for (const ending of ['\r\n', '\n', '\r']) {
    const threads = await statusExchange(port, `threads${ending}`);
    assert.match(threads, /^\d+-\d+\tRegular\t0\tWaiting for work\r\n$/, JSON.stringify(ending));
  }
  // Idle: closed without a reply after about a second (min(5 s, max(1 s, loop_timeout))).
  const started = Date.now();
  assert.equal(await statusExchange(port, ''), '');
  const idle = Date.now() - started;
  assert.ok(idle >= 900 && idle < 4000, `idle close after ${idle} ms`);
  // Many clients at once, some resetting: the daemon survives.
  await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      new Promise<void>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          if (i % 2 === 0) socket.resetAndDestroy();
          else socket.end('gauges\n');
        });
        socket.on('error', () => resolve());
        socket.on('close', () => resolve());
        socket.resume();
      }),
    ),
  );
  assert.match(await statusExchange(port, 'gauges\n'), /Regular\.slots: 1\r\n/);
  assert.equal(isAlive(daemon.pid), true);
  // Bound to 127.0.0.1 by default.
  assert.deepEqual(daemon.logs.find((r) => r.event === 'started')?.statusAddress, { host: '127.0.0.1', port });
});

test('--daemonize should return 0 only once the daemon serves, and remove its pid file on stop', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const { dir } = goodConfig(t, gearmand.port);
  const port = await freePort();
  const pidFile = path.join(dir, 'd.pid');
  const logFile = path.join(dir, 'd.log');
  writeFileSync(path.join(dir, 'log.json'), JSON.stringify({ name: 'driveshaft', level: 'info', streams: [{ type: 'file', path: 'd.log' }] }));
  t.after(() => {
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  // Relative paths, resolved against the launcher's working directory before detaching.
  const result = await execFileAsync(process.execPath, [BIN, '--jobsconfig', 'jobs.json', '--logconfig', 'log.json', '--pid_file', 'd.pid', '--status_port', String(port), '--daemonize', '--loop_timeout', '0.5'], { cwd: dir, timeout: 60_000 });
  // Serving right away: the status port answers, the pid file names a live process.
  const threads = await statusExchange(port, 'threads\n');
  assert.match(threads, /\tRegular\t0\tWaiting for work\r\n/);
  assert.equal(result.stdout, '');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(isAlive(pid));
  // File streams are asynchronous: the record may land a moment after the launcher returned.
  await waitFor(() => readFileSync(logFile, 'utf8').includes('"event":"started"'), { timeoutMs: 5000, message: 'the started record in the log file' });
  // USR2 reopens the log file (logrotate moved it away).
  renameSync(logFile, `${logFile}.1`);
  process.kill(pid, 'SIGUSR2');
  await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('"event":"logs-reopened"'), { timeoutMs: 10_000, message: 'a new log file after USR2' });
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !isAlive(pid), { timeoutMs: 10_000, message: 'the daemon to exit' });
  assert.equal(existsSync(pidFile), false);
  assert.match(readFileSync(logFile, 'utf8'), /"event":"stopped"/);
});

test('--daemonize should exit non-zero with the reason when the daemon cannot start', async (t) => {
  const dir = tempDir(t);
  writeFileSync(path.join(dir, 'bad.json'), '{"gearman_servers_list": [], "pools_list": {}}');
  const result = await cli(['--jobsconfig', path.join(dir, 'bad.json'), '--daemonize']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /bad\.json: gearman_servers_list/);
  // A port in use is found by the daemon itself, after detaching: still reported by the launcher.
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const { file } = goodConfig(t);
  const busy = await cli(['--jobsconfig', file, '--daemonize', '--status_port', String(port)]);
  assert.equal(busy.code, 2);
  assert.match(busy.stderr, /EADDRINUSE/);
});

/**
 * A copy of the program (bin/, dist/src, package.json and the runtime dependencies from node_modules)
 * in a new temporary folder, so a --user test does not depend on where the checkout lives: a clone
 * under /root is readable by root only. `readable`: every user can read the copy; otherwise the
 * folder keeps mkdtemp's 0700, like a private checkout. Returns the copy's bin/driveshaft.js.
 */
function programCopy(t: import('node:test').TestContext, readable: boolean): string {
  const root = path.dirname(path.dirname(BIN));
  const dir = tempDir(t);
  cpSync(path.join(root, 'bin'), path.join(dir, 'bin'), { recursive: true });
  cpSync(path.join(root, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  // The runtime dependencies and theirs, as installed (node_modules may be a symlink: dereferenced).
  const manifest = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
  const wanted = Object.keys(manifest(path.join(root, 'package.json')).dependencies ?? {});
  const copied = new Set<string>();
  while (wanted.length > 0) {
    const name = wanted.pop() as string;
    const from = path.join(root, 'node_modules', name);
    if (copied.has(name) || !existsSync(from)) continue;
    copied.add(name);
    cpSync(from, path.join(dir, 'node_modules', name), { recursive: true, dereference: true });
    const own = manifest(path.join(from, 'package.json'));
    wanted.push(...Object.keys(own.dependencies ?? {}), ...Object.keys(own.optionalDependencies ?? {}));
  }
  if (readable) execFileSync('chmod', ['-R', 'a+rX', dir]);
  return path.join(dir, 'bin', 'driveshaft.js');
}

test('--user should run the children as that user (root only)', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const { file } = goodConfig(t, gearmand.port);
  const daemon = await startServing(t, ['--jobsconfig', file, '--user', 'nobody', '--loop_timeout', '0.5'], {}, programCopy(t, true), nodeForEveryone());
  const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  const childPid = daemon.logs.find((r) => r.event === 'ready')?.childPid as number;
  const nobody = daemon.logs.find((r) => r.event === 'user')?.uid as number;
  assert.equal(typeof nobody, 'number');
  assert.equal(uidOf(daemon.pid), nobody);
  assert.equal(uidOf(childPid), nobody);
  // The default dead-letter folder, created by the master while root, belongs to the children's user.
  const deadLetterDir = daemon.logs.find((r) => r.event === 'dead-letter-dir-created')?.dir as string;
  assert.equal(statSync(deadLetterDir).uid, nobody);
  assert.equal(statSync(deadLetterDir).mode & 0o777, 0o700);
  assert.equal(daemon.count((r) => r.event === 'dead-letter-dir-failed'), 0, 'nobody can write it');
  const unknown = await cli(['--jobsconfig', file, '--user', 'no-such-user-ds']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--user no-such-user-ds: no such user/);
});

test('--user should exit 2 with one line, before forking, when the user cannot read the program (root only)', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async (t) => {
  const { file } = goodConfig(t);
  const bin = programCopy(t, false);
  const privateDir = path.dirname(path.dirname(bin));
  const daemon = spawnDaemon(t, ['--jobsconfig', file, '--user', 'nobody', '--loop_timeout', '0.5'], {}, bin, nodeForEveryone());
  const exit = await Promise.race([daemon.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 20_000).unref())]);
  assert.ok(exit !== null, `the daemon still runs after 20 s (children crash-looping?):\n${daemon.output().slice(0, 2000)}`);
  assert.equal(exit.code, 2, daemon.output());
  const stderr = daemon.output().trim().split('\n');
  assert.equal(stderr.length, 1, daemon.output());
  assert.match(stderr[0] ?? '', new RegExp(`^driveshaft: --user nobody: the pool processes run as nobody and cannot read ${privateDir}/\\S+: EACCES \\(${privateDir} is not searchable by nobody\\); install driveshaft where nobody can read it`));
  assert.equal(daemon.count((r) => r.event === 'fork'), 0, 'nothing forked');
});
