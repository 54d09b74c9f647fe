/**
 * scripts/demo.sh (`make demo`, the README's first command) run for real, minus the dependency and build
 * steps that `npm test` has already done: it must run every job, show the status port and stop
 * everything it started.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isAlive } from '../helpers/process.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEMO = path.join(ROOT, 'scripts', 'demo.sh');

test('scripts/demo.sh should run the example jobs, show the status port and stop what it started', async () => {
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve, reject) => {
    // KEEP and DEMO_KEEP are removed: a developer's shell setting must not make this test wait forever.
    const { KEEP: _keep, DEMO_KEEP: _demoKeep, ...env } = process.env;
    execFile('bash', [DEMO, '--no-install', '--no-build'], { cwd: ROOT, env, timeout: 90_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const text = `${stdout}${stderr}`;
      if (error === null) resolve({ code: 0, output: text });
      else if (typeof error.code === 'number') resolve({ code: error.code, output: text });
      else reject(new Error(`demo.sh: ${error.message}; output: ${text}`, { cause: error }));
    });
  });
  assert.equal(code, 0, output);
  // Sum, Sum2 and Sum3 of the demo's workloads, computed by examples/endpoint.mjs through driveshaft.
  assert.match(output, /-f Sum '\[1,2\]'\n {2}→ 3\n/);
  assert.match(output, /-f Sum2 '\[1,2,3\]'\n {2}→ 14\n/);
  assert.match(output, /-f Sum3 '\[1,2\]'\n {2}→ 9\n/);
  assert.match(output, /-f Newsfeed 'alice'\n {2}→ newsfeed for alice/, 'the multipart pool should answer');
  assert.match(output, /-f Fail 'anything'\n {2}→ job failed/);
  assert.match(output, /\tPlayground\t0\tjob_handle=\S+ job_unique=\S+/, 'threads should show the running Sleep job');
  assert.match(output, /Regular\.jobs_completed: 3/);
  assert.match(output, /Playground\.jobs_failed: 1/);

  const stopped = [...output.matchAll(/stopped (driveshaft|endpoint|gearmand) \(pid (\d+)\)/g)];
  assert.deepEqual(stopped.map((m) => m[1]).sort(), ['driveshaft', 'endpoint', 'gearmand'], output);
  // The script has exited; its stopped processes may need a moment to be reaped by init.
  for (const [, name, pid] of stopped) {
    await waitFor(() => !isAlive(Number(pid)), { timeoutMs: 10_000, message: `${name} (pid ${pid}) to be gone` });
  }
});
