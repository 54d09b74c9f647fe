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

/**
 * The length of the first complete reply at the start of `text` (a string accumulated from the
 * socket), or -1 while it is incomplete.
 */
export function adminReplyLength(text: string, listReply: boolean): number {
  if (!listReply || text.startsWith('ERR')) {
    const newline = text.indexOf('\n');
    return newline === -1 ? -1 : newline + 1;
  }
  if (text.startsWith('.\n')) return 2;
  const end = text.indexOf('\n.\n');
  return end === -1 ? -1 : end + 3;
}

function listLines(reply: string): string[] {
  const lines = reply.split('\n').map((line) => line.replace(/\r$/, ''));
  const dot = lines.indexOf('.');
  if (dot === -1) throw new AdminReplyError(`admin reply is missing its closing "." line: ${JSON.stringify(reply.slice(0, 80))}`);
  if (lines[0]?.startsWith('ERR')) throw new AdminReplyError(`gearmand answered ${lines[0]}`);
  return lines.slice(0, dot);
}

function toCount(value: string | undefined, line: string): number {
  if (value === undefined || !/^\d+$/.test(value)) {
    throw new AdminReplyError(`admin status line has a non-numeric field: ${JSON.stringify(line)}`);
  }
  return Number(value);
}

/** `status`: FUNCTION\tTOTAL\tRUNNING\tAVAILABLE_WORKERS lines. */
export function parseAdminStatus(reply: string): AdminFunctionStatus[] {
  return listLines(reply).map((line) => {
    const fields = line.split('\t');
    if (fields.length !== 4) throw new AdminReplyError(`admin status line does not have 4 fields: ${JSON.stringify(line)}`);
    return {
      function: fields[0] as string,
      total: toCount(fields[1], line),
      running: toCount(fields[2], line),
      availableWorkers: toCount(fields[3], line),
    };
  });
}

/** `workers`: `FD IP-ADDRESS CLIENT-ID : FUNCTION …` lines (CLIENT-ID is `-` when unset). */
export function parseAdminWorkers(reply: string): AdminWorker[] {
  return listLines(reply).map((line) => {
    const colon = line.indexOf(' :');
    if (colon === -1) throw new AdminReplyError(`admin workers line has no " :": ${JSON.stringify(line)}`);
    const head = line.slice(0, colon).split(' ');
    if (head.length < 3) throw new AdminReplyError(`admin workers line is too short: ${JSON.stringify(line)}`);
    const functions = line.slice(colon + 2).trim();
    return {
      fd: toCount(head[0], line),
      ip: head[1] as string,
      clientId: head.slice(2).join(' '),
      functions: functions === '' ? [] : functions.split(' '),
    };
  });
}

/** `version`: `OK <version>`. */
export function parseAdminVersion(reply: string): string {
  const line = reply.split('\n', 1)[0]?.replace(/\r$/, '') ?? '';
  if (!line.startsWith('OK ')) throw new AdminReplyError(`admin version reply is not "OK <version>": ${JSON.stringify(line)}`);
  return line.slice(3);
}
