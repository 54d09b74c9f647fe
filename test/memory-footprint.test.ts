/**
 * What each process loads (docs/performance.md, Memory): every module costs resident memory in every process that
 * loads it, so the pool child must not load the master's dependencies and the master must not load
 * the child's, nor what only optional features need. Each check runs in a fresh Node process.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/temp-dir.js';

const DIST_SRC = fileURLToPath(new URL('../src/', import.meta.url));

interface Loaded {
  /** npm packages in the CommonJS module cache (ESM imports of CommonJS packages land there too). */
  packages: string[];
  /** Public built-in modules loaded (node:http, node:cluster, …). */
  builtins: string[];
  /** Files of the undici npm package in the module cache, relative to its folder (lib/dispatcher/pool.js…). */
  undiciFiles: string[];
  /** Whether Node's own copy of undici (behind its fetch, WebSocket and, on Node 24+, http.WebSocket) loaded. */
  nodeUndici: boolean;
  /** Whatever the script put in `globalThis.result`. */
  result?: unknown;
}

/** Runs `body` (an ES module; DIST is dist/src/) in a fresh process and reports what it loaded. */
function loadedBy(body: string): Loaded {
  const script = `
    import { createRequire } from 'node:module';
    const DIST = ${JSON.stringify(DIST_SRC)};
    ${body}
    const cache = createRequire(import.meta.url).cache;
    const packages = new Set(Object.keys(cache).map((file) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(file)?.[1]).filter(Boolean));
    const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ') && !m.startsWith('NativeModule internal/')).map((m) => m.slice(13));
    const undiciFiles = Object.keys(cache).map((file) => /node_modules\\/undici\\/(.+)$/.exec(file)?.[1]).filter(Boolean).sort();
    const nodeUndici = process.moduleLoadList.includes('NativeModule internal/deps/undici/undici');
    process.stdout.write(JSON.stringify({ packages: [...packages].sort(), builtins, undiciFiles, nodeUndici, result: globalThis.result }));
    process.exit(0);
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, cwd: DIST_SRC });
  return JSON.parse(out) as Loaded;
}

test('the pool child should not load bunyan, convict or the config machinery', () => {
  const loaded = loadedBy(`await import(DIST + 'child/main.js');`);
  assert.ok(loaded.packages.includes('undici'), `the child does load undici: ${loaded.packages.join(' ')}`);
  for (const name of ['bunyan', 'convict', 'mv', 'glob', 'yargs-parser', 'lodash.clonedeep']) {
    assert.ok(!loaded.packages.includes(name), `the child loads ${name}: ${loaded.packages.join(' ')}`);
  }
  assert.ok(!loaded.builtins.includes('cluster'), 'the child does not need node:cluster');
  // Only undici's Client (src/child/http/http-client.ts pools them), not its index (fetch, WebSocket, web streams, zlib…): 7-11 MiB per child.
  assert.ok(loaded.undiciFiles.includes('lib/dispatcher/client.js'), `the child loads undici's Client: ${loaded.undiciFiles.join(' ')}`);
  const beyondPool = loaded.undiciFiles.filter((file) => file === 'index.js' || file.startsWith('lib/web/') || file.startsWith('lib/cache/'));
  assert.deepEqual(beyondPool, [], 'the child loads undici beyond its Pool');
  // Nor Node's own undici, which Node 24+ loads for an ES import of node:http (its lazy http.WebSocket):
  // 4-5 MiB per child. node:worker_threads is not a sign of either: Node 24+ loads it by itself for an
  // ES import of node:util (a lazy export again), so it says nothing about what this code pulls in.
  assert.equal(loaded.nodeUndici, false, "the child loads Node's bundled undici (an ES import of node:http?)");
  assert.ok(!loaded.builtins.includes('zlib'), 'the child loads node:zlib (all of undici?)');
});

test('the pool child should not load TLS or HTTP/2 before an https endpoint or health URL asks for them', () => {
  const loaded = loadedBy(`await import(DIST + 'child/main.js');`);
  // undici's Client requires node:http2 at load (and with it node:tls); a child never speaks HTTP/2, and
  // a plain-http pool never TLS: 2-3 MiB of private memory per child (docs/performance.md, Memory).
  for (const name of ['http2', 'tls', 'https']) {
    assert.ok(!loaded.builtins.includes(name), `the child loads node:${name}: ${loaded.builtins.join(' ')}`);
  }
});

test("the child's undici Pool should still load node:tls for its first https connection", () => {
  const loaded = loadedBy(`
    const { HttpPool } = await import(DIST + 'child/http/http-client.js');
    const pool = new HttpPool('https://127.0.0.1:9', { connections: 1 });
    globalThis.result = await new Promise((resolve) => pool.dispatch(
      { path: '/', method: 'GET', headers: [], body: null, closeConnection: false, serverName: undefined },
      { onHeaders() {}, onData() {}, onEnd: () => resolve('answered'), onFailure: (error, kind) => resolve(kind + ' ' + (error.code ?? error.message)) },
    ));
  `);
  assert.equal(loaded.result, 'connect ECONNREFUSED', 'nothing listens on port 9: the connect failed, not the Pool');
  assert.ok(loaded.builtins.includes('tls'), `node:tls loaded for the https origin: ${loaded.builtins.join(' ')}`);
  assert.ok(!loaded.builtins.includes('http2'), 'node:http2 stays out');
});

test('the master should not load undici, the exporter or rotating-file support unless asked', () => {
  const loaded = loadedBy(`await import(DIST + 'main.js');`);
  assert.ok(loaded.packages.includes('bunyan') && loaded.packages.includes('convict'), `the master loads its own: ${loaded.packages.join(' ')}`);
  for (const name of ['undici', 'glob', 'rimraf', 'ncp', 'mkdirp']) {
    assert.ok(!loaded.packages.includes(name), `the master loads ${name}: ${loaded.packages.join(' ')}`);
  }
  for (const name of ['http', 'https', 'http2', 'tls']) {
    assert.ok(!loaded.builtins.includes(name), `the master loads node:${name} without --exporter_addr`);
  }
});

test("the exporter should load node:http without Node's bundled undici", () => {
  const loaded = loadedBy(`await import(DIST + 'observe/exporter.js');`);
  assert.ok(loaded.builtins.includes('http'), `the exporter loads node:http: ${loaded.builtins.join(' ')}`);
  // Node 24+ loads its undici (with zlib and web streams) for an ES import of node:http: ~8 MiB.
  assert.equal(loaded.nodeUndici, false, "the exporter loads Node's bundled undici (an ES import of node:http?)");
  assert.ok(!loaded.builtins.includes('zlib'), 'the exporter loads node:zlib');
});

test('a rotating-file stream should load the real mv when the logger is created', () => {
  const loaded = loadedBy(`
    const { createLogger } = await import(DIST + 'log/bunyan-logger.js');
    createLogger({ name: 'd', level: 'info', streams: [{ type: 'rotating-file', path: ${JSON.stringify(path.join(tmpdir(), 'ds-footprint-rotating.log'))}, period: '1d', count: 1 }] });
  `);
  rmSync(path.join(tmpdir(), 'ds-footprint-rotating.log'), { force: true });
  assert.ok(loaded.packages.includes('ncp') && loaded.packages.includes('rimraf'), `real mv and its dependencies: ${loaded.packages.join(' ')}`);
});

test('the deferred mv should still move files when bunyan calls it', (t) => {
  const dir = tempDir(t);
  const from = path.join(dir, 'a.log');
  const to = path.join(dir, 'a.log.0');
  writeFileSync(from, 'rotated\n');
  const loaded = loadedBy(`
    await import(DIST + 'log/bunyan-logger.js');
    // The module bunyan got when it required 'mv': the stand-in until first use.
    const fromBunyan = createRequire(createRequire(import.meta.url).resolve('bunyan'));
    const mv = fromBunyan('mv');
    globalThis.result = await new Promise((resolve) => mv(${JSON.stringify(from)}, ${JSON.stringify(to)}, (error) => resolve(error ? String(error) : 'moved')));
  `);
  assert.equal(loaded.result, 'moved');
  assert.equal(readFileSync(to, 'utf8'), 'rotated\n');
  assert.ok(loaded.packages.includes('ncp'), 'the real mv was loaded on first use');
});
