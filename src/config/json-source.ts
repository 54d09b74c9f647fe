/**
 * A strict reading of a JSON config file. JSON.parse alone is not enough for an operator-facing file:
 * it keeps only the last of two equal keys (a copy-pasted pool that was not renamed would silently
 * replace the first one), and in Node 20 some of its syntax errors carry no position at all. This
 * scanner walks the text once to find the first syntax error with its line and column, and every
 * duplicate key with its JSON path; JSON.parse then builds the value.
 */
import { ErrorCode } from '../errors.js';

/** A syntax error or a duplicate key, located for the operator. */
export interface JsonIssue {
  line: number;
  column: number;
  /** Duplicate keys: the JSON path of the repeated key. Syntax errors: null. */
  path: string | null;
  message: string;
}

export type JsonDocument = { ok: true; value: unknown; duplicates: JsonIssue[] } | { ok: false; syntaxError: JsonIssue };

/** Deeper than any sane config; keeps the recursive scanner far from the stack limit. */
const MAX_DEPTH = 256;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `parent.key` for identifier-like keys, `parent["odd key"]` otherwise, `parent[3]` for indexes. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (!IDENTIFIER.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

export function displayPath(path: string): string {
  return path === '' ? '(root)' : path;
}

/** Where `index` falls in `text`, 1-based, in UTF-16 units like every editor's column counter. */
export function lineAndColumn(text: string, index: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < index && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: index - lineStart + 1 };
}

/** Where the scan stopped; caught below and turned into a ConfigError naming the line and column. */
class ScanError extends Error {
  readonly code = ErrorCode.CONFIG;
  readonly index: number;
  constructor(message: string, index: number) {
    super(message);
    this.index = index;
  }
}

/** Recursive-descent recogniser for RFC 8259 JSON; builds nothing, only checks and records duplicates. */
class Scanner {
  readonly #text: string;
  #pos = 0;
  readonly duplicates: Array<{ index: number; path: string; key: string }> = [];

  constructor(text: string) {
    this.#text = text;
  }

  document(): void {
    this.#skipSpace();
    this.#value('', 0);
    this.#skipSpace();
    if (this.#pos < this.#text.length) this.#fail('unexpected text after the end of the JSON value');
  }

  #fail(message: string, index = this.#pos): never {
    throw new ScanError(message, index);
  }

  #describeHere(): string {
    if (this.#pos >= this.#text.length) return 'the end of the file';
    return JSON.stringify(this.#text[this.#pos]);
  }

  #skipSpace(): void {
    const text = this.#text;
    while (this.#pos < text.length) {
      const c = text.charCodeAt(this.#pos);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.#pos++;
    }
  }

  #value(path: string, depth: number): void {
    if (depth > MAX_DEPTH) this.#fail(`nested more than ${MAX_DEPTH} levels deep`);
    const c = this.#text[this.#pos];
    if (c === '{') return this.#object(path, depth);
    if (c === '[') return this.#array(path, depth);
    if (c === '"') return void this.#string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.#number();
    for (const literal of ['true', 'false', 'null']) {
      if (this.#text.startsWith(literal, this.#pos)) {
        this.#pos += literal.length;
        return;
      }
    }
    this.#fail(`expected a JSON value, found ${this.#describeHere()}`);
  }

  #object(path: string, depth: number): void {
    this.#pos++; // '{'
    const seen = new Set<string>();
    this.#skipSpace();
    if (this.#text[this.#pos] === '}') {
      this.#pos++;
      return;
    }
    for (;;) {
      this.#skipSpace();
      if (this.#text[this.#pos] !== '"') this.#fail(`expected a double-quoted property name, found ${this.#describeHere()}`);
      const keyIndex = this.#pos;
      const key = this.#string();
      const keyPath = childPath(path, key);
      if (seen.has(key)) this.duplicates.push({ index: keyIndex, path: keyPath, key });
      seen.add(key);
      this.#skipSpace();
      if (this.#text[this.#pos] !== ':') this.#fail(`expected ':' after the property name, found ${this.#describeHere()}`);
      this.#pos++;
      this.#skipSpace();
      this.#value(keyPath, depth + 1);
      this.#skipSpace();
      const next = this.#text[this.#pos];
      if (next === '}') {
        this.#pos++;
        return;
      }
      if (next !== ',') this.#fail(`expected ',' or '}' after a property value, found ${this.#describeHere()}`);
      const comma = this.#pos++;
      this.#skipSpace();
      // The most common hand-edit mistake, worth its own wording, pointing at the comma itself.
      if (this.#text[this.#pos] === '}') this.#fail('trailing comma before \'}\'', comma);
    }
  }

  #array(path: string, depth: number): void {
    this.#pos++; // '['
    this.#skipSpace();
    if (this.#text[this.#pos] === ']') {
      this.#pos++;
      return;
    }
    for (let index = 0; ; index++) {
      this.#skipSpace();
      this.#value(childPath(path, index), depth + 1);
      this.#skipSpace();
      const next = this.#text[this.#pos];
      if (next === ']') {
        this.#pos++;
        return;
      }
      if (next !== ',') this.#fail(`expected ',' or ']' after an array element, found ${this.#describeHere()}`);
      const comma = this.#pos++;
      this.#skipSpace();
      if (this.#text[this.#pos] === ']') this.#fail('trailing comma before \']\'', comma);
    }
  }

  /** Returns the decoded string (keys need it for duplicate detection). */
  #string(): string {
    const start = this.#pos;
    this.#pos++; // opening quote
    const text = this.#text;
    while (this.#pos < text.length) {
      const c = text.charCodeAt(this.#pos);
      if (c === 0x22) {
        this.#pos++;
        return JSON.parse(text.slice(start, this.#pos)) as string;
      }
      if (c < 0x20) this.#fail('control character inside a string (write it as an escape such as \\n)');
      if (c === 0x5c) {
        const escape = text[this.#pos + 1];
        if (escape === 'u') {
          if (!/^[0-9A-Fa-f]{4}$/.test(text.slice(this.#pos + 2, this.#pos + 6))) this.#fail('invalid \\u escape: expected 4 hex digits');
          this.#pos += 6;
          continue;
        }
        if (escape === undefined || !'"\\/bfnrt'.includes(escape)) this.#fail(`invalid escape \\${escape ?? ''} in a string`);
        this.#pos += 2;
        continue;
      }
      this.#pos++;
    }
    this.#fail('unterminated string', start);
  }

  #number(): void {
    const match = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    match.lastIndex = this.#pos;
    const found = match.exec(this.#text);
    if (found === null || found[0] === '-') this.#fail('invalid number');
    this.#pos += found[0].length;
    const next = this.#text[this.#pos];
    if (next !== undefined && /[0-9A-Za-z.+-]/.test(next)) this.#fail(`invalid number: unexpected ${JSON.stringify(next)}`);
  }
}

/** Reads `text` as JSON. A leading UTF-8 byte-order mark (some Windows editors write one) is skipped. */
export function readJsonDocument(text: string): JsonDocument {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const scanner = new Scanner(body);
  try {
    scanner.document();
  } catch (error) {
    if (!(error instanceof ScanError)) throw error;
    const at = lineAndColumn(body, error.index);
    return { ok: false, syntaxError: { ...at, path: null, message: error.message } };
  }
  const duplicates = scanner.duplicates.map((d) => ({
    ...lineAndColumn(body, d.index),
    path: d.path,
    message: `key ${JSON.stringify(d.key)} appears more than once (JSON keeps only the last one)`,
  }));
  return { ok: true, value: JSON.parse(body) as unknown, duplicates };
}
