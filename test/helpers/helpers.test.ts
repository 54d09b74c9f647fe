import assert from 'node:assert/strict';
import { request, Agent } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { freePort } from './free-port.js';
import { ADMIN_CLIENT_ID, parseStatus, parseWorkers, startGearmand } from './gearmand.js';
import { HelperErrorCode } from './helper-error.js';
import { parseJsonJob, parseMultipart, startEndpoint, type EndpointAnswer } from './http-endpoint.js';
import { buildPacket, HEADER_SIZE, T } from './packet-builder.js';
import { waitFor } from './wait-for.js';

/** A raw TCP connection, destroyed by the test's cleanup. */
async function rawConnection(port: number, t: { after(fn: () => void): void }): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Resolves with the first `size` bytes a socket receives. */
function readBytes(socket: Socket, size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= size) {
        socket.off('data', onData);
        resolve(Buffer.concat(chunks).subarray(0, size));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

test('freePort should return a port that can be listened on', async () => {
  const port = await freePort();
  assert.ok(port > 0 && port < 65536);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('waitFor should return the first value that is not undefined or false', async () => {
  let calls = 0;
  const value = await waitFor(() => (++calls >= 3 ? 0 : undefined), { timeoutMs: 2_000, intervalMs: 1, message: 'three calls' });
  assert.equal(value, 0);
  assert.equal(calls, 3);
});

test('waitFor should throw a descriptive error with the last probe error on timeout', async () => {
  const started = Date.now();
  await assert.rejects(
    waitFor(
      () => {
        throw new Error('not yet');
      },
      { timeoutMs: 100, intervalMs: 10, message: 'the impossible' },
    ),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, HelperErrorCode.WAIT_TIMEOUT);
      assert.match(err.message, /timed out after 100 ms waiting for the impossible/);
      assert.match(err.message, /not yet/);
      assert.equal((err.cause as Error).message, 'not yet');
      return true;
    },
  );
  assert.ok(Date.now() - started < 1_000);
});

test('waitFor should not wait past its deadline for a probe that never settles', async () => {
  const started = Date.now();
  await assert.rejects(
    waitFor(() => new Promise<never>(() => {}), { timeoutMs: 100, message: 'a hung probe' }),
    /still pending at the deadline/,
  );
  assert.ok(Date.now() - started < 1_000);
});

test('buildPacket should frame arguments with NUL separators and an unterminated last argument', () => {
  const packet = buildPacket('RES', T.JOB_ASSIGN_UNIQ, ['H:x:1', 'fn', 'u', Buffer.from([0, 1, 0])]);
  assert.deepEqual(packet.subarray(0, 4), Buffer.from('\0RES', 'latin1'));
  assert.equal(packet.readUInt32BE(4), 31);
  const data = Buffer.from('H:x:1\0fn\0u\0\x00\x01\x00', 'latin1');
  assert.equal(packet.readUInt32BE(8), data.length);
  assert.deepEqual(packet.subarray(HEADER_SIZE), data);
  assert.deepEqual(buildPacket('REQ', T.PRE_SLEEP, []), Buffer.from('\0REQ\0\0\0\x04\0\0\0\0', 'latin1'));
});

test('startGearmand should start a gearmand that answers admin commands and stop it', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  assert.equal(gearmand.host, '127.0.0.1');
  assert.equal(gearmand.label, `127.0.0.1:${gearmand.port}`);
  assert.match(await gearmand.admin('version'), /^OK /);
  assert.equal(await gearmand.admin('getpid'), `OK ${gearmand.pid}\n`);
  assert.deepEqual(await gearmand.status(), []);
  assert.deepEqual(await gearmand.workers(), []);

  await gearmand.stop();
  await gearmand.stop(); // idempotent
  await assert.rejects(gearmand.admin('version'), { code: HelperErrorCode.GEARMAND_ADMIN });
});

test('startGearmand should see a raw CAN_DO in workers() and a queued job in status()', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());

  const worker = await rawConnection(gearmand.port, t);
  worker.write(buildPacket('REQ', T.SET_CLIENT_ID, ['helper-test-worker']));
  worker.write(buildPacket('REQ', T.CAN_DO, ['fn']));
  const workers = await waitFor(
    async () => {
      const list = await gearmand.workers();
      return list.some((w) => w.functions.includes('fn')) ? list : undefined;
    },
    { timeoutMs: 5_000, message: 'workers() to list the raw CAN_DO fn' },
  );
  assert.equal(workers.length, 1);
  assert.equal(workers[0]?.clientId, 'helper-test-worker');
  assert.equal(workers[0]?.ip, '127.0.0.1');
  assert.deepEqual(workers[0]?.functions, ['fn']);

  const client = await rawConnection(gearmand.port, t);
  client.write(buildPacket('REQ', T.SUBMIT_JOB_BG, ['fn', 'u-1', Buffer.from([0, 0xff])]));
  const created = await readBytes(client, HEADER_SIZE);
  assert.equal(created.readUInt32BE(4), T.JOB_CREATED);
  assert.deepEqual(
    (await gearmand.status()).find((s) => s.function === 'fn'),
    { function: 'fn', total: 1, running: 0, availableWorkers: 1 },
  );

  // The worker takes the job, so RUNNING counts it and the unique id comes back intact.
  worker.write(buildPacket('REQ', T.GRAB_JOB_UNIQ, []));
  const header = await readBytes(worker, HEADER_SIZE);
  assert.equal(header.readUInt32BE(4), T.JOB_ASSIGN_UNIQ);
  await waitFor(async () => (await gearmand.status()).find((s) => s.function === 'fn' && s.running === 1), {
    timeoutMs: 5_000,
    message: 'status() to show fn running',
  });
});

test('startGearmand should restart on the same port and survive a SIGKILL', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  const { port, pid } = gearmand;
  // A connected peer leaves the server's side in TIME_WAIT when gearmand goes: the new one must still bind.
  const worker = await rawConnection(port, t);
  worker.write(buildPacket('REQ', T.CAN_DO, ['fn']));
  await waitFor(async () => (await gearmand.workers()).length === 1 || undefined, {
    timeoutMs: 5_000,
    message: 'the raw worker to register',
  });
  const closed = new Promise<void>((resolve) => worker.once('close', () => resolve()));

  await gearmand.restart();
  await closed;
  assert.equal(gearmand.port, port);
  assert.notEqual(gearmand.pid, pid);
  assert.equal(await gearmand.admin('getpid'), `OK ${gearmand.pid}\n`);

  const killedPid = gearmand.pid;
  await gearmand.kill();
  assert.throws(() => process.kill(killedPid, 0), { code: 'ESRCH' });
  await gearmand.restart();
  assert.match(await gearmand.admin('version'), /^OK /);
});

test('startGearmand should freeze with SIGSTOP and still stop cleanly', async (t) => {
  const gearmand = await startGearmand();
  t.after(() => gearmand.stop());
  await gearmand.kill('SIGSTOP');
  await assert.rejects(
    waitFor(() => gearmand.admin('version'), { timeoutMs: 300, message: 'a frozen gearmand to answer' }),
    { code: HelperErrorCode.WAIT_TIMEOUT },
  );
  await gearmand.kill('SIGCONT');
  assert.match(await gearmand.admin('version'), /^OK /);
  await gearmand.kill('SIGSTOP');
  const pid = gearmand.pid;
  await gearmand.stop(); // SIGTERM stays pending on a stopped process unless it is continued
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
});

test('startGearmand should reject with gearmand output when gearmand cannot start', async () => {
  await assert.rejects(startGearmand({ extraArgs: ['--no-such-flag'] }), (err: Error & { code?: string }) => {
    assert.equal(err.code, HelperErrorCode.GEARMAND_START);
    assert.match(err.message, /no-such-flag/);
    return true;
  });
});

test('startGearmand should refuse a port that another server answers on', async (t) => {
  const first = await startGearmand();
  t.after(() => first.stop());
  await assert.rejects(startGearmand({ port: first.port }), { code: HelperErrorCode.GEARMAND_PORT_TAKEN });
  assert.equal(await first.admin('getpid'), `OK ${first.pid}\n`);
});

test('parseWorkers and parseStatus should read gearmand 1.1.20 replies', () => {
  const workers = parseWorkers(
    `17 127.0.0.1 ${ADMIN_CLIENT_ID} :\n16 127.0.0.1  : x\n15 127.0.0.1 my client id : fn2 fn\n14 ::1 - :\n.\n`,
  );
  assert.deepEqual(workers, [
    { fd: '17', ip: '127.0.0.1', clientId: ADMIN_CLIENT_ID, functions: [] },
    { fd: '16', ip: '127.0.0.1', clientId: '', functions: ['x'] },
    { fd: '15', ip: '127.0.0.1', clientId: 'my client id', functions: ['fn2', 'fn'] },
    { fd: '14', ip: '::1', clientId: '-', functions: [] },
  ]);
  assert.deepEqual(parseStatus('queued\t2\t0\t0\nrev\t0\t0\t1\n.\n'), [
    { function: 'queued', total: 2, running: 0, availableWorkers: 0 },
    { function: 'rev', total: 0, running: 0, availableWorkers: 1 },
  ]);
  assert.deepEqual(parseStatus('.\n'), []);
  assert.throws(() => parseStatus('x\t1\t2\n.\n'), { code: HelperErrorCode.GEARMAND_ADMIN });
  assert.throws(() => parseWorkers('15 127.0.0.1 - :\n'), { code: HelperErrorCode.GEARMAND_ADMIN });
});

/** POSTs `body` through `agent` and resolves with status and body text. */
function post(url: string, agent: Agent, body: Buffer | string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('startEndpoint should record requests and reuse one socket with a keep-alive agent', async (t) => {
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  assert.match(endpoint.url, /^http:\/\/127\.0\.0\.1:\d+\/job$/);

  const first = await post(endpoint.url, agent, '{"a":1}');
  assert.equal(first.status, 200);
  assert.deepEqual(JSON.parse(first.body), { gearman_ret: 0, response_string: 'ok' });
  await post(endpoint.url, agent, Buffer.from([0, 1, 2]));

  assert.equal(endpoint.requests.length, 2);
  assert.equal(endpoint.requests[0]?.method, 'POST');
  assert.equal(endpoint.requests[0]?.url, '/job');
  assert.equal(endpoint.requests[0]?.headers['content-type'], 'application/json');
  assert.equal(endpoint.requests[0]?.body.toString(), '{"a":1}');
  assert.deepEqual(endpoint.requests[1]?.body, Buffer.from([0, 1, 2]));
  assert.equal(endpoint.requests[0]?.socketId, endpoint.requests[1]?.socketId);
  assert.equal(endpoint.connections(), 1);

  const fresh = new Agent({ keepAlive: false });
  t.after(() => fresh.destroy());
  await post(endpoint.url, fresh, 'x');
  assert.notEqual(endpoint.requests[2]?.socketId, endpoint.requests[0]?.socketId);
  assert.equal(endpoint.connections(), 2);
});

test('startEndpoint should answer as scripted: status, text, delay and reset', async (t) => {
  const endpoint = await startEndpoint();
  t.after(() => endpoint.close());
  const agent = new Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const answers: EndpointAnswer[] = [
    { status: 503, body: 'busy', headers: { 'x-why': 'test' } },
    { delayMs: 150, body: { gearman_ret: 1, response_string: 'late' } },
    { destroy: true },
  ];
  endpoint.setHandler(() => answers.shift() ?? {});

  assert.deepEqual(await post(endpoint.url, agent, ''), { status: 503, body: 'busy' });
  const started = Date.now();
  const late = await post(endpoint.url, agent, '');
  assert.ok(Date.now() - started >= 140, 'delayMs delays the answer');
  assert.deepEqual(JSON.parse(late.body), { gearman_ret: 1, response_string: 'late' });
  await assert.rejects(post(endpoint.url, agent, ''), { code: 'ECONNRESET' });
  assert.equal(endpoint.requests.length, 3);
});

test('startEndpoint close should not wait for a delayed answer or an idle keep-alive socket', async () => {
  const endpoint = await startEndpoint(() => ({ delayMs: 60_000 }));
  const agent = new Agent({ keepAlive: true });
  const pending = post(endpoint.url, agent, 'x').catch((err: unknown) => err);
  await waitFor(() => endpoint.requests.length === 1 || undefined, { timeoutMs: 5_000, message: 'the request' });
  const started = Date.now();
  await endpoint.close();
  await endpoint.close(); // idempotent
  assert.ok(Date.now() - started < 1_000);
  assert.equal((await pending as { code?: string }).code, 'ECONNRESET');
  agent.destroy();
});

test('parseMultipart should return binary parts byte for byte', () => {
  const boundary = '----driveshaft7MA4YWxk';
  const workload = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x2d, 0x2d, 0x00, 0xc3, 0x28]);
  const field = (name: string, data: Buffer | string): Buffer[] => [
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`),
    Buffer.isBuffer(data) ? data : Buffer.from(data),
    Buffer.from('\r\n'),
  ];
  const body = Buffer.concat([
    ...field('function_name', 'Sum'),
    ...field('job_handle', 'H:host:6'),
    ...field('unique', ''),
    ...field('workload', workload),
    Buffer.from(`--${boundary}--\r\n`),
  ]);
  const parts = parseMultipart(body, `multipart/form-data; boundary=${boundary}`);
  assert.deepEqual(
    parts.map((p) => p.name),
    ['function_name', 'job_handle', 'unique', 'workload'],
  );
  assert.equal(parts[0]?.data.toString(), 'Sum');
  assert.equal(parts[2]?.data.length, 0);
  assert.deepEqual(parts[3]?.data, workload);
  assert.equal(parts[3]?.headers['content-disposition'], 'form-data; name="workload"');

  assert.throws(() => parseMultipart(body, 'multipart/form-data'), { code: HelperErrorCode.MULTIPART });
  assert.throws(() => parseMultipart(body.subarray(0, body.length - 30), `multipart/form-data; boundary="${boundary}"`), {
    code: HelperErrorCode.MULTIPART,
  });
});

test('parseMultipart should read what FormData serialises (round trip with binary data)', async () => {
  const workload = Buffer.from([0x00, 0x80, 0xfe, 0xff, 0x0d, 0x0a]);
  const form = new FormData();
  form.append('function_name', 'Sum');
  form.append('workload', new Blob([workload]), 'workload');
  const encoded = new Response(form);
  const contentType = encoded.headers.get('content-type') ?? '';
  const parts = parseMultipart(Buffer.from(await encoded.arrayBuffer()), contentType);
  assert.equal(parts.length, 2);
  assert.equal(parts[0]?.data.toString(), 'Sum');
  assert.deepEqual(parts[1]?.data, workload);
});

test('parseJsonJob should check the shape and decode base64 workloads', () => {
  const plain = parseJsonJob('{"function_name":"Sum","job_handle":"H:h:1","unique":"u","workload":"[1,2]"}');
  assert.deepEqual(plain.workloadBytes, Buffer.from('[1,2]'));
  const binary = Buffer.from([0, 0xff, 0xfe]);
  const encoded = parseJsonJob(
    JSON.stringify({
      function_name: 'Sum',
      job_handle: 'H:h:2',
      unique: 'u',
      workload: binary.toString('base64'),
      workload_encoding: 'base64',
    }),
  );
  assert.equal(encoded.workload_encoding, 'base64');
  assert.deepEqual(encoded.workloadBytes, binary);
  for (const bad of ['[]', '{"function_name":"Sum"}', '{"function_name":"a","job_handle":"b","unique":"c","workload":1}', 'nope']) {
    assert.throws(() => parseJsonJob(bad), { code: HelperErrorCode.JSON_JOB });
  }
  assert.throws(
    () => parseJsonJob('{"function_name":"a","job_handle":"b","unique":"c","workload":"d","extra":1}'),
    /unexpected key "extra"/,
  );
});
