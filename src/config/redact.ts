/**
 * The one redaction rule (docs/security.md, What driveshaft never shows): text driveshaft writes for a
 * person (a config problem, a log record, `--check`, the status port, /status, /metrics, the status
 * page) never carries a URI's password or a secret's value.
 *
 * - A URI's password becomes `***`: `https://user:***@host/`. The user name stays, because it tells the
 *   operator which credentials are meant; a URI with a user and no password keeps it.
 * - A URI here is a word (no white space, `"`, `<`, `>` or backtick: RFC 3986 has them percent-encoded
 *   in a URI, so they end it) that starts with a scheme and `//`
 *   (`ftp://`, `redis://`), or with `http:`/`https:`/`ws:`/`wss:`/`ftp:`/`file:` alone, which WHATWG URL
 *   parsers accept without slashes. Its userinfo ends at the last `@` of its authority; when the word does
 *   not parse as a URL (a password with a `/` in it breaks the parse), at the last `@` of the word, so
 *   what may be a password is hidden even in a URI that is wrong.
 * - Secrets read from files or variables (signing secrets, bearer tokens, keys) are never formatted into
 *   text at all; values of credential headers written inline (`authorization`, `cookie`, API keys) are
 *   described by their type only.
 *
 * Pure functions on strings, no imports: config readers use them before a value is cut short for a
 * preview (a cut may drop the `@` that marks a password), and the sinks apply them again to whole lines.
 */

export const REDACTED = '***';

/** A scheme at a word start, then the rest of the word, when the word holds an `@` at all. */
const URI_WORD = /(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*:[^\s"<>`]*@[^\s"<>`]*/g;
/** Schemes a WHATWG parser treats as "special": they take `http:host` and `http:\\host` too. */
const SPECIAL_SCHEMES = new Set(['http', 'https', 'ws', 'wss', 'ftp', 'file']);

/** `word` with its password replaced, or unchanged when it carries none. */
function redactWord(word: string): string {
  const colon = word.indexOf(':');
  const scheme = word.slice(0, colon).toLowerCase();
  let start = colon + 1;
  while (word[start] === '/' || word[start] === '\\') start++;
  const slashes = start - colon - 1;
  if (slashes < 2 && !SPECIAL_SCHEMES.has(scheme)) return word;
  let end: number;
  const url = URL.canParse(word) ? new URL(word) : null;
  if (url !== null && url.host !== '') {
    if (url.password === '') return word;
    // The authority runs to the first / ? # (or \ in a special scheme); its userinfo to its last @.
    let authorityEnd = start;
    while (authorityEnd < word.length && !'/?#'.includes(word[authorityEnd] as string) && !(word[authorityEnd] === '\\' && SPECIAL_SCHEMES.has(scheme))) authorityEnd++;
    end = word.lastIndexOf('@', authorityEnd - 1);
  } else {
    end = word.lastIndexOf('@');
  }
  if (end < start) return word;
  const separator = word.indexOf(':', start);
  if (separator === -1 || separator >= end) return word;
  return `${word.slice(0, separator + 1)}${REDACTED}${word.slice(end)}`;
}

/** `text` with the password of every URI in it replaced by `***` (see the module comment). */
export function redactUris(text: string): string {
  // Most text has no `@`: one scan and no regular expression.
  if (!text.includes('@')) return text;
  return text.replace(URI_WORD, redactWord);
}

/** Header names whose value is a credential when written inline in the jobs config. */
const CREDENTIAL_HEADER = /^(?:authorization|proxy-authorization|cookie)$|token|secret|api-?key|password/i;

export function isCredentialHeaderName(name: string): boolean {
  return CREDENTIAL_HEADER.test(name);
}

/** What a problem line says instead of a value that may be a secret: its type, never its content. */
export function describeWithoutValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array (not shown: it may be a secret)';
  if (typeof value === 'string') return `a string of ${value.length} characters (not shown: it may be a secret)`;
  return `${typeof value === 'object' ? 'an object' : `a ${typeof value}`} (not shown: it may be a secret)`;
}
