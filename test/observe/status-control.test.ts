/**
 * The status port's control commands (pause, resume, drain): handed to the source with their words and
 * the peer, answered to clients on this machine only.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { StatusServer, UNRECOGNIZED, isLocalClient } from '../../src/observe/status-server.js';
import type { StatusSource } from '../../src/observe/status-server.js';
import { memoryLogger } from '../helpers/memory-logger.js';

/** One exchange: sends `text`, returns everything until the server closes. */
function statusExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(reply));
    socket.on('connect', () => socket.write(text));
  });
}

function source(control?: StatusSource['control']): StatusSource {
  return {
    threads: () => Promise.resolve(''),
    counters: () => Promise.resolve(''),
    gauges: () => Promise.resolve(''),
    ...(control === undefined ? {} : { control }),
  };
}

async function serve(t: TestContext, src: StatusSource): Promise<number> {
  const server = new StatusServer({ host: '127.0.0.1', port: 0, source: src, logger: memoryLogger().logger, requestTimeoutMs: 1000 });
  const { port } = await server.listen();
  t.after(() => server.close());
  return port;
}

test('StatusServer should hand a control command its words and the peer, and end the reply with CRLF', async (t) => {
  const calls: Array<{ command: string; words: string[]; peer: string }> = [];
  const port = await serve(
    t,
    source((command, words, peer) => {
      calls.push({ command, words, peer });
      return Promise.resolve(`OK ${command} ${words.join('|')}`);
    }),
  );
  assert.equal(await statusExchange(port, 'pause  Regular "Resize image"\r\n'), 'OK pause Regular|Resize image\r\n');
  assert.equal(await statusExchange(port, 'drain\n'), 'OK drain \r\n');
  assert.equal(await statusExchange(port, 'resume "Regular\n'), 'Error: unterminated quoted word at character 8\r\n');
  assert.equal(await statusExchange(port, 'Pause Regular\n'), UNRECOGNIZED, 'commands are case-sensitive');
  assert.deepEqual(calls.map((c) => [c.command, c.words]), [['pause', ['Regular', 'Resize image']], ['drain', []]]);
  assert.match(calls[0]?.peer ?? '', /^127\.0\.0\.1:\d+$/);
});

test('StatusServer without a control source should not know the control commands', async (t) => {
  const port = await serve(t, source());
  assert.equal(await statusExchange(port, 'pause Regular\n'), UNRECOGNIZED);
});

test('isLocalClient should accept loopback addresses and a client that reached its own address, nothing else', () => {
  const client = (remoteAddress: string | undefined, localAddress = '10.0.0.5') => isLocalClient({ remoteAddress, localAddress });
  assert.equal(client('127.0.0.1'), true);
  assert.equal(client('127.3.2.1'), true);
  assert.equal(client('::1'), true);
  assert.equal(client('::ffff:127.0.0.1'), true);
  assert.equal(client('10.0.0.5'), true, 'this machine, through the address the port is bound to');
  assert.equal(client('10.0.0.6'), false);
  assert.equal(client('::ffff:10.0.0.6'), false);
  assert.equal(client('128.0.0.1'), false);
  assert.equal(client(undefined), false);
});
