/**
 * The words of a status port command line (`pause Regular Resize`): separated by spaces or tabs; a word
 * that holds a space, a quote or anything outside printable ASCII is written as a JSON string
 * (`pause Regular "Resize image"`), since pool and function names may hold any of those. `driveshaft
 * pause` writes its words with quoteWord, and splitWords reads them back.
 */

/** The words of `line` (its bytes read as UTF-8), or a one-line problem when a quoted word is malformed. */
export function splitWords(line: string): string[] | { problem: string } {
  // The status port reads latin1 (one char per byte): names typed in UTF-8 come back whole here.
  const text = Buffer.from(line, 'latin1').toString('utf8');
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const next = text[end + 1];
      if (end >= text.length || (next !== undefined && next !== ' ' && next !== '\t')) return { problem: `unterminated quoted word at character ${i + 1}` };
      try {
        words.push(JSON.parse(text.slice(i, end + 1)) as string);
      } catch {
        return { problem: `malformed quoted word at character ${i + 1} (a JSON string is expected)` };
      }
      i = end + 1;
      continue;
    }
    let end = i;
    while (end < text.length && text[end] !== ' ' && text[end] !== '\t') end++;
    words.push(text.slice(i, end));
    i = end;
  }
  return words;
}

/** `word` as splitWords reads it back: bare when it is plain printable ASCII, else a JSON string in ASCII. */
export function quoteWord(word: string): string {
  if (/^[!#-~][!-~]*$/.test(word)) return word;
  return JSON.stringify(word).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
