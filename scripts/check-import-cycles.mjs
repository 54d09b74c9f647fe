// `npm run check:cycles` (part of `npm test`): finds import cycles among the TypeScript files under the given
// folders (default: src, bench, test) and prints each as `a.ts → b.ts → a.ts`, exiting 1 when there is one.
// Type-only imports count: they create no cycle at run time, but two modules that name each other's types
// are still one tangle to read, test and move, which is what this check is for.
// Only relative specifiers are followed (`./x.js` is the file `./x.ts`, as NodeNext resolution has it);
// packages and node: builtins cannot close a cycle through this tree.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

// Past this many, a cycle list is noise: the first ones already say where to cut.
const MAX_CYCLES_PRINTED = 100;

function typeScriptFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') files.push(...typeScriptFiles(path));
    } else if (/\.(m|c)?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      files.push(path);
    }
  }
  return files;
}

/** The file a relative specifier names: `./x.js` is `./x.ts` (or .mts/.cts), `./dir` its index. */
function resolveSpecifier(fromFile, specifier, known) {
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base.replace(/\.cjs$/, '.cts'), `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((candidate) => known.has(candidate)) ?? null;
}

/** Every file's relative imports (static, `export … from`, `import()` and `import x = require()`). */
function importGraph(files) {
  const known = new Set(files);
  const graph = new Map();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = new Set();
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = resolveSpecifier(file, fileName, known);
      if (target !== null) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/**
 * Every elementary cycle, each once, starting at its alphabetically first file: from each start, a depth-first
 * walk through files that sort after it finds the paths that lead back (enough for a source tree's size).
 */
function findCycles(graph) {
  const cycles = [];
  const nodes = [...graph.keys()].sort();
  for (const start of nodes) {
    const path = [start];
    const onPath = new Set(path);
    const walk = (node) => {
      for (const next of graph.get(node) ?? []) {
        if (cycles.length > MAX_CYCLES_PRINTED) return;
        if (next === start) cycles.push([...path, start]);
        else if (next > start && !onPath.has(next)) {
          path.push(next);
          onPath.add(next);
          walk(next);
          onPath.delete(next);
          path.pop();
        }
      }
    };
    walk(start);
  }
  return cycles;
}

function main(args) {
  const root = process.cwd();
  const dirs = args.length > 0 ? args : ['src', 'bench', 'test'].filter((dir) => existsSync(dir));
  for (const dir of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      process.stderr.write(`check-import-cycles: ${dir}: expected a folder of TypeScript files\n`);
      return 2;
    }
  }
  const files = dirs.flatMap((dir) => typeScriptFiles(resolve(dir)));
  const cycles = findCycles(importGraph(files));
  if (cycles.length === 0) {
    process.stdout.write(`import cycles: none among ${files.length} files under ${dirs.join(', ')}\n`);
    return 0;
  }
  const shown = cycles.slice(0, MAX_CYCLES_PRINTED);
  process.stderr.write(`import cycles under ${dirs.join(', ')} (type-only imports count too):\n`);
  for (const cycle of shown) process.stderr.write(`  ${cycle.map((file) => relative(root, file)).join(' → ')}\n`);
  if (cycles.length > shown.length) process.stderr.write(`  … and more; cut the ones above first\n`);
  return 1;
}

process.exitCode = main(process.argv.slice(2));
