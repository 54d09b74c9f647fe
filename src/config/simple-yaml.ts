/**
 * The part of YAML that a Prometheus web config file (`--web_config_file`) is written in: block
 * mappings and block sequences of scalars, plain or quoted, with comments; or the whole file as JSON
 * (a YAML document too). Anything else (anchors, tags, block scalars, flow collections, multi-line
 * strings) is refused with its line number rather than guessed at: this file decides who may read the
 * exporter, and a YAML parser that half-understands it would be worse than one that says no.
 *
 * Scalars stay strings (`~`, `null` and an empty value are null): every value the web config takes is
 * a file name, a user name, a bcrypt hash or a word, and `yes` or `0123` must not turn into something
 * else on the way.
 */
import { ErrorCode } from '../errors.js';
import { readJsonDocument } from './json-source.js';

export type YamlValue = string | null | YamlValue[] | { [key: string]: YamlValue };

/** Caught by the web config's reader and turned into a ConfigError line naming the file and the line. */
export class YamlSubsetError extends Error {
  readonly code = ErrorCode.CONFIG;
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.line = line;
  }
}

interface Line {
  number: number;
  indent: number;
  text: string;
}

/** Characters a plain scalar may not start with: they begin YAML features this reader does not have. */
const UNSUPPORTED_START = /^[&*!|>%@`{[]/;

/** `text` without a trailing comment (` #…`) outside quotes. */
function stripComment(text: string, number: number): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== null) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      // A quote opens a string only where a scalar starts.
      const before = text.slice(0, i).trimEnd();
      if (before === '' || before.endsWith(':') || before.endsWith('-')) quote = c;
    } else if (c === '#' && (i === 0 || text[i - 1] === ' ' || text[i - 1] === '\t')) {
      return text.slice(0, i).trimEnd();
    }
  }
  if (quote !== null) throw new YamlSubsetError(number, 'a quoted string must end on its line');
  return text.trimEnd();
}

function toLines(text: string): Line[] {
  const lines: Line[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const number = index + 1;
    const indentText = /^[ \t]*/.exec(raw)?.[0] ?? '';
    if (indentText.includes('\t') && raw.trim() !== '') throw new YamlSubsetError(number, 'indent with spaces, not tabs');
    const content = stripComment(raw.slice(indentText.length), number);
    if (content === '' || ((content === '---' || content === '...') && indentText === '')) return;
    lines.push({ number, indent: indentText.length, text: content });
  });
  return lines;
}

function scalar(text: string, number: number): string | null {
  if (text === '' || text === '~' || text === 'null') return null;
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) throw new YamlSubsetError(number, 'text after a quoted string');
    return text.slice(1, -1).replaceAll("''", "'");
  }
  if (text.startsWith('"')) {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'string') return value;
    } catch {
      // Fall through to the line below.
    }
    throw new YamlSubsetError(number, 'a double-quoted string with JSON escapes only, and nothing after it');
  }
  if (UNSUPPORTED_START.test(text)) {
    throw new YamlSubsetError(number, `${JSON.stringify(text.slice(0, 20))}: anchors, tags, block scalars and flow collections are not supported; write plain or quoted values, one per line`);
  }
  if (/: |:$/.test(text)) throw new YamlSubsetError(number, `${JSON.stringify(text.slice(0, 40))}: a value with ": " in it must be quoted`);
  return text;
}

/** Splits `key: value` (or `key:`) of a mapping line; the key may be quoted. */
function keyAndRest(line: Line): { key: string; rest: string } {
  const { text, number } = line;
  let key: string | null;
  let after: number;
  if (text.startsWith('"') || text.startsWith("'")) {
    const close = text.indexOf(text[0] as string, 1);
    if (close === -1) throw new YamlSubsetError(number, 'unterminated quoted key');
    key = scalar(text.slice(0, close + 1), number);
    after = close + 1;
  } else {
    const colon = text.search(/:( |$)/);
    if (colon === -1) throw new YamlSubsetError(number, `expected "key: value", got ${JSON.stringify(text.slice(0, 40))}`);
    key = text.slice(0, colon).trimEnd();
    after = colon;
  }
  if (text[after] !== ':' || (after + 1 < text.length && text[after + 1] !== ' ')) {
    throw new YamlSubsetError(number, `expected "key: value", got ${JSON.stringify(text.slice(0, 40))}`);
  }
  if (key === null || key === '' || key === '?' || UNSUPPORTED_START.test(key)) throw new YamlSubsetError(number, 'expected a plain or quoted key');
  return { key, rest: text.slice(after + 1).trim() };
}

class Reader {
  readonly #lines: Line[];
  #next = 0;

  constructor(lines: Line[]) {
    this.#lines = lines;
  }

  document(): YamlValue {
    if (this.#lines.length === 0) return null;
    const value = this.#block((this.#lines[0] as Line).indent);
    const left = this.#lines[this.#next];
    if (left !== undefined) throw new YamlSubsetError(left.number, 'indentation does not match any key above');
    return value;
  }

  #block(indent: number): YamlValue {
    const first = this.#lines[this.#next] as Line;
    return first.text === '-' || first.text.startsWith('- ') ? this.#sequence(indent) : this.#mapping(indent);
  }

  #mapping(indent: number): YamlValue {
    const map = new Map<string, YamlValue>();
    for (let line = this.#lines[this.#next]; line !== undefined && line.indent === indent; line = this.#lines[this.#next]) {
      if (line.text.startsWith('- ')) throw new YamlSubsetError(line.number, 'a list item where a key was expected');
      const { key, rest } = keyAndRest(line);
      if (map.has(key)) throw new YamlSubsetError(line.number, `key ${JSON.stringify(key)} appears more than once`);
      this.#next++;
      map.set(key, rest === '' ? this.#nested(indent) : scalar(rest, line.number));
    }
    // Object.fromEntries keeps a key named "__proto__" as an own property.
    return Object.fromEntries(map);
  }

  /** The value of a key written alone on its line: a deeper block, a list at the same indent, or null. */
  #nested(indent: number): YamlValue {
    const next = this.#lines[this.#next];
    if (next === undefined || next.indent < indent) return null;
    if (next.indent > indent) return this.#block(next.indent);
    return next.text === '-' || next.text.startsWith('- ') ? this.#sequence(indent) : null;
  }

  #sequence(indent: number): YamlValue {
    const items: YamlValue[] = [];
    for (let line = this.#lines[this.#next]; line !== undefined && line.indent === indent && (line.text === '-' || line.text.startsWith('- ')); line = this.#lines[this.#next]) {
      const item = line.text.slice(1).trim();
      if (/^[^'"]*?:( |$)/.test(item)) throw new YamlSubsetError(line.number, 'a list of mappings is not supported here; list plain values');
      this.#next++;
      items.push(scalar(item, line.number));
    }
    return items;
  }
}

/** Parses `text`; throws YamlSubsetError (with a line number) for anything outside the subset. */
export function parseSimpleYaml(text: string): YamlValue {
  if (/^\s*[{[]/.test(text)) {
    const document = readJsonDocument(text);
    if (!document.ok) throw new YamlSubsetError(document.syntaxError.line, `not valid JSON: ${document.syntaxError.message}`);
    const duplicate = document.duplicates[0];
    if (duplicate !== undefined) throw new YamlSubsetError(duplicate.line, duplicate.message);
    return document.value as YamlValue;
  }
  return new Reader(toLines(text.replace(/^\uFEFF/, ''))).document();
}
