import { test } from 'node:test';
import assert from 'node:assert/strict';
import { childPath, lineAndColumn, readJsonDocument } from '../../src/config/json-source.js';

function syntaxError(text: string): { line: number; column: number; message: string } {
  const document = readJsonDocument(text);
  assert.equal(document.ok, false, text);
  const { line, column, message } = (document as { syntaxError: { line: number; column: number; message: string } }).syntaxError;
  return { line, column, message };
}

test('readJsonDocument should give the same value as JSON.parse for valid JSON', () => {
  const samples = ['{}', '[]', '0', '-1.5e+3', '"a\\u00e9\\n"', 'true', 'null', ' {"a": [1, {"b": false}], "c": "d"} ', '{"":1}'];
  for (const text of samples) {
    const document = readJsonDocument(text);
    assert.equal(document.ok, true, text);
    assert.deepEqual((document as { value: unknown }).value, JSON.parse(text));
  }
});

test('readJsonDocument should locate syntax errors by line and column', () => {
  assert.deepEqual(syntaxError('{\n  "a": 1\n  "b": 2\n}'), { line: 3, column: 3, message: "expected ',' or '}' after a property value, found \"\\\"\"" });
  assert.deepEqual(syntaxError('[1,\n]'), { line: 1, column: 3, message: "trailing comma before ']'" });
  assert.deepEqual(syntaxError("{'a': 1}"), { line: 1, column: 2, message: 'expected a double-quoted property name, found "\'"' });
  assert.deepEqual(syntaxError('{"a" 1}'), { line: 1, column: 6, message: "expected ':' after the property name, found \"1\"" });
  assert.deepEqual(syntaxError('{"a": tru}'), { line: 1, column: 7, message: 'expected a JSON value, found "t"' });
  assert.deepEqual(syntaxError('{"a": "b\nc"}'), { line: 1, column: 9, message: 'control character inside a string (write it as an escape such as \\n)' });
  assert.deepEqual(syntaxError('"abc'), { line: 1, column: 1, message: 'unterminated string' });
  assert.deepEqual(syntaxError('"\\x"'), { line: 1, column: 2, message: 'invalid escape \\x in a string' });
  assert.deepEqual(syntaxError('01'), { line: 1, column: 2, message: 'invalid number: unexpected "1"' });
  assert.deepEqual(syntaxError('-'), { line: 1, column: 1, message: 'invalid number' });
  assert.deepEqual(syntaxError('{} x'), { line: 1, column: 4, message: 'unexpected text after the end of the JSON value' });
});

test('readJsonDocument should refuse absurd nesting instead of overflowing the stack', () => {
  assert.match(syntaxError('['.repeat(100_000)).message, /nested more than 256 levels deep/);
});

test('readJsonDocument should report every duplicate key with its path', () => {
  const document = readJsonDocument('{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}');
  assert.equal(document.ok, true);
  const duplicates = (document as { duplicates: Array<{ path: string | null; line: number; column: number }> }).duplicates;
  assert.deepEqual(
    duplicates.map((d) => [d.path, d.line, d.column]),
    [
      ['b.c', 1, 24],
      ['a', 1, 33],
    ],
  );
});

test('readJsonDocument should never throw on random input', () => {
  const alphabet = '{}[]",:0123456789.-+eEtrufalsn \n\\u';
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < 2000; i++) {
    let text = '';
    const length = Math.floor(random() * 30);
    for (let j = 0; j < length; j++) text += alphabet[Math.floor(random() * alphabet.length)];
    const document = readJsonDocument(text);
    let parses = true;
    try {
      JSON.parse(text);
    } catch {
      parses = false;
    }
    assert.equal(document.ok, parses, JSON.stringify(text));
  }
});

test('childPath should bracket keys that are not identifiers', () => {
  assert.equal(childPath('', 'pools_list'), 'pools_list');
  assert.equal(childPath('pools_list', 'Regular'), 'pools_list.Regular');
  assert.equal(childPath('pools_list', 'my pool'), 'pools_list["my pool"]');
  assert.equal(childPath('jobs_list', 2), 'jobs_list[2]');
  assert.deepEqual(lineAndColumn('ab\ncd', 4), { line: 2, column: 2 });
});
