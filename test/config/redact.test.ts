import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preview, Problems } from '../../src/config/problems.js';
import { describeWithoutValue, isCredentialHeaderName, redactUris } from '../../src/config/redact.js';

test('redactUris should replace the password of every URI form a URL parser accepts', () => {
  const cases: Array<[string, string]> = [
    ['http://user:s3cret@host/path', 'http://user:***@host/path'],
    ['https://user:s3cret@host:8443/a?b=c#d', 'https://user:***@host:8443/a?b=c#d'],
    ['ftp://ftpuser:FtpPassSECRET@files.example/x', 'ftp://ftpuser:***@files.example/x'],
    ['redis://:onlypassword@cache:6379', 'redis://:***@cache:6379'],
    // A password with an @ (WHATWG takes the last @ of the authority).
    ['http://user:p@ss@host/x@y', 'http://user:***@host/x@y'],
    // Special schemes without slashes, and with backslashes.
    ['http:user:s3cret@host', 'http:user:***@host'],
    ['https:\\\\user:s3cret@host\\path', 'https:\\\\user:***@host\\path'],
    // A URI that does not parse (a / in the password): everything up to its last @ is hidden.
    ['http://user:pa/ss@host', 'http://user:***@host'],
    // In a sentence, quoted, in JSON, in a log line with an escaped quote.
    ['got "http://u:s3cret@h" instead', 'got "http://u:***@h" instead'],
    ['{"uri":"https://u:s3cret@h/"}', '{"uri":"https://u:***@h/"}'],
    ['msg: got \\"ftp://u:s3cret@h\\"', 'msg: got \\"ftp://u:***@h\\"'],
    ['(http://a:one@h1, http://b:two@h2)', '(http://a:***@h1, http://b:***@h2)'],
  ];
  for (const [text, expected] of cases) assert.equal(redactUris(text), expected, text);
});

test('redactUris should leave text without a password unchanged', () => {
  for (const text of [
    'http://host:8080/users/@me',
    'https://user@host/',
    'mailto:someone@example.com',
    'Sum:v2@eu',
    'user@host',
    'file:///srv/@scope/pkg/index.js:1:2',
    'pool "Regular": 2026-12-01T10:00:00.123Z no @ here',
    '',
  ]) {
    assert.equal(redactUris(text), text, text);
  }
});

test('preview should redact before it cuts a long value short', () => {
  const uri = `http://user:${'S'.repeat(80)}@host/`;
  const shown = preview(uri);
  assert.doesNotMatch(shown, /SSS/);
  assert.match(shown, /^"http:\/\/user:\*\*\*@host\/"$/);
  assert.doesNotMatch(preview({ nested: [`ftp://a:${'Q'.repeat(70)}@b`] }), /QQQ/);
});

test('Problems.add should redact every line, whatever formatted it', () => {
  const problems = new Problems('/etc/jobs.json');
  problems.add('pools_list.A', 'something about http://u:s3cret@h');
  assert.deepEqual(problems.lines, ['/etc/jobs.json: pools_list.A: something about http://u:***@h']);
});

test('describeWithoutValue and isCredentialHeaderName should name a type, never a value', () => {
  assert.equal(describeWithoutValue('Bearer abc\n'), 'a string of 11 characters (not shown: it may be a secret)');
  assert.equal(describeWithoutValue(42), 'a number (not shown: it may be a secret)');
  assert.equal(describeWithoutValue(undefined), 'nothing');
  for (const name of ['authorization', 'Proxy-Authorization', 'cookie', 'x-api-key', 'x-apikey', 'x-auth-token', 'client-secret', 'x-password']) {
    assert.equal(isCredentialHeaderName(name), true, name);
  }
  assert.equal(isCredentialHeaderName('x-request-id'), false);
});
