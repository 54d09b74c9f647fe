/**
 * scripts/check-import-cycles.mjs on small trees written here: it names every cycle as `a.ts → b.ts → a.ts`
 * and exits 1, counts a type-only import as an edge, and exits 0 on a tree whose imports only fan out.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/temp-dir.js';

const SCRIPT = fileURLToPath(new URL('../../../scripts/check-import-cycles.mjs', import.meta.url));

/** Writes `files` (path → text) into a fresh folder and runs the script there on `dirs`. */
function checkTree(t: TestContext, files: Record<string, string>, ...dirs: string[]): { status: number | null; stdout: string; stderr: string } {
  const root = tempDir(t);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  const result = spawnSync(process.execPath, [SCRIPT, ...dirs], { cwd: root, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('check-import-cycles should print each cycle once, type-only edges included, and exit 1', (t) => {
  const result = checkTree(t, {
    'src/a.ts': "import { b } from './b.js';\nexport const a = b + 1;\n",
    'src/b.ts': "import type { Thing } from './nested/c.js';\nexport const b = 1;\nexport type { Thing };\n",
    'src/nested/c.ts': "export type { Other } from '../a.js';\nexport type Thing = string;\n",
    'src/log.ts': "import { level } from './logger.js';\nexport const log = level;\n",
    'src/logger.ts': "import type { log } from './log.js';\nexport const level = 1;\nexport type L = typeof log;\n",
    'src/leaf.ts': "import { a } from './a.js';\nimport fs from 'node:fs';\nexport const leaf = [a, fs];\n",
  }, 'src');
  assert.equal(result.status, 1, result.stdout + result.stderr);
  const cycles = result.stderr.split('\n').filter((line) => line.includes('→')).map((line) => line.trim());
  assert.deepEqual(cycles, ['src/a.ts → src/b.ts → src/nested/c.ts → src/a.ts', 'src/log.ts → src/logger.ts → src/log.ts']);
});

test('check-import-cycles should exit 0 on a tree without a cycle, however its imports fan in', (t) => {
  const result = checkTree(t, {
    'src/a.ts': "import { b } from './b.js';\nimport { c } from './c.js';\nexport const a = b + c;\n",
    'src/b.ts': "import { c } from './c.js';\nexport const b = c;\n",
    'src/c.ts': "import { EventEmitter } from 'node:events';\nexport const c = EventEmitter.length;\n",
    'test/a.test.ts': "import { a } from '../src/a.js';\nexport const t = a;\n",
  }, 'src', 'test');
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /import cycles: none among 4 files under src, test/);
});

test('check-import-cycles should refuse a folder that does not exist with exit 2 and its name', (t) => {
  const result = checkTree(t, {}, 'missing');
  assert.equal(result.status, 2);
  assert.match(result.stderr, /missing: expected a folder of TypeScript files/);
});
