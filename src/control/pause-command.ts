/**
 * `driveshaft pause`, `resume` and `drain`: one exchange with the running daemon's status port (its line
 * protocol, docs/observability.md: one command line, one answer, then the daemon closes). The words
 * are quoted as the port reads them (src/observe/status-words.ts), so any pool or function name works.
 *
 * Exit status: 0 the daemon answered `OK …` (printed on stdout); 1 it answered `Error: …` (printed on
 * stderr); 2 bad options, or no answer (nothing listens, the connection failed, the timeout passed, or
 * the daemon answered something else: an older one does not know the command).
 */
import net from 'node:net';
import { formatListenAddress } from '../config/listen-address.js';
import { serializeError } from '../errors.js';
import { quoteWord } from '../observe/status-words.js';
import { parseControlCommandLine } from './pause-options.js';
import type { ControlCommand, ControlOptions } from './pause-options.js';

export const CONTROL_EXIT_OK = 0;
export const CONTROL_EXIT_REFUSED = 1;
export const CONTROL_EXIT_USAGE = 2;

export interface ControlOutput {
  out(line: string): void;
  err(line: string): void;
}

const processOutput = (command: string): ControlOutput => ({
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`driveshaft ${command}: ${line}\n`),
});

/** Runs `driveshaft <command> …`; resolves with the exit status. Never throws. */
export async function controlMain(command: ControlCommand, argv: readonly string[], env: NodeJS.ProcessEnv = process.env, output: ControlOutput = processOutput(command)): Promise<number> {
  let options: ControlOptions;
  try {
    const parsed = parseControlCommandLine(command, argv, env);
    if (parsed.kind === 'help') {
      output.out(parsed.text.trimEnd());
      return CONTROL_EXIT_OK;
    }
    options = parsed.options;
  } catch (error) {
    output.err(serializeError(error).message);
    return CONTROL_EXIT_USAGE;
  }
  const where = formatListenAddress(options);
  const line = [options.command, options.pool, ...(options.functionName === null ? [] : [options.functionName])].map(quoteWord).join(' ');
  let reply: string;
  try {
    reply = await exchange(options, `${line}\n`);
  } catch (error) {
    output.err(`no answer from the status port ${where}: ${(error as Error).message}`);
    return CONTROL_EXIT_USAGE;
  }
  const answer = reply.replace(/\r?\n$/, '');
  if (answer.startsWith('OK')) {
    output.out(answer);
    return CONTROL_EXIT_OK;
  }
  if (answer.startsWith('Error: unrecognized command')) {
    output.err(`the daemon at ${where} does not know ${options.command} (${answer}): is it an older driveshaft?`);
    return CONTROL_EXIT_USAGE;
  }
  if (answer.startsWith('Error:')) {
    output.err(answer);
    return CONTROL_EXIT_REFUSED;
  }
  output.err(`unexpected answer from the status port ${where}: ${JSON.stringify(answer.slice(0, 200))}`);
  return CONTROL_EXIT_USAGE;
}

/** Sends `text`, returns everything until the daemon closes. Rejects on a connection error or the timeout. */
function exchange(options: ControlOptions, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(options.port, options.host);
    let reply = '';
    let timer: NodeJS.Timeout | null = null;
    const fail = (error: Error): void => {
      if (timer !== null) clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    if (options.timeoutMs !== null) {
      const ms = options.timeoutMs;
      timer = setTimeout(() => fail(new Error(`no answer within ${ms / 1000} s (the daemon may still carry the command out)`)), ms);
    }
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (reply += chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => fail(new Error(error.code === 'ECONNREFUSED' ? `connection refused (is the daemon running with --status_port ${options.port}?)` : (error.code ?? error.message))));
    socket.on('end', () => {
      if (timer !== null) clearTimeout(timer);
      socket.end();
      resolve(reply);
    });
    socket.on('connect', () => socket.write(text));
  });
}
