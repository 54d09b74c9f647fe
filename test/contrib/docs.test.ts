/**
 * The operator documentation against the option parser: an option added, renamed or removed in
 * src/config/options.ts must show up in the man page, the README and the service files, or this fails.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DELIVERY_KEYS, POOL_DELIVERY_KEYS } from '../../src/config/delivery.js';
import { helpText } from '../../src/config/options.js';
import { POOL_SECURITY_KEYS, TLS_KEYS } from '../../src/config/security.js';
import { WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER } from '../../src/child/http/endpoint-security.js';
import { ATTEMPT_HEADER, FIRST_ATTEMPT_HEADER } from '../../src/child/http/request-builder.js';

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

/** Heading texts of a markdown file, without the leading #s. */
function headings(markdown: string): string[] {
  return [...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((m) => (m[1] as string).trim());
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Source files under a folder of the checkout, recursively (TypeScript only). */
function sourceFiles(folder: string): string[] {
  return readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(folder, name));
}

test('links from docs/ to README sections should land on a README heading', () => {
  const anchors = new Set(headings(read('README.md')).map(anchor));
  const pages = readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md'));
  assert.ok(pages.includes('architecture.md') && pages.includes('http-contract.md') && pages.includes('configuration.md'));
  let links = 0;
  for (const page of pages) {
    for (const [, target] of read(`docs/${page}`).matchAll(/\]\(\.\.\/README\.md#([^)]+)\)/g)) {
      links++;
      assert.ok(anchors.has(target as string), `docs/${page} links to README.md#${target}, which is no README heading`);
    }
  }
  assert.ok(links > 0, 'expected docs/ to link to README sections');
});

test('comments citing a README section or a docs page should name one that exists', () => {
  const readmeHeadings = headings(read('README.md'));
  let cites = 0;
  // This file holds the patterns themselves, not citations.
  const files = [...sourceFiles('src'), ...sourceFiles('test'), ...sourceFiles('bench')].filter((file) => !file.endsWith(path.join('contrib', 'docs.test.ts')));
  for (const file of files) {
    const text = read(file);
    for (const [, section] of text.matchAll(/\(README: ([^);]+)[);]/g)) {
      cites++;
      assert.ok(readmeHeadings.includes((section as string).trim()), `${file} cites README section "${section}", which README.md does not have`);
    }
    for (const [, page, section] of text.matchAll(/\bdocs\/([a-z-]+\.md)(?:, ([A-Z][A-Za-z]*))?/g)) {
      cites++;
      const markdown = read(`docs/${page}`);
      if (section !== undefined) {
        assert.ok(headings(markdown).some((heading) => heading.startsWith(section)), `${file} cites section "${section}" of docs/${page}, which has none`);
      }
    }
  }
  assert.ok(cites > 0, 'expected comments to cite the README or docs/');
});
