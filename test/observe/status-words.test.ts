import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quoteWord, splitWords } from '../../src/observe/status-words.js';

/** What the status port's latin1 reading makes of a line sent as UTF-8. */
function asReceived(line: string): string {
  return Buffer.from(line, 'utf8').toString('latin1');
}

test('splitWords should split at spaces and tabs and read JSON-quoted words whole', () => {
  assert.deepEqual(splitWords('pause  Regular\tResize'), ['pause', 'Regular', 'Resize']);
  assert.deepEqual(splitWords('pause "Regular pool" "say \\"hi\\"\\t"'), ['pause', 'Regular pool', 'say "hi"\t']);
  assert.deepEqual(splitWords('pause a"b'), ['pause', 'a"b']);
  assert.deepEqual(splitWords(''), []);
});

test('splitWords should read words typed in UTF-8 from the latin1 line', () => {
  assert.deepEqual(splitWords(asReceived('pause Größe "Bild ändern"')), ['pause', 'Größe', 'Bild ändern']);
});

test('splitWords should name a malformed quoted word', () => {
  assert.deepEqual(splitWords('pause "Regular'), { problem: 'unterminated quoted word at character 7' });
  assert.deepEqual(splitWords('pause "a"b'), { problem: 'unterminated quoted word at character 7' });
  assert.deepEqual(splitWords('pause "\\x"'), { problem: 'malformed quoted word at character 7 (a JSON string is expected)' });
});

test('quoteWord should round-trip any name through splitWords, in ASCII', () => {
  for (const name of ['Regular', 'a b', '"quoted"', 'tab\there', 'Größe', '__proto__', '', 'emoji 🚀', 'a"b', '\\']) {
    const quoted = quoteWord(name);
    assert.match(quoted, /^[\x20-\x7e]+$/, `${JSON.stringify(name)} quoted in printable ASCII`);
    assert.deepEqual(splitWords(`pause ${quoted}`), ['pause', name], JSON.stringify(name));
  }
  assert.equal(quoteWord('Regular'), 'Regular');
});
