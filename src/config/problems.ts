/**
 * Problem collection for the JSON config readers: every problem of a file becomes one line,
 * `<file>: <json path>: <what is wrong>`, and all of them are thrown together so an operator fixes a
 * file in one pass instead of one error per restart.
 */
import { childPath, displayPath } from './json-source.js';
import { redactUris } from './redact.js';

const PREVIEW_MAX = 60;

/**
 * A short JSON rendering of an offending value, so one problem stays one readable line. URI passwords
 * are redacted before the cut: a cut could drop the `@` that tells a password from a host.
 */
export function preview(value: unknown): string {
  const text = value === undefined ? 'nothing' : redactUris(JSON.stringify(value));
  return text.length > PREVIEW_MAX ? `${text.slice(0, PREVIEW_MAX - 1)}…` : text;
}

export class Problems {
  readonly #file: string;
  readonly lines: string[] = [];

  constructor(file: string) {
    this.#file = file;
  }

  /** `<file>: <path>: expected <what>, got <value>` — the shape of almost every problem. */
  expected(at: string, what: string, value: unknown): void {
    this.add(at, `expected ${what}, got ${preview(value)}`);
  }

  missing(at: string, what: string): void {
    this.add(at, `missing; expected ${what}`);
  }

  add(at: string, text: string): void {
    this.lines.push(redactUris(`${this.#file}: ${displayPath(at)}: ${text}`));
  }
}

/** Optimal-string-alignment distance: Levenshtein plus adjacent swaps, the commonest typo ("cuont"). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((d[i - 2] as number[])[j - 2] as number) + 1);
      }
      row[j] = best;
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/** The known key closest to `key` within distance 2 (case-insensitive), if any. */
export function suggestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

export interface KeySet {
  required: readonly string[];
  optional: readonly string[];
}

/**
 * Reports unknown and missing keys of `obj`. A missing required key that an unknown key looks like a
 * typo of is not reported again: the "did you mean" line already says everything. `expectations`
 * words what a missing required key should hold.
 */
export function checkKeys(
  obj: Record<string, unknown>,
  at: string,
  keys: KeySet,
  problems: Problems,
  expectations: Readonly<Record<string, string>> = {},
): void {
  const known = [...keys.required, ...keys.optional];
  const explained = new Set<string>();
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const suggestion = suggestKey(key, known);
    if (suggestion !== null) {
      explained.add(suggestion);
      problems.add(childPath(at, key), `unknown key; did you mean ${JSON.stringify(suggestion)}?`);
    } else {
      problems.add(childPath(at, key), `unknown key; expected one of ${known.map((k) => JSON.stringify(k)).join(', ')}`);
    }
  }
  for (const key of keys.required) {
    if (!(key in obj) && !explained.has(key)) problems.missing(childPath(at, key), expectations[key] ?? 'a value');
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An integer JSON number within the safe range (no 1.5, no 1e300). */
export function isSafeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}
