import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { GearmandPoller, queryStatus } from '../../src/observe/gearmand-poller.js';
import { freePort } from '../helpers/free-port.js';
import { GearmanClient } from '../helpers/gearman-client.js';
import { startGearmand } from '../helpers/gearmand.js';
import { waitFor } from '../helpers/wait-for.js';
import { server } from '../master/support.js';
import { memoryLogger } from '../helpers/memory-logger.js';

/** A TCP server that accepts and then runs `onSocket` (never answering, or answering garbage). */
async function fakeServer(t: import('node:test').TestContext, onSocket: (socket: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  return (srv.address() as net.AddressInfo).port;
}

test('queryStatus should read every function of a real gearmand with its queue, running and worker counts', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  await client.submit('Queued', 'a', { background: true });
  await client.submit('Queued', 'b', { background: true });
  const functions = await queryStatus(server(gearmand.port), 2000);
  assert.deepEqual(functions, [{ function: 'Queued', total: 2, running: 0, availableWorkers: 0 }]);
});

test('queryStatus should fail with a coded error on a refused connection, a silent server and a garbage reply', async (t) => {
  const closed = await freePort();
  await assert.rejects(queryStatus(server(closed), 2000), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'DS_GEARMAN_CONNECTION');
    assert.match(error.message, /ECONNREFUSED/);
    return true;
  });
  const silent = await fakeServer(t, () => {});
  const started = Date.now();
  await assert.rejects(queryStatus(server(silent), 300), /no complete admin status reply within 300 ms/);
  assert.ok(Date.now() - started < 2000);
  const garbage = await fakeServer(t, (socket) => socket.end('hello\tworld\n.\n'));
  await assert.rejects(queryStatus(server(garbage), 2000), (error: Error & { code?: string }) => error.code === 'DS_ADMIN_REPLY');
  const error = await fakeServer(t, (socket) => socket.write('ERR unknown_command Unknown+server+command\r\n'));
  await assert.rejects(queryStatus(server(error), 2000), /gearmand answered ERR/);
});

test('GearmandPoller should keep a cache per server, drop the figures of a server that fails and recover with it', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const silent = await fakeServer(t, () => {});
  const { logger, records } = memoryLogger();
  const poller = new GearmandPoller({ servers: [server(gearmand.port), server(silent)], intervalMs: 100, timeoutMs: 200, logger });
  t.after(() => poller.stop());
  assert.deepEqual(poller.scrapes.map((s) => [s.ok, s.error]), [[false, 'not polled yet'], [false, 'not polled yet']]);
  const client = await GearmanClient.connect(gearmand.port);
  t.after(() => client.close());
  await client.submit('Waiting', 'x', { background: true });
  poller.start();
  await waitFor(() => poller.scrapes[0]?.ok === true && poller.scrapes[1]?.at !== 0, { timeoutMs: 5000, message: 'both servers polled' });
  assert.deepEqual(poller.scrapes[0]?.functions, [{ function: 'Waiting', total: 1, running: 0, availableWorkers: 0 }]);
  assert.equal(poller.scrapes[1]?.ok, false);
  assert.match(poller.scrapes[1]?.error ?? '', /within 200 ms/);

  await gearmand.stop();
  await waitFor(() => poller.scrapes[0]?.ok === false, { timeoutMs: 5000, message: 'the stopped gearmand to show as failing' });
  assert.deepEqual(poller.scrapes[0]?.functions, []);
  await gearmand.restart();
  await waitFor(() => poller.scrapes[0]?.ok === true, { timeoutMs: 5000, message: 'the restarted gearmand to be read again' });
  // One warning per server going bad (not one per poll), one info per recovery.
  const failed = records.filter((r) => r.event === 'gearmand-status-failed');
  assert.equal(failed.filter((r) => r.server === server(silent).label).length, 1);
  assert.equal(failed.filter((r) => r.server === server(gearmand.port).label).length, 1);
  assert.equal(records.filter((r) => r.event === 'gearmand-status-ok').length, 1);
});

test('GearmandPoller.setServers should forget removed servers and never run two polls of one server at once', async (t) => {
  let connections = 0;
  const silent = await fakeServer(t, () => connections++);
  const { logger } = memoryLogger();
  const poller = new GearmandPoller({ servers: [server(silent)], intervalMs: 20, timeoutMs: 500, logger });
  t.after(() => poller.stop());
  poller.start();
  await new Promise((resolve) => setTimeout(resolve, 300));
  // 15 rounds came and went while the first poll waited for its timeout.
  assert.equal(connections, 1);
  poller.setServers([]);
  assert.deepEqual(poller.scrapes, []);
});
