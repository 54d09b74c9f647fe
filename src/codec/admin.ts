/**
 * gearmand's text admin protocol, spoken on the same port when a connection's first byte is not NUL.
 * List replies (`status`, `workers`) end with a line holding a single `.`; others are one line.
 */
import { AdminReplyError } from '../errors.js';

export interface AdminFunctionStatus {
  function: string;
  /** Jobs queued or running. */
  total: number;
  running: number;
  availableWorkers: number;
}

export interface AdminWorker {
  fd: number;
  ip: string;
  clientId: string;
  functions: string[];
}

/** Commands whose reply is a list closed by a "." line. */
const LIST_COMMANDS: ReadonlySet<string> = new Set(['status', 'workers', 'show', 'prioritystatus']);

/** Whether `command`'s reply ends with a "." line rather than after its first line. */
export function isListCommand(command: string): boolean {
  const word = command.trim().split(/\s+/, 1)[0] ?? '';
  return LIST_COMMANDS.has(word);
}

/** A list's closing line: "." alone. gearmand 1.1.20 ends list lines with LF, ERR and OK lines with CRLF. */
const LIST_END = /(?:^|\n)\.\r?\n/;

/**
 * Whether a reply's complete first line is gearmand's error reply (`ERR CODE TEXT`) rather than the
 * first line of a list: a `status` line for a function named "ERR x" has tabs, an error line has none,
 * and `workers` lines start with a file descriptor.
 */
function isErrorLine(line: string): boolean {
  return line.startsWith('ERR ') && !line.includes('\t');
}

/**
 * The length of the first complete reply at the start of `text` (a string accumulated from the
 * socket), or -1 while it is incomplete.
 */
export function adminReplyLength(text: string, listReply: boolean): number {
  const newline = text.indexOf('\n');
  if (newline === -1) return -1;
  if (!listReply || isErrorLine(text.slice(0, newline))) return newline + 1;
  const end = LIST_END.exec(text);
  return end === null ? -1 : end.index + end[0].length;
}

function listLines(reply: string): string[] {
  const lines = reply.split('\n').map((line) => line.replace(/\r$/, ''));
  // Before looking for the ".": an error reply has none, and "missing its closing line" would hide why.
  if (lines[0] !== undefined && isErrorLine(lines[0])) throw new AdminReplyError(`gearmand answered ${lines[0]}`);
  const dot = lines.indexOf('.');
  if (dot === -1) throw new AdminReplyError(`admin reply is missing its closing "." line: ${JSON.stringify(reply.slice(0, 80))}`);
  return lines.slice(0, dot);
}

function toCount(value: string | undefined, line: string): number {
  if (value === undefined || !/^\d+$/.test(value)) {
    throw new AdminReplyError(`admin reply line has a non-numeric field: ${JSON.stringify(line)}`);
  }
  return Number(value);
}

/**
 * `status`: FUNCTION\tTOTAL\tRUNNING\tAVAILABLE_WORKERS lines. The counters are the last three fields,
 * so a function name holding a tab still parses.
 */
export function parseAdminStatus(reply: string): AdminFunctionStatus[] {
  return listLines(reply).map((line) => {
    const fields = line.split('\t');
    if (fields.length < 4) throw new AdminReplyError(`admin status line does not have 4 fields: ${JSON.stringify(line)}`);
    const counts = fields.length - 3;
    return {
      function: fields.slice(0, counts).join('\t'),
      total: toCount(fields[counts], line),
      running: toCount(fields[counts + 1], line),
      availableWorkers: toCount(fields[counts + 2], line),
    };
  });
}

/**
 * `workers`: `FD IP CLIENT-ID : FUNCTION …` lines; CLIENT-ID is `-` when unset, and with no functions
 * the line ends at the colon. FD and IP are the first two space-separated fields: the IP is not
 * searched for " :", because gearmand prints IPv6 peers as "::…" (1.1.20 even prints garbage starting
 * with "::" for them), which the first " :" would mistake for the end of the client id. Function names
 * holding spaces cannot be told apart in this format and come back split.
 */
export function parseAdminWorkers(reply: string): AdminWorker[] {
  return listLines(reply).map((line) => {
    const match = /^(\d+) (\S+) (.*?) ?:(?: (.*))?$/.exec(line);
    if (match === null) throw new AdminReplyError(`admin workers line is not "FD IP CLIENT-ID : FUNCTION…": ${JSON.stringify(line)}`);
    const functions = (match[4] ?? '').split(' ').filter((name) => name !== '');
    return {
      fd: toCount(match[1], line),
      ip: match[2] as string,
      clientId: match[3] as string,
      functions,
    };
  });
}

/** `version`: `OK <version>`. */
export function parseAdminVersion(reply: string): string {
  const line = reply.split('\n', 1)[0]?.replace(/\r$/, '') ?? '';
  if (!line.startsWith('OK ')) throw new AdminReplyError(`admin version reply is not "OK <version>": ${JSON.stringify(line)}`);
  return line.slice(3);
}
