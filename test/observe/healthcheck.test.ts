/**
 * The container image's HEALTHCHECK probe (src/observe/healthcheck.ts) against the real exporter, and as
 * the command the image runs. scripts/image-test.sh checks the same inside the built image.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Exporter } from '../../src/observe/exporter.js';
import { probeHealth } from '../../src/observe/healthcheck.js';
import { memoryLogger } from '../helpers/memory-logger.js';

const SCRIPT = fileURLToPath(new URL('../../src/observe/healthcheck.js', import.meta.url));

async function exporter(t: TestContext, host = '127.0.0.1'): Promise<number> {
  const { logger } = memoryLogger();
  const source = { observe: () => Promise.reject(new Error('/healthz must not ask the children')), gearmandScrapes: () => [] };
  const instance = new Exporter({ host, port: 0, source, logger });
  t.after(() => instance.close());
  return (await instance.listen()).port;
}

/** A plain HTTP server answering every request with `handler`; its port. */
async function server(t: TestContext, handler: Parameters<typeof createServer>[1]): Promise<number> {
  const instance: Server = createServer(handler);
  t.after(() => {
    instance.closeAllConnections();
    instance.close();
  });
  await new Promise<void>((resolve) => instance.listen(0, '127.0.0.1', resolve));
  return (instance.address() as AddressInfo).port;
}

/** A port nothing listens on: one the kernel just handed out and that was closed again. */
async function closedPort(): Promise<number> {
  const instance = createServer();
  await new Promise<void>((resolve) => instance.listen(0, '127.0.0.1', resolve));
  const { port } = instance.address() as AddressInfo;
  await new Promise<void>((resolve) => instance.close(() => resolve()));
  return port;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 20_000 }, (error, _stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stderr });
    });
  });
}

test('probeHealth should pass on the exporter /healthz, by its address as --exporter_addr takes it', async (t) => {
  const port = await exporter(t);
  assert.equal(await probeHealth(`127.0.0.1:${port}`), null);
  assert.equal(await probeHealth(String(port)), null, 'a port alone means 127.0.0.1, as for the daemon');
});

test('probeHealth should probe a wildcard bind on the loopback', async (t) => {
  const port = await exporter(t, '0.0.0.0');
  assert.equal(await probeHealth(`0.0.0.0:${port}`), null);
});

test('probeHealth should report anything but a 200, a silent server and a refused connection', async (t) => {
  const unavailable = await server(t, (_req, res) => res.writeHead(503).end('no\n'));
  assert.match((await probeHealth(`127.0.0.1:${unavailable}`)) ?? '', /^GET http:\/\/127\.0\.0\.1:\d+\/healthz: HTTP 503$/);

  const silent = await server(t, () => undefined);
  assert.match((await probeHealth(`127.0.0.1:${silent}`, 200)) ?? '', /no answer within 200 ms/);

  assert.match((await probeHealth(`127.0.0.1:${await closedPort()}`)) ?? '', /ECONNREFUSED/);
});

test('probeHealth should name a missing or malformed address', async () => {
  assert.match((await probeHealth(undefined)) ?? '', /set DRIVESHAFT_EXPORTER_ADDR/);
  assert.match((await probeHealth('')) ?? '', /set DRIVESHAFT_EXPORTER_ADDR/);
  assert.match((await probeHealth('::1:9100')) ?? '', /put an IPv6 address in brackets/);
});

test('the healthcheck script should exit 0 when healthy, 1 with the reason on stderr otherwise', async (t) => {
  const port = await exporter(t);
  assert.deepEqual(await run([], { DRIVESHAFT_EXPORTER_ADDR: `127.0.0.1:${port}` }), { code: 0, stderr: '' });
  assert.deepEqual(await run([`127.0.0.1:${port}`]), { code: 0, stderr: '' }, 'an argument names the address too');

  const unavailable = await server(t, (_req, res) => res.writeHead(503).end());
  const sick = await run([], { DRIVESHAFT_EXPORTER_ADDR: `127.0.0.1:${unavailable}` });
  assert.equal(sick.code, 1);
  assert.match(sick.stderr, /^unhealthy: GET http:\/\/127\.0\.0\.1:\d+\/healthz: HTTP 503\n$/);

  const unset = await run([]);
  assert.equal(unset.code, 1);
  assert.match(unset.stderr, /^unhealthy: no exporter address/);
});
