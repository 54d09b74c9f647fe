/**
 * 1xx answers before the final response. A fake endpoint on node:net, because real frameworks send no
 * unsolicited 100 Continue: it reads each whole request, then writes the scripted bytes.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { waitFor } from '../helpers/wait-for.js';
import { rig } from './fixtures.js';

const BODY = '{"gearman_ret":0,"response_string":"ok"}';
const FINAL = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`;

/** A raw HTTP/1.1 server answering every request with `informational` followed by FINAL. */
async function rawEndpoint(t: TestContext, informational: string): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const headEnd = pending.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const length = Number(/content-length: *(\d+)/i.exec(pending.subarray(0, headEnd).toString('latin1'))?.[1] ?? 0);
        if (pending.length < headEnd + 4 + length) return;
        pending = pending.subarray(headEnd + 4 + length);
        socket.write(informational + FINAL);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/job`;
}

test('WorkerPool should fail a job whose endpoint sends an unsolicited 100 Continue, naming the cause', async (t) => {
  const r = await rig(t);
  const uri = await rawEndpoint(t, 'HTTP/1.1 100 Continue\r\n\r\n');
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, jobProcessingUri: uri } });
  const result = await r.client.submit(r.fn, 'x');
  assert.equal(result.outcome, 'fail');
  const line = await waitFor(() => r.logger.find('job failed')[0], { timeoutMs: 5000, message: 'a "job failed" warning' });
  assert.match(
    String(line.reason),
    /^the endpoint sent an unsolicited "100 Continue", which undici \(the HTTP client\) does not accept: .* \(request failed: UND_ERR_SOCKET: bad response\)$/,
  );
});

test('WorkerPool should complete a job whose endpoint sends 103 Early Hints before the 200', async (t) => {
  const r = await rig(t);
  const uri = await rawEndpoint(t, 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n');
  r.pool.reconfigure({ ...r.settings, pool: { ...r.settings.pool, jobProcessingUri: uri } });
  for (let i = 0; i < 3; i++) {
    const result = await r.client.submit(r.fn, 'x');
    assert.equal(result.outcome, 'complete');
    assert.equal(result.result?.toString(), 'ok');
  }
  assert.deepEqual(r.logger.find('job failed'), []);
});
