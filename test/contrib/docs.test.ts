/**
 * The operator documentation against the option parser: an option added, renamed or removed in
 * src/config/options.ts must show up in the man page, the README and the service files, or this fails.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DELIVERY_KEYS, POOL_DELIVERY_KEYS } from '../../src/config/delivery.js';
import { helpText } from '../../src/config/options.js';
import { POOL_SECURITY_KEYS, TLS_KEYS } from '../../src/config/security.js';
import { WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from '../../src/child/endpoint-security.js';
import { ATTEMPT_HEADER, FIRST_ATTEMPT_HEADER } from '../../src/child/job-runner.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

/** Option names as --help lists them. */
function optionNames(): string[] {
  const names = [...helpText().matchAll(/^ {2}--([a-z_]+)/gm)].map((m) => m[1] as string);
  assert.ok(names.length >= 13, `expected the README's options in --help, found ${names.join(', ')}`);
  return names;
}

/** Environment variable names as --help lists them. */
function envNames(): string[] {
  return [...helpText().matchAll(/env (DRIVESHAFT_[A-Z_]+)/g)].map((m) => m[1] as string);
}

test('man/driveshaft.1 should document every option and environment variable of --help', () => {
  const man = read('man/driveshaft.1');
  for (const name of optionNames()) {
    // roff writes a literal "-" as "\-".
    assert.ok(man.includes(`\\-\\-${name}`), `man page lacks --${name}`);
  }
  for (const variable of envNames()) assert.ok(man.includes(variable), `man page lacks ${variable}`);
});

test('README.md should list every option of --help in its options table', () => {
  const readme = read('README.md');
  for (const name of optionNames()) {
    assert.match(readme, new RegExp(`^\\| \`--${name}[ \`]`, 'm'), `README options table lacks --${name}`);
  }
});

test('the systemd unit and the init script defaults should only use options that exist', () => {
  const variables = new Set(envNames());
  const unit = read('contrib/systemd/driveshaft.service');
  const used = [...unit.matchAll(/(DRIVESHAFT_[A-Z_]+)=/g)].map((m) => m[1] as string);
  assert.ok(used.length > 0);
  for (const variable of used) assert.ok(variables.has(variable), `driveshaft.service sets unknown ${variable}`);

  const options = new Set(optionNames());
  const defaults = read('contrib/default/driveshaft');
  for (const [, name] of defaults.matchAll(/--([a-z_]+)/g)) {
    assert.ok(options.has(name as string), `contrib/default/driveshaft uses unknown --${name}`);
  }
});

test('README.md and the man page should document every per-pool delivery key', () => {
  const readme = read('README.md');
  const man = read('man/driveshaft.1');
  for (const key of POOL_DELIVERY_KEYS) {
    assert.match(readme, new RegExp(`^\\| \`pools_list\\.<name>\\.${key}\` \\|`, 'm'), `README jobs config table lacks ${key}`);
    assert.match(man, new RegExp(`^\\.B ${key}$`, 'm'), `man page lacks ${key}`);
  }
  for (const key of DELIVERY_KEYS.optional) {
    assert.match(readme, new RegExp(`^\\| \`${key}\` \\|`, 'm'), `README delivery table lacks ${key}`);
    // roff: a key is a .TP tag of its own or shares one (".BR min_backoff \", \" max_backoff").
    assert.match(man, new RegExp(`^\\.BR? (?:.*\\b)?${key}\\b`, 'm'), `man page lacks delivery key ${key}`);
  }
});

test('README.md and the man page should document every security key and every header driveshaft sends', () => {
  const readme = read('README.md');
  const man = read('man/driveshaft.1');
  for (const key of POOL_SECURITY_KEYS) {
    assert.match(readme, new RegExp(`^\\| \`pools_list\\.<name>\\.${key}\` \\|`, 'm'), `README jobs config table lacks ${key}`);
    assert.match(man, new RegExp(`^\\.B ${key}$`, 'm'), `man page lacks ${key}`);
  }
  for (const key of TLS_KEYS.optional) {
    assert.match(readme, new RegExp(`^\\| \`(?:[a-z_]+\`, \`)?${key}\``, 'm'), `README tls table lacks ${key}`);
    assert.ok(man.includes(key), `man page lacks tls key ${key}`);
  }
  const headerTable = readme.slice(readme.indexOf('### Every header driveshaft sends'));
  for (const header of ['Host', 'Connection', 'Content-Type', 'Content-Length', 'Authorization', ATTEMPT_HEADER, FIRST_ATTEMPT_HEADER, WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER, WEBHOOK_SIGNATURE_HEADER]) {
    assert.ok(headerTable.toLowerCase().includes(`\`${header.toLowerCase()}\``), `README header table lacks ${header}`);
    assert.ok(man.toLowerCase().includes(header.toLowerCase()), `man page lacks header ${header}`);
  }
});
