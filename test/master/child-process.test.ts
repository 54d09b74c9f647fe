import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { CHILD_MALLOC_ARENA_MAX, CHILD_MALLOC_TOP_PAD, childEnv, childExecArgv, clusterForker, poolNodeFlags, SMALL_POOL_MAX_SLOTS } from '../../src/master/child-process.js';

const REPORTER = fileURLToPath(new URL('./fixtures/report-exec-argv.js', import.meta.url));

test('small pools should get a 1 MiB young generation, larger ones 16 MiB (Node 20\'s cap, not Node 22+\'s 32)', () => {
  assert.deepEqual(poolNodeFlags(1), ['--max-semi-space-size=1']);
  assert.deepEqual(poolNodeFlags(SMALL_POOL_MAX_SLOTS), ['--max-semi-space-size=1']);
  assert.deepEqual(poolNodeFlags(SMALL_POOL_MAX_SLOTS + 1), ['--max-semi-space-size=16']);
  assert.deepEqual(poolNodeFlags(1000), ['--max-semi-space-size=16']);
  assert.deepEqual(poolNodeFlags(undefined), [], 'a pool the master cannot find keeps the defaults');
});

test('childExecArgv should keep the master\'s flags and add ours after them', () => {
  assert.deepEqual(childExecArgv(['--max-semi-space-size=1'], ['--cpu-prof', '--cpu-prof-dir=/tmp/p'], ''), ['--cpu-prof', '--cpu-prof-dir=/tmp/p', '--max-semi-space-size=1']);
  assert.deepEqual(childExecArgv([], ['--inspect'], ''), ['--inspect']);
});

test('a flag the operator gave the master should win over ours', () => {
  assert.deepEqual(childExecArgv(['--max-semi-space-size=1'], ['--max-semi-space-size=8'], ''), ['--max-semi-space-size=8']);
  assert.deepEqual(childExecArgv(['--max-semi-space-size=1'], ['--max_semi_space_size=8'], ''), ['--max_semi_space_size=8'], 'V8 spells flags with _ or -');
  assert.deepEqual(childExecArgv(['--max-semi-space-size=1'], [], '--max-old-space-size=512  --max-semi-space-size=16'), [], 'NODE_OPTIONS');
  assert.deepEqual(childExecArgv(['--max-semi-space-size=1'], [], '--max-old-space-size=512'), ['--max-semi-space-size=1'], 'another flag does not count');
});

test('clusterForker should start the child with the pool\'s flags', async (t) => {
  const pools: string[] = [];
  const fork = clusterForker(REPORTER, (pool) => {
    pools.push(pool);
    return pool === 'Small' ? poolNodeFlags(10) : poolNodeFlags(1000);
  });
  const report = (pool: string): Promise<{ execArgv: string[] }> => {
    const child = fork(pool);
    t.after(() => child.kill('SIGKILL'));
    return new Promise((resolve) => {
      child.endpoint.on('message', (message) => resolve(message as { execArgv: string[] }));
    });
  };
  const small = await report('Small');
  const large = await report('Large');
  assert.deepEqual(pools, ['Small', 'Large']);
  assert.ok(small.execArgv.includes('--max-semi-space-size=1'), `small pool: ${small.execArgv.join(' ')}`);
  assert.ok(large.execArgv.includes('--max-semi-space-size=16'), `large pool: ${large.execArgv.join(' ')}`);
});

test('a pool child should get one malloc arena and no heap pad unless the operator chose otherwise', () => {
  assert.deepEqual(childEnv('Regular', {}), { DRIVESHAFT_POOL: 'Regular', MALLOC_ARENA_MAX: CHILD_MALLOC_ARENA_MAX, MALLOC_TOP_PAD_: CHILD_MALLOC_TOP_PAD });
  // The master's own setting reaches the child through cluster.fork's merge with process.env.
  assert.deepEqual(childEnv('Regular', { MALLOC_ARENA_MAX: '4' }), { DRIVESHAFT_POOL: 'Regular', MALLOC_TOP_PAD_: CHILD_MALLOC_TOP_PAD });
  assert.deepEqual(childEnv('Regular', { MALLOC_ARENA_MAX: '4', MALLOC_TOP_PAD_: '65536' }), { DRIVESHAFT_POOL: 'Regular' });
});

test('clusterForker should start the child with its malloc tuning in its environment', async (t) => {
  const child = clusterForker(REPORTER)('Arena');
  t.after(() => child.kill('SIGKILL'));
  const report = await new Promise<{ env: Record<string, string | undefined> }>((resolve) => {
    child.endpoint.on('message', (message) => resolve(message as { env: Record<string, string | undefined> }));
  });
  assert.equal(report.env['DRIVESHAFT_POOL'], 'Arena');
  assert.equal(report.env['MALLOC_ARENA_MAX'], process.env['MALLOC_ARENA_MAX'] ?? CHILD_MALLOC_ARENA_MAX);
  assert.equal(report.env['MALLOC_TOP_PAD_'], process.env['MALLOC_TOP_PAD_'] ?? CHILD_MALLOC_TOP_PAD);
});
