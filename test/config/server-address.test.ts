import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, ErrorCode } from '../../src/errors.js';
import { parseServerAddress } from '../../src/config/jobs-config.js';

test('parseServerAddress should default the port to 4730', () => {
  assert.deepEqual(parseServerAddress('localhost'), { host: 'localhost', port: 4730, label: 'localhost:4730' });
  assert.deepEqual(parseServerAddress('10.0.0.2'), { host: '10.0.0.2', port: 4730, label: '10.0.0.2:4730' });
});

test('parseServerAddress should read host:port', () => {
  assert.deepEqual(parseServerAddress('10.0.0.2:4731'), { host: '10.0.0.2', port: 4731, label: '10.0.0.2:4731' });
  assert.deepEqual(parseServerAddress('gearman-1.internal.example.com:1'), {
    host: 'gearman-1.internal.example.com',
    port: 1,
    label: 'gearman-1.internal.example.com:1',
  });
  assert.equal(parseServerAddress('h:65535').port, 65535);
});

test('parseServerAddress should lower-case host names so duplicates are found', () => {
  assert.deepEqual(parseServerAddress('GearMan.Local'), { host: 'gearman.local', port: 4730, label: 'gearman.local:4730' });
});

test('parseServerAddress should read bracketed IPv6 with and without a port', () => {
  assert.deepEqual(parseServerAddress('[::1]:4731'), { host: '::1', port: 4731, label: '[::1]:4731' });
  assert.deepEqual(parseServerAddress('[::1]'), { host: '::1', port: 4730, label: '[::1]:4730' });
  assert.deepEqual(parseServerAddress('[FE80::1:2]:80'), { host: 'fe80::1:2', port: 80, label: '[fe80::1:2]:80' });
});

test('parseServerAddress should refuse a bare IPv6 address, which cannot carry a port unambiguously', () => {
  assert.throws(() => parseServerAddress('::1'), {
    message: 'gearman server "::1": expected "host", "host:port", "[ipv6]" or "[ipv6]:port" with a port from 1 to 65535 (an IPv6 address needs brackets: "[::1]")',
  });
});

test('parseServerAddress should throw a ConfigError on garbage', () => {
  const bad = ['', ':4730', 'host:', 'host:0', 'host:65536', 'host:12ab', 'host:-1', 'bad host', 'a..b', '-host', 'host:4730:1', '[::1', '[nope]:1', '[::1]:', '[::1]x', '999.1.1.1', 'x'.repeat(64), 'tcp://host'];
  for (const entry of bad) {
    assert.throws(
      () => parseServerAddress(entry),
      (error: unknown) => error instanceof ConfigError && error.code === ErrorCode.CONFIG && /^gearman server ".*: expected "host", "host:port"/.test(error.message),
      entry,
    );
  }
});

test('parseServerAddress should accept a trailing dot and underscores in host names', () => {
  assert.equal(parseServerAddress('gearman.example.com.').host, 'gearman.example.com.');
  assert.equal(parseServerAddress('my_gearman:4730').host, 'my_gearman');
});
