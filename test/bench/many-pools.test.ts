/**
 * The many-pools memory benchmark (bench/memory) runs end to end on a tiny scenario: its figures are
 * for the benchmark to report, not for a test to judge; what is checked is that every part produced
 * them and that every job was answered.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/temp-dir.js';

const BENCH = fileURLToPath(new URL('../../bench/memory/many-pools.js', import.meta.url));

interface Figures {
  ussKiB: number;
  pssKiB: number;
  rssKiB: number;
}

test('bench:memory should run the many-pools scenario, with its floors and a variant, and write every figure', async (t) => {
  const out = path.join(tempDir(t), 'many-pools.json');
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [BENCH, '--pools', '2', '--slots', '1', '--jobs', '2', '--idle-seconds', '1', '--quiet-seconds', '2', '--variant', 'padded=MALLOC_TOP_PAD_=131072', '--out', out],
    { timeout: 100_000, maxBuffer: 1 << 20 },
  );
  assert.match(stdout, /USS after work ≤ 450 MiB/, stdout);
  const result = JSON.parse(readFileSync(out, 'utf8')) as {
    floors: Record<string, Figures | undefined>;
    runs: { variant: { label: string; env: Record<string, string> }; error?: string; idle: { children: Figures[] }; quiet: unknown[]; integrity: { ok: boolean } }[];
  };
  for (const name of ['bare', 'poolIdle', 'poolAfterWork', 'poolAfterQuiet', 'poolAfterGc']) {
    assert.ok((result.floors[name]?.ussKiB ?? 0) > 1024, `floor ${name}: ${JSON.stringify(result.floors[name])}`);
  }
  assert.deepEqual(result.runs.map((run) => run.variant.label), ['ours', 'padded']);
  assert.deepEqual(result.runs[1]?.variant.env, { MALLOC_TOP_PAD_: '131072' });
  for (const run of result.runs) {
    assert.equal(run.error, undefined, `${run.variant.label}: ${run.error ?? ''}`);
    assert.ok(run.integrity.ok, `${run.variant.label}: every job answered once`);
    assert.equal(run.idle.children.length, 2, `${run.variant.label}: one child per pool`);
    assert.equal(run.quiet.length, 3, `${run.variant.label}: the sample after work and one per quiet second`);
  }
});
