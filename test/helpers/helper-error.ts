/**
 * Errors thrown by the test helpers. They carry a string `code` (branch on codes, not classes)
 * and are deliberately separate from src/errors.ts: helpers must keep working while the daemon's own
 * error module changes, and a helper failure must never be mistaken for a daemon error in an assertion.
 */
export const HelperErrorCode = {
  /** waitFor() reached its deadline before the probe succeeded. */
  WAIT_TIMEOUT: 'HELPER_WAIT_TIMEOUT',
  /** gearmand exited or never accepted connections while starting. */
  GEARMAND_START: 'HELPER_GEARMAND_START',
  /** The port answered, but with another process's gearmand (or something else). */
  GEARMAND_PORT_TAKEN: 'HELPER_GEARMAND_PORT_TAKEN',
  /** An admin command failed: connection refused, timeout or an unparseable reply. */
  GEARMAND_ADMIN: 'HELPER_GEARMAND_ADMIN',
  /** A multipart body does not follow RFC 7578 framing. */
  MULTIPART: 'HELPER_MULTIPART',
  /** A JSON job body does not have the shape the HTTP contract describes (docs/http-contract.md). */
  JSON_JOB: 'HELPER_JSON_JOB',
} as const;
export type HelperErrorCode = (typeof HelperErrorCode)[keyof typeof HelperErrorCode];

export class HelperError extends Error {
  override name = 'HelperError';
  readonly code: HelperErrorCode;

  constructor(code: HelperErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}
