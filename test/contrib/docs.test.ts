/**
 * The operator documentation against the code: an option added, renamed or removed in src/config/options.ts
 * must show up in the man page, docs/configuration.md and the service files, a config key or a header in
 * docs/, and every link between the README and the docs/ pages must land, or this fails.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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
  assert.ok(names.length >= 13, `expected the documented options in --help, found ${names.join(', ')}`);
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

test('docs/configuration.md should list every option of --help in its options table', () => {
  const page = read('docs/configuration.md');
  for (const name of optionNames()) {
    assert.match(page, new RegExp(`^\\| \`--${name}[ \`]`, 'm'), `docs/configuration.md options table lacks --${name}`);
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

test('docs/configuration.md and the man page should document every per-pool delivery key', () => {
  const page = read('docs/configuration.md');
  const man = read('man/driveshaft.1');
  for (const key of POOL_DELIVERY_KEYS) {
    assert.match(page, new RegExp(`^\\| \`pools_list\\.<name>\\.${key}\` \\|`, 'm'), `docs/configuration.md jobs config table lacks ${key}`);
    assert.match(man, new RegExp(`^\\.B ${key}$`, 'm'), `man page lacks ${key}`);
  }
  for (const key of DELIVERY_KEYS.optional) {
    assert.match(page, new RegExp(`^\\| \`${key}\` \\|`, 'm'), `docs/configuration.md delivery table lacks ${key}`);
    // roff: a key is a .TP tag of its own or shares one (".BR min_backoff \", \" max_backoff").
    assert.match(man, new RegExp(`^\\.BR? (?:.*\\b)?${key}\\b`, 'm'), `man page lacks delivery key ${key}`);
  }
});

test('docs/configuration.md, docs/security.md and the man page should document every security key and every header driveshaft sends', () => {
  const configuration = read('docs/configuration.md');
  const security = read('docs/security.md');
  const man = read('man/driveshaft.1');
  for (const key of POOL_SECURITY_KEYS) {
    assert.match(configuration, new RegExp(`^\\| \`pools_list\\.<name>\\.${key}\` \\|`, 'm'), `docs/configuration.md jobs config table lacks ${key}`);
    assert.match(man, new RegExp(`^\\.B ${key}$`, 'm'), `man page lacks ${key}`);
  }
  for (const key of TLS_KEYS.optional) {
    assert.match(security, new RegExp(`^\\| \`(?:[a-z_]+\`, \`)?${key}\``, 'm'), `docs/security.md tls table lacks ${key}`);
    assert.ok(man.includes(key), `man page lacks tls key ${key}`);
  }
  const headerTable = security.slice(security.indexOf('## Every header driveshaft sends'));
  for (const header of ['Host', 'Connection', 'Content-Type', 'Content-Length', 'Authorization', ATTEMPT_HEADER, FIRST_ATTEMPT_HEADER, WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER, WEBHOOK_SIGNATURE_HEADER]) {
    assert.ok(headerTable.toLowerCase().includes(`\`${header.toLowerCase()}\``), `docs/security.md header table lacks ${header}`);
    assert.ok(man.toLowerCase().includes(header.toLowerCase()), `man page lacks header ${header}`);
  }
});

/** A fenced code block: its lines may start with # (shell, PromQL comments) or hold brackets. */
const FENCED_CODE = /^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm;

/** Markdown without its fenced code blocks and inline code spans, which hold no headings or links. */
function prose(markdown: string): string {
  return markdown.replace(FENCED_CODE, '').replace(/`[^`\n]*`/g, '');
}

/** Heading texts of a markdown file, without the leading #s. */
function headings(markdown: string): string[] {
  return [...markdown.replace(FENCED_CODE, '').matchAll(/^#{1,6} (.+)$/gm)].map((m) => (m[1] as string).trim());
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** Every anchor GitHub gives a page's headings: a repeated heading gets -1, -2… */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const heading of headings(markdown)) {
    const base = anchor(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** The operator documentation: the README, every page under docs/, and the benchmarks' READMEs. */
function markdownPages(): string[] {
  const docs = readdirSync(path.join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`);
  return ['README.md', ...docs, 'bench/README.md', 'bench/e2e/README.md'];
}

/** Where the end-to-end tests write what they produce (git-ignored): links into it cannot be checked. */
const GENERATED = 'test-artifacts/';

test('every relative link of the README and docs/ should land on a file, and an #anchor on a heading of it', () => {
  let links = 0;
  for (const page of markdownPages()) {
    for (const [, target] of prose(read(page)).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const link = target as string;
      if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
      links++;
      const [file = '', fragment] = link.split('#');
      const resolved = file === '' ? page : path.posix.normalize(path.posix.join(path.posix.dirname(page), file));
      if (resolved.startsWith(GENERATED)) continue;
      assert.ok(!resolved.startsWith('..') && existsSync(path.join(ROOT, resolved)), `${page} links to ${link}, and ${resolved} does not exist`);
      if (fragment !== undefined) {
        assert.ok(resolved.endsWith('.md'), `${page} links to ${link}: an anchor in a file that is not markdown`);
        assert.ok(anchors(read(resolved)).has(fragment), `${page} links to ${link}, and ${resolved} has no heading with anchor #${fragment}`);
      }
    }
  }
  assert.ok(links > 50, `expected the README and docs/ to link to each other, found ${links} links`);
});

test('every docs/ page should be linked from the README and start with its title and a summary', () => {
  const readme = read('README.md');
  for (const page of markdownPages().filter((name) => name.startsWith('docs/'))) {
    assert.ok(readme.includes(`](${page})`) || readme.includes(`](${page}#`), `README.md does not link to ${page}`);
    const [title, blank, summary] = read(page).split('\n');
    assert.match(title ?? '', /^# \S/, `${page} should start with a "# " title`);
    assert.ok(blank === '' && summary !== undefined && /^[A-Za-z*`]/.test(summary), `${page} should say what it is about in the paragraph after its title`);
  }
});

test('README.md should stay a front door of at most 400 lines; the reference belongs in docs/', () => {
  const lines = read('README.md').split('\n').length;
  assert.ok(lines <= 400, `README.md has ${lines} lines: move a reference section to a docs/ page and link it`);
});

/** Source files under a folder of the checkout, recursively: TypeScript, and the examples' JavaScript and PHP. */
function sourceFiles(folder: string): string[] {
  return readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => /\.(?:ts|mjs|php)$/.test(name))
    .map((name) => path.join(folder, name));
}

test('comments citing a README section or a docs page should name one that exists', () => {
  const readmeHeadings = headings(read('README.md'));
  let cites = 0;
  // This file holds the patterns themselves, not citations.
  const files = ['src', 'test', 'bench', 'examples'].flatMap(sourceFiles).filter((file) => !file.endsWith(path.join('contrib', 'docs.test.ts')));
  for (const file of files) {
    const text = read(file);
    // "(README: Install)", 'README.md, "Install"', 'README "Install"'.
    for (const [, colon, quoted] of text.matchAll(/\(README: ([^);]+)[);]|\bREADME(?:\.md)?,? "([^"]+)"/g)) {
      cites++;
      const section = (colon ?? quoted ?? '').trim();
      assert.ok(readmeHeadings.includes(section), `${file} cites README section "${section}", which README.md does not have`);
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
