/**
 * contrib/init.d/driveshaft, run for real: a real gearmand, a real HTTP endpoint, the real daemon
 * started by the script with --daemonize and --pid_file. The script's paths (DAEMON, PIDFILE, DEFAULTS,
 * LOGDIR) point into a temp folder through the environment, as its header allows.
 *
 * Root only: the script is written for root (it creates and chowns /run and /var/log folders, and
 * --user needs root), so that is how it is tested; CI runs as root.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { startEndpoint } from '../helpers/http-endpoint.js';
import { waitFor } from '../helpers/wait-for.js';

// dist/test/contrib/ → the project root.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = path.join(ROOT, 'contrib', 'init.d', 'driveshaft');
const RUN_TIMEOUT_MS = 90_000;
const WAIT_MS = 20_000;

const IS_ROOT = process.getuid?.() === 0;
const SKIP_REASON = 'skipped: needs root, the init script manages /run and /var/log folders';
const name = (title: string): string => (IS_ROOT ? title : `${title} (${SKIP_REASON})`);

interface RunResult {
  code: number;
  output: string;
}

interface Fixture {
  dir: string;
  jobsFile: string;
  /** jobs.json's mtime as the daemon first sees it. */
  jobsMtime: Date;
  pidFile: string;
  logDir: string;
  gearmand: Gearmand;
  endpointUrl: string;
  /** Runs the init script with one action, in an environment as bare as `service` gives it. */
  run(action: string): Promise<RunResult>;
  /** The pid in the pid file, or null. */
  pid(): number | null;
}

/** Whether `pid` runs. A zombie counts as gone: a daemon's exit is final before its new parent reaps it. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; comm may hold spaces and parentheses, so split at the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function jobsConfig(gearmand: Gearmand, endpointUrl: string, workerCount: number, jobs: string[]): string {
  return `${JSON.stringify(
    {
      gearman_servers_list: [gearmand.label],
      pools_list: { InitPool: { job_processing_uri: endpointUrl, worker_count: workerCount, jobs_list: jobs } },
    },
    null,
    2,
  )}\n`;
}

async function setUp(t: TestContext): Promise<Fixture> {
  // One teardown, in order: the daemon first (its pid file and wrapper live in `dir`), then its peers.
  const teardown: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const step of teardown.reverse()) await step().catch(() => undefined);
  });
  const gearmand = await startGearmand();
  teardown.push(() => gearmand.stop());
  const endpoint = await startEndpoint();
  teardown.push(() => endpoint.close());
  const dir = await mkdtemp(path.join(tmpdir(), 'driveshaft-initd-'));
  teardown.push(() => rm(dir, { recursive: true, force: true }));

  const jobsFile = path.join(dir, 'jobs.json');
  const pidFile = path.join(dir, 'run', 'driveshaft.pid');
  const logDir = path.join(dir, 'log');
  const daemon = path.join(dir, 'driveshaft');
  const defaults = path.join(dir, 'default');
  await writeFile(jobsFile, jobsConfig(gearmand, endpoint.url, 2, ['InitSum']));
  // A whole second in the past, so a test can restore it exactly after editing the file.
  const jobsMtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  await utimes(jobsFile, jobsMtime, jobsMtime);
  await writeFile(
    path.join(dir, 'log.json'),
    JSON.stringify({ name: 'driveshaft', level: 'debug', streams: [{ type: 'file', path: path.join(logDir, 'driveshaft.log') }] }),
  );
  // What `make install` puts on PATH, pointing at this build and this node.
  await writeFile(daemon, `#!/bin/sh\nexec '${process.execPath}' '${path.join(ROOT, 'bin', 'driveshaft.js')}' "$@"\n`);
  await chmod(daemon, 0o755);
  // loop_timeout 1: a graceful stop without running jobs is quick, and the file watcher polls every 0.5 s.
  // --dead_letter_dir: the default would be /var/lib/driveshaft/dead-letters, outside the test's folder.
  await writeFile(
    defaults,
    `DAEMON_OPTS="--jobsconfig ${jobsFile} --logconfig ${path.join(dir, 'log.json')} --dead_letter_dir ${path.join(dir, 'dead-letters')} --loop_timeout 1"\nSTOP_TIMEOUT=30\n`,
  );

  const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', DAEMON: daemon, PIDFILE: pidFile, DEFAULTS: defaults, LOGDIR: logDir };
  const run = (action: string): Promise<RunResult> =>
    new Promise((resolve, reject) => {
      execFile(SCRIPT, [action], { env, timeout: RUN_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        if (error === null) resolve({ code: 0, output });
        else if (typeof error.code === 'number') resolve({ code: error.code, output });
        else reject(new Error(`${SCRIPT} ${action}: ${error.message}; output: ${output}`, { cause: error }));
      });
    });
  const pid = (): number | null => {
    try {
      const value = Number(readFileSync(pidFile, 'utf8').trim());
      return value > 0 ? value : null;
    } catch {
      return null;
    }
  };
  // A failed assertion must not leave a daemon behind: stop it, and kill it if that does not work.
  teardown.push(async () => {
    const left = pid();
    if (left === null || !isAlive(left)) return;
    await run('stop');
    if (isAlive(left)) process.kill(left, 'SIGKILL');
  });
  return { dir, jobsFile, jobsMtime, pidFile, logDir, gearmand, endpointUrl: endpoint.url, run, pid };
}

/** Resolves once gearmand lists exactly `count` workers, each registered for exactly `functions`. */
function waitForWorkers(gearmand: Gearmand, count: number, functions: string[]): Promise<unknown> {
  const wanted = [...functions].sort().join(',');
  return waitFor(
    async () => {
      const workers = await gearmand.workers();
      const matching = workers.filter((w) => [...w.functions].sort().join(',') === wanted);
      return workers.length === count && matching.length === count ? workers : undefined;
    },
    { timeoutMs: WAIT_MS, intervalMs: 50, message: `gearmand to list ${count} workers for ${wanted}` },
  );
}

test(name('init.d/driveshaft should start, report status, reload on HUP and stop gracefully'), { skip: !IS_ROOT && SKIP_REASON }, async (t) => {
  const f = await setUp(t);

  let result = await f.run('status');
  assert.equal(result.code, 3, `status before start: ${result.output}`);

  result = await f.run('start');
  assert.equal(result.code, 0, `start: ${result.output}`);
  assert.match(result.output, /driveshaft started \(pid \d+\)/);
  const pid = f.pid();
  assert.ok(pid !== null, 'start should leave a pid file');
  assert.ok(isAlive(pid), `pid ${pid} from the pid file should be running`);
  assert.ok(existsSync(f.logDir), 'start should create LOGDIR');

  result = await f.run('status');
  assert.equal(result.code, 0, `status: ${result.output}`);
  assert.match(result.output, new RegExp(`running \\(pid ${pid}\\)`));

  result = await f.run('start');
  assert.equal(result.code, 0, `start while running: ${result.output}`);
  assert.match(result.output, /already running/);
  assert.equal(f.pid(), pid, 'a second start should not replace the daemon');

  await waitForWorkers(f.gearmand, 2, ['InitSum']);

  // Same size, same inode (rewritten in place) and the mtime set up before the start restored: the
  // daemon's file watcher sees no change, so only the HUP sent by `reload` can make it reload.
  const before = readFileSync(f.jobsFile, 'utf8');
  const after = jobsConfig(f.gearmand, f.endpointUrl, 3, ['InitSum']);
  assert.equal(after.length, before.length, 'the edited config should keep its size');
  await writeFile(f.jobsFile, after);
  await utimes(f.jobsFile, f.jobsMtime, f.jobsMtime);

  result = await f.run('reload');
  assert.equal(result.code, 0, `reload: ${result.output}`);
  assert.match(result.output, /reload requested/);
  await waitForWorkers(f.gearmand, 3, ['InitSum']);
  assert.equal(f.pid(), pid, 'reload should keep the same master process');

  // An invalid edit: reload refuses it (LSB 6, not configured) and the daemon keeps the old config.
  await writeFile(f.jobsFile, jobsConfig(f.gearmand, f.endpointUrl, 3, ['InitSum']).replace('"worker_count": 3', '"worker_cuont": 3'));
  result = await f.run('reload');
  assert.equal(result.code, 6, `reload of an invalid config: ${result.output}`);
  assert.match(result.output, /worker_cuont/);
  result = await f.run('status');
  assert.equal(result.code, 0, `status after a refused reload: ${result.output}`);
  await waitForWorkers(f.gearmand, 3, ['InitSum']);

  result = await f.run('stop');
  assert.equal(result.code, 0, `stop: ${result.output}`);
  assert.match(result.output, /driveshaft stopped/);
  assert.ok(!isAlive(pid), `pid ${pid} should have exited`);
  assert.ok(!existsSync(f.pidFile), 'stop should leave no pid file');
  await waitForWorkers(f.gearmand, 0, []);

  result = await f.run('status');
  assert.equal(result.code, 3, `status after stop: ${result.output}`);
  result = await f.run('stop');
  assert.equal(result.code, 0, `stop when stopped: ${result.output}`);
});

test(name('init.d/driveshaft should report a dead daemon and recover from its stale pid file'), { skip: !IS_ROOT && SKIP_REASON }, async (t) => {
  const f = await setUp(t);
  let result = await f.run('start');
  assert.equal(result.code, 0, `start: ${result.output}`);
  const pid = f.pid();
  assert.ok(pid !== null);
  await waitForWorkers(f.gearmand, 2, ['InitSum']);

  // A crash: no chance to remove the pid file. The pool process notices its master is gone and exits.
  process.kill(pid, 'SIGKILL');
  // Until it is reaped, the daemon's own pid file check (kill -0) would still see the pid as live; the
  // detached daemon's parent is init, which on some VMs reaps a moment later.
  await waitFor(
    () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    },
    { timeoutMs: WAIT_MS, message: `pid ${pid} to die and be reaped` },
  );
  result = await f.run('status');
  assert.equal(result.code, 1, `status of a dead daemon: ${result.output}`);
  assert.ok(existsSync(f.pidFile));
  await waitForWorkers(f.gearmand, 0, []);

  result = await f.run('start');
  assert.equal(result.code, 0, `start over a stale pid file: ${result.output}`);
  const next = f.pid();
  assert.ok(next !== null && next !== pid, 'the new daemon should own the pid file');
  await waitForWorkers(f.gearmand, 2, ['InitSum']);

  result = await f.run('restart');
  assert.equal(result.code, 0, `restart: ${result.output}`);
  const restarted = f.pid();
  assert.ok(restarted !== null && restarted !== next, 'restart should start a new master');
  assert.ok(!isAlive(next), 'restart should have stopped the old master');
  await waitForWorkers(f.gearmand, 2, ['InitSum']);

  result = await f.run('stop');
  assert.equal(result.code, 0, `stop: ${result.output}`);
  result = await f.run('status');
  assert.equal(result.code, 3, `status after stop: ${result.output}`);
});

test(name('init.d/driveshaft start should refuse an invalid config with LSB status 6'), { skip: !IS_ROOT && SKIP_REASON }, async (t) => {
  const f = await setUp(t);
  await writeFile(f.jobsFile, '{"gearman_servers_list": [], "pools_list": {}');
  const result = await f.run('start');
  assert.equal(result.code, 6, `start: ${result.output}`);
  assert.match(result.output, /jobs\.json/, 'the daemon should name the file it refused');
  assert.match(result.output, /failed to start/);
  assert.ok(!existsSync(f.pidFile), 'a failed start should leave no pid file');
  const status = await f.run('status');
  assert.equal(status.code, 3, `status: ${status.output}`);
});

test('init.d/driveshaft should answer an unknown action with usage and LSB status 2', async () => {
  const result = await new Promise<RunResult>((resolve) => {
    execFile(SCRIPT, ['frobnicate'], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', DEFAULTS: '/nonexistent' } }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : Number(error.code), output: `${stdout}${stderr}` }),
    );
  });
  assert.equal(result.code, 2);
  assert.match(result.output, /Usage: .*\{start\|stop\|restart\|reload\|force-reload\|status\|check\}/);
});
