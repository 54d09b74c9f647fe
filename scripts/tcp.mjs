#!/usr/bin/env node
// Small TCP helpers for the shell scripts, so they need neither nc nor gearadmin:
//
//   node scripts/tcp.mjs free-port                         print a free TCP port on 127.0.0.1
//   node scripts/tcp.mjs wait-port HOST PORT SECONDS       wait until HOST:PORT accepts connections
//   node scripts/tcp.mjs ask HOST PORT COMMAND             driveshaft status port: send one command,
//                                                          print the reply (like `echo threads | nc`)
//   node scripts/tcp.mjs wait-workers HOST PORT SECONDS FUNCTION[=N]...
//                                                          wait until gearmand lists at least N (default 1)
//                                                          available workers for every FUNCTION
//
// Exit status: 0 done, 1 timed out or connection failed, 2 bad usage.
import net from 'node:net';

const CONNECT_TIMEOUT_MS = 5_000;
const POLL_MS = 100;

function usage(message) {
  process.stderr.write(`tcp.mjs: ${message}\n`);
  process.exit(2);
}

function port(text) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 65535) usage(`bad port ${JSON.stringify(text)}`);
  return value;
}

function seconds(text) {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) usage(`bad number of seconds ${JSON.stringify(text)}`);
  return value;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: picked } = server.address();
      server.close(() => resolve(picked));
    });
  });
}

/** Sends `text`, resolves with everything read until `done(reply)` says so or the peer closes. */
function exchange(host, portNumber, text, done = () => false) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port: portNumber });
    let reply = '';
    socket.setEncoding('utf8');
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error(`no answer from ${host}:${portNumber} within ${CONNECT_TIMEOUT_MS} ms`)));
    socket.once('connect', () => socket.write(text));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (done(reply)) {
        socket.destroy();
        resolve(reply);
      }
    });
    socket.once('end', () => resolve(reply));
    socket.once('error', reject);
  });
}

/** gearmand's admin `status`: FUNCTION\tTOTAL\tRUNNING\tAVAILABLE_WORKERS lines, then ".". */
async function availableWorkers(host, portNumber) {
  const reply = await exchange(host, portNumber, 'status\n', (text) => /^\.\r?$/m.test(text));
  const counts = new Map();
  for (const line of reply.split('\n')) {
    const fields = line.replace(/\r$/, '').split('\t');
    if (fields.length === 4) counts.set(fields[0], Number(fields[3]));
  }
  return counts;
}

async function until(deadlineSeconds, what, probe) {
  const deadline = Date.now() + deadlineSeconds * 1000;
  let last = '';
  for (;;) {
    try {
      const result = await probe();
      if (result === true) return;
      last = result === false ? '' : String(result);
    } catch (error) {
      last = error.message;
    }
    if (Date.now() >= deadline) {
      process.stderr.write(`tcp.mjs: timed out after ${deadlineSeconds} s waiting for ${what}${last ? ` (${last})` : ''}\n`);
      process.exit(1);
    }
    await sleep(POLL_MS);
  }
}

const [command, ...args] = process.argv.slice(2);
switch (command) {
  case 'free-port':
    process.stdout.write(`${await freePort()}\n`);
    break;
  case 'wait-port': {
    if (args.length !== 3) usage('wait-port HOST PORT SECONDS');
    const [host, portText, secondsText] = args;
    const portNumber = port(portText);
    await until(seconds(secondsText), `${host}:${portNumber} to accept connections`, () =>
      new Promise((resolve, reject) => {
        const socket = net.connect({ host, port: portNumber }, () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', reject);
      }),
    );
    break;
  }
  case 'ask': {
    if (args.length !== 3) usage('ask HOST PORT COMMAND');
    const [host, portText, line] = args;
    try {
      process.stdout.write(await exchange(host, port(portText), `${line}\n`));
    } catch (error) {
      process.stderr.write(`tcp.mjs: ${host}:${portText}: ${error.message}\n`);
      process.exit(1);
    }
    break;
  }
  case 'wait-workers': {
    if (args.length < 4) usage('wait-workers HOST PORT SECONDS FUNCTION[=N]...');
    const [host, portText, secondsText, ...wanted] = args;
    const portNumber = port(portText);
    const needs = wanted.map((spec) => {
      const [name, count = '1'] = spec.split('=');
      if (!name || !/^[0-9]+$/.test(count)) usage(`bad FUNCTION[=N] ${JSON.stringify(spec)}`);
      return { name, count: Number(count) };
    });
    await until(seconds(secondsText), `gearmand ${host}:${portNumber} to list workers for ${wanted.join(' ')}`, async () => {
      const counts = await availableWorkers(host, portNumber);
      const missing = needs.filter(({ name, count }) => (counts.get(name) ?? 0) < count);
      return missing.length === 0 ? true : `still missing: ${missing.map(({ name, count }) => `${name} ${counts.get(name) ?? 0}/${count}`).join(', ')}`;
    });
    break;
  }
  default:
    usage('usage: tcp.mjs free-port | wait-port HOST PORT SECONDS | ask HOST PORT COMMAND | wait-workers HOST PORT SECONDS FUNCTION[=N]...');
}
