/**
 * examples/endpoint.mjs and examples/endpoint.php verify driveshaft's signatures: run for real with
 * SIGNING_SECRETS, fed by a real pool (real gearmand) that signs, one that signs with another secret, and
 * a request that is not signed at all.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WorkerPool } from '../../src/child/worker-pool.js';
import { DEFAULT_DELIVERY, DeliveryMode } from '../../src/config/types.js';
import { makeSettings, serverOf, waitForWorkers } from '../child/fixtures.js';
import { memoryLogger } from '../helpers/memory-logger.js';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FAIL_FAST = { ...DEFAULT_DELIVERY, mode: DeliveryMode.FAIL_FAST };

function newKey(): Buffer {
  return randomBytes(32);
}

/** Starts `command` serving on a free port; resolves with its /job URL once it answers. */
async function serve(t: TestContext, command: string, args: (port: number) => string[], secrets: string): Promise<string> {
  const port = await freePort();
  const child = spawn(command, args(port), { cwd: ROOT, env: { ...process.env, PORT: String(port), SIGNING_SECRETS: secrets }, stdio: 'ignore' });
  t.after(() => {
    child.kill('SIGTERM');
  });
  const url = `http://127.0.0.1:${port}/job`;
  await waitFor(
    async () => {
      try {
        await fetch(url);
        return true;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 10_000, message: `${command} to listen on ${port}` },
  );
  return url;
}

interface Keys {
  /** The example's secret. */
  good: Buffer;
  /** One the example does not know. */
  other: Buffer;
}

/** A rotation (other + good) is accepted, `other` alone is not, nor a request without signature. */
async function checkExample(t: TestContext, url: string, key: Keys): Promise<void> {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  for (const [signingKeys, expected] of [
    [[key.other.toString('base64'), key.good.toString('base64')], 'complete'],
    [[key.other.toString('base64')], 'fail'],
  ] as const) {
    const logger = memoryLogger('warn');
    const settings = makeSettings([serverOf(gearmand)], url, { signingKeys: [...signingKeys], delivery: FAIL_FAST, jobsList: ['Sum'] });
    const pool = new WorkerPool({ log: logger.logger });
    pool.start(settings);
    await waitForWorkers(gearmand, 'Sum', 1);
    const result = await client.submit('Sum', '[1,2]', { unique: 'order.42' });
    await pool.destroy();
    assert.equal(result.outcome, expected, JSON.stringify(logger.records));
    if (expected === 'complete') assert.equal(result.result?.toString(), '3');
    else assert.match(String(logger.find('job failed')[0]?.reason), /HTTP 401/);
  }
  const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"function_name":"Sum","job_handle":"H:x:1","unique":"","workload":"[1]"}' });
  assert.equal(unsigned.status, 401);
}

test('examples/endpoint.mjs should accept driveshaft-signed jobs and refuse wrongly signed and unsigned ones', async (t) => {
  const keys = { good: newKey(), other: newKey() };
  const url = await serve(t, process.execPath, () => [path.join(ROOT, 'examples', 'endpoint.mjs')], `whsec_${keys.good.toString('base64')}`);
  await checkExample(t, url, keys);
});

test('examples/endpoint.php should accept driveshaft-signed jobs and refuse wrongly signed and unsigned ones', { skip: spawnSync('php', ['--version']).status !== 0 ? 'php is not installed' : false }, async (t) => {
  const keys = { good: newKey(), other: newKey() };
  const url = await serve(t, 'php', (port) => ['-S', `127.0.0.1:${port}`, path.join(ROOT, 'examples', 'endpoint.php')], ` whsec_${newKey().toString('base64')}  whsec_${keys.good.toString('base64')}`);
  await checkExample(t, url, keys);
});
