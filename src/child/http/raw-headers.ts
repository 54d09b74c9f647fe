/**
 * Reading one header from the HTTP client's raw response headers (a flat [name, value, …] list of Buffers)
 * without building the parsed object: the job runner needs at most one or two per response.
 */

/** The value of the first header called `lowerName` (lower-case ASCII), as latin1 text; null if absent. */
export function rawHeaderValue(rawHeaders: readonly Buffer[], lowerName: Buffer): string | null {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as Buffer;
    // Most headers are skipped on their length alone.
    if (name.length === lowerName.length && sameLetters(name, lowerName)) return (rawHeaders[i + 1] as Buffer).toString('latin1');
  }
  return null;
}

/**
 * `name` equals `lowerName` in any letter case, compared in place. ASCII letters differ from their
 * lower case by the 0x20 bit; '-' (0x2d) and digits have it set already, and a header name (a token)
 * holds no byte that only the OR would turn into one of them.
 */
function sameLetters(name: Buffer, lowerName: Buffer): boolean {
  for (let i = 0; i < lowerName.length; i++) {
    if (((name[i] as number) | 0x20) !== lowerName[i]) return false;
  }
  return true;
}
