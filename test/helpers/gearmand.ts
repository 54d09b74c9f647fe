import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from './free-port.js';
import { HelperError, HelperErrorCode } from './helper-error.js';
import { buildPacket, T } from './packet-builder.js';

/** One line of the admin `workers` reply: `FD IP CLIENT-ID : FUNCTION …`. */
export interface GearmandWorker {
  fd: string;
  ip: string;
  /** As gearmand prints it: `-` when the connection never sent SET_CLIENT_ID, `` when it sent an empty one. */
  clientId: string;
  /** In gearmand's order, which is the reverse of registration in 1.1.20. */
  functions: string[];
}

/** One line of the admin `status` reply: `FUNCTION\tTOTAL\tRUNNING\tAVAILABLE_WORKERS`. */
export interface GearmandFunctionStatus {
  function: string;
  /** Jobs queued plus running. */
  total: number;
  running: number;
  availableWorkers: number;
}

export interface Gearmand {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** "127.0.0.1:port", the form a jobs config's gearman_servers_list takes. */
  readonly label: string;
  /** Pid of the current gearmand process (changes on restart()). */
  readonly pid: number;
  /** SIGTERM, SIGKILL after 5 s; resolves once gearmand has exited. Idempotent. */
  stop(): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL, i.e. a crash). Resolves once gearmand has exited, except for
   * signals gearmand 1.1.20 survives (SIGSTOP, SIGCONT, SIGHUP which reopens its log, SIGQUIT which it
   * ignores, …): those resolve right after delivery, so `kill('SIGSTOP')` freezes a server for a test.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops gearmand if it runs and starts a fresh one on the same port; resolves once it accepts. */
  restart(): Promise<void>;
  /**
   * Sends one admin text command on a fresh connection and returns the raw reply (line ends included).
   * List commands (status, workers, show jobs, show unique jobs, prioritystatus) read up to the line ".",
   * others one line. The connection identifies itself with SET_CLIENT_ID ADMIN_CLIENT_ID first.
   */
  admin(command: string): Promise<string>;
  /** Parsed `workers`, without the helper's own admin connection. */
  workers(): Promise<GearmandWorker[]>;
  /** Parsed `status`. */
  status(): Promise<GearmandFunctionStatus[]>;
}

export interface StartGearmandOptions {
  /** Fixed port; by default a free one is picked (and re-picked if another process takes it first). */
  port?: number;
  /** Extra gearmand arguments, e.g. ['--job-retries', '2']. They may override --threads, --log-file, --pid-file. */
  extraArgs?: string[];
}

/** The client id every admin() connection sets, so workers() can leave the helper's own connection out. */
export const ADMIN_CLIENT_ID = 'driveshaft-test-admin';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;
const READY_POLL_MS = 20;
const STOP_GRACE_MS = 5_000;
const KILL_WAIT_MS = 10_000;
const ADMIN_TIMEOUT_MS = 5_000;
const OUTPUT_TAIL_BYTES = 16 * 1024;
const START_ATTEMPTS = 3;

const LIST_COMMANDS = new Set(['status', 'workers', 'show jobs', 'show unique jobs', 'prioritystatus']);

/** Signals after which gearmand 1.1.20 keeps running (checked by hand: HUP reopens the log, QUIT is ignored). */
const SURVIVABLE_SIGNALS = new Set<NodeJS.Signals>([
  'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGCONT', 'SIGHUP', 'SIGQUIT', 'SIGWINCH', 'SIGCHLD', 'SIGURG', 'SIGPIPE',
]);

/**
 * Defaults that keep each instance hermetic: `--threads 0` runs the I/O in the main thread (1.1.20's help
 * text says "guess", but 0 starts no I/O threads), errors go to stderr so a failed start can be reported,
 * no pid file (the default /var/gearmand.pid would be shared by every instance), and no /etc/gearmand.conf.
 */
const DEFAULT_OPTIONS: ReadonlyArray<{ long: string; short?: string; value: string }> = [
  { long: '--threads', short: '-t', value: '0' },
  { long: '--log-file', short: '-l', value: 'stderr' },
  { long: '--pid-file', short: '-P', value: '' },
  { long: '--config-file', value: '/dev/null' },
];

function gearmandBinary(): string {
  const fromEnv = process.env['GEARMAND_BIN'];
  if (fromEnv) return fromEnv;
  // /usr/sbin is not on a non-root PATH on Debian.
  return existsSync('/usr/sbin/gearmand') ? '/usr/sbin/gearmand' : 'gearmand';
}

function gearmandArgs(port: number, extraArgs: readonly string[]): string[] {
  const mentions = (flag: string): boolean =>
    extraArgs.some((arg) => arg === flag || arg.startsWith(`${flag}=`) || (flag.length === 2 && arg.startsWith(flag)));
  const args = ['--listen', HOST, '--port', String(port)];
  for (const option of DEFAULT_OPTIONS) {
    if (mentions(option.long) || (option.short !== undefined && mentions(option.short))) continue;
    args.push(option.long, option.value);
  }
  return [...args, ...extraArgs];
}

// Every gearmand this process started and that has not exited yet. Killed synchronously on exit so a
// test that forgets stop(), or fails half-way, never leaves a server behind.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function killAllChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone; nothing else to do at exit time.
    }
  }
  liveChildren.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllChildren();
      // Listening disabled the default action; if nobody else handles the signal, restore it and re-raise
      // so the test process still dies the way it would have without this hook.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

class GearmandProcess implements Gearmand {
  readonly host = HOST;
  readonly #port: number;
  readonly #binary: string;
  readonly #args: string[];
  #child: ChildProcess | undefined;
  #pid = 0;
  #exited: Promise<Exit> = Promise.resolve({ code: null, signal: null });
  #running = false;
  #output: Buffer[] = [];
  #outputBytes = 0;
  #stopping: Promise<void> | undefined;

  constructor(port: number, extraArgs: readonly string[]) {
    this.#port = port;
    this.#binary = gearmandBinary();
    this.#args = gearmandArgs(port, extraArgs);
  }

  get port(): number {
    return this.#port;
  }

  get label(): string {
    return `${HOST}:${this.#port}`;
  }

  get pid(): number {
    return this.#pid;
  }

  /** Spawns gearmand and resolves once this very process answers on the port. */
  async start(): Promise<void> {
    installExitHook();
    this.#output = [];
    this.#outputBytes = 0;
    const child = spawn(this.#binary, this.#args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#running = true;
    liveChildren.add(child);
    this.#exited = new Promise<Exit>((resolve) => {
      const done = (exit: Exit): void => {
        this.#running = false;
        liveChildren.delete(child);
        resolve(exit);
      };
      child.once('exit', (code, signal) => done({ code, signal }));
      // spawn failures (ENOENT) emit 'error' and may never emit 'exit'.
      child.once('error', (error) => done({ code: null, signal: null, error }));
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on('data', (chunk: Buffer) => this.#record(chunk));
    }
    // The test process must be able to exit while a gearmand still runs (the exit hook kills it), so
    // neither the child nor its pipes keep the event loop alive. Waits below hold their own timers.
    child.unref();
    for (const stream of [child.stdout, child.stderr]) unrefStream(stream);

    this.#pid = child.pid ?? 0;
    await this.#waitUntilReady(child);
  }

  async #waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError: unknown;
    for (;;) {
      if (!this.#running) {
        const exit = await this.#exited;
        throw new HelperError(
          HelperErrorCode.GEARMAND_START,
          `gearmand on ${this.label} ${describeExit(exit)} before accepting connections` +
            ` (${this.#binary} ${this.#args.join(' ')}); output: ${this.#outputText() || '<none>'}`,
          exit.error === undefined ? {} : { cause: exit.error },
        );
      }
      let reply: string | undefined;
      try {
        reply = await adminCommand(this.#port, 'getpid', 1_000);
      } catch (err) {
        lastError = err;
      }
      if (reply !== undefined) {
        const match = /^OK (\d+)/.exec(reply);
        if (match !== null && Number(match[1]) === child.pid) return;
        // gearmand 1.1.20 retries bind() for ~20 s when the port is taken, so "the port accepts" is not
        // proof: the answer must come from our own pid.
        await this.#terminate('SIGKILL');
        throw new HelperError(
          HelperErrorCode.GEARMAND_PORT_TAKEN,
          `port ${this.#port} is served by another process (getpid said ${JSON.stringify(reply.trim())}, ours is ${child.pid})`,
        );
      }
      if (Date.now() >= deadline) {
        await this.#terminate('SIGKILL');
        throw new HelperError(
          HelperErrorCode.GEARMAND_START,
          `gearmand on ${this.label} did not accept connections within ${READY_TIMEOUT_MS} ms;` +
            ` output: ${this.#outputText() || '<none>'}`,
          { cause: lastError },
        );
      }
      await delay(READY_POLL_MS);
    }
  }

  stop(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    this.#stopping ??= this.#terminate('SIGTERM').finally(() => {
      this.#stopping = undefined;
    });
    return this.#stopping;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.#running) return;
    child.kill(signal);
    if (SURVIVABLE_SIGNALS.has(signal)) return;
    const exited = await raceTimeout(this.#exited, KILL_WAIT_MS);
    if (!exited) {
      throw new HelperError(
        HelperErrorCode.GEARMAND_ADMIN,
        `gearmand ${child.pid} on ${this.label} still runs ${KILL_WAIT_MS} ms after ${signal}`,
      );
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  admin(command: string): Promise<string> {
    return adminCommand(this.#port, command, ADMIN_TIMEOUT_MS);
  }

  async workers(): Promise<GearmandWorker[]> {
    return parseWorkers(await this.admin('workers')).filter((worker) => worker.clientId !== ADMIN_CLIENT_ID);
  }

  async status(): Promise<GearmandFunctionStatus[]> {
    return parseStatus(await this.admin('status'));
  }

  /** Sends `signal`, escalates to SIGKILL after STOP_GRACE_MS, resolves on exit. */
  async #terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.#running) return;
    child.kill(signal);
    // A server frozen with kill('SIGSTOP') would hold SIGTERM pending forever.
    if (signal !== 'SIGKILL') child.kill('SIGCONT');
    // This timer also keeps the event loop alive while we wait on the unref'd child.
    const escalate = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    try {
      await this.#exited;
    } finally {
      clearTimeout(escalate);
    }
  }

  #record(chunk: Buffer): void {
    this.#output.push(chunk);
    this.#outputBytes += chunk.length;
    while (this.#outputBytes > OUTPUT_TAIL_BYTES && this.#output.length > 1) {
      this.#outputBytes -= this.#output.shift()!.length;
    }
  }

  #outputText(): string {
    return Buffer.concat(this.#output).toString('utf8').trim();
  }
}

/**
 * Starts a gearmand of its own for a test on 127.0.0.1 (a free port unless one is given) and resolves
 * once it answers admin commands. Always pair with `t.after(() => gearmand.stop())`.
 */
export async function startGearmand(options: StartGearmandOptions = {}): Promise<Gearmand> {
  const attempts = options.port === undefined ? START_ATTEMPTS : 1;
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort());
    const gearmand = new GearmandProcess(port, options.extraArgs ?? []);
    try {
      await gearmand.start();
      return gearmand;
    } catch (err) {
      // freePort() only says the port was free a moment ago; another test may have taken it since.
      const clash =
        err instanceof HelperError &&
        (err.code === HelperErrorCode.GEARMAND_PORT_TAKEN || /bind\(\)/.test(err.message));
      if (!clash || attempt >= attempts) throw err;
    }
  }
}

/**
 * Parses the admin `workers` reply. gearmand 1.1.20 prints `FD IP CLIENT-ID :` then ` FUNCTION` per
 * function, so a client id containing " :" or a function name containing a space cannot be told apart;
 * the first " :" ends the client id.
 */
export function parseWorkers(reply: string): GearmandWorker[] {
  return listLines(reply, 'workers').map((line) => {
    const match = /^(\S+) (\S+) (.*?) :(.*)$/.exec(line);
    if (match === null) {
      throw new HelperError(HelperErrorCode.GEARMAND_ADMIN, `unparseable workers line ${JSON.stringify(line)}`);
    }
    const [, fd, ip, clientId, rest] = match as unknown as [string, string, string, string, string];
    return { fd, ip, clientId, functions: rest.split(' ').filter((name) => name !== '') };
  });
}

/** Parses the admin `status` reply; the three counters are the last three tab-separated fields. */
export function parseStatus(reply: string): GearmandFunctionStatus[] {
  return listLines(reply, 'status').map((line) => {
    const fields = line.split('\t');
    const counts = fields.slice(-3).map((field) => (/^\d+$/.test(field) ? Number(field) : NaN));
    if (fields.length < 4 || counts.some(Number.isNaN)) {
      throw new HelperError(HelperErrorCode.GEARMAND_ADMIN, `unparseable status line ${JSON.stringify(line)}`);
    }
    const [total, running, availableWorkers] = counts as [number, number, number];
    return { function: fields.slice(0, -3).join('\t'), total, running, availableWorkers };
  });
}

function listLines(reply: string, command: string): string[] {
  const lines = reply.split(/\r?\n/);
  const end = lines.indexOf('.');
  if (end === -1) {
    throw new HelperError(
      HelperErrorCode.GEARMAND_ADMIN,
      `admin ${command} reply has no terminating "." line: ${JSON.stringify(reply)}`,
    );
  }
  return lines.slice(0, end);
}

function isListCommand(command: string): boolean {
  return LIST_COMMANDS.has(command.trim().toLowerCase().replace(/\s+/g, ' '));
}

function isComplete(text: string, list: boolean): boolean {
  if (!list || text.startsWith('ERR ')) return text.includes('\n');
  return text === '.\n' || text === '.\r\n' || /\r?\n\.\r?\n$/.test(text);
}

/** One admin command on its own connection, to any server on 127.0.0.1 that speaks the text protocol (the Perl one too); see Gearmand.admin. */
export function adminCommand(port: number, command: string, timeoutMs: number): Promise<string> {
  if (/[\r\n]/.test(command)) {
    return Promise.reject(
      new HelperError(HelperErrorCode.GEARMAND_ADMIN, `admin command must be one line: ${JSON.stringify(command)}`),
    );
  }
  const list = isListCommand(command);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = connect({ host: HOST, port });
    const finish = (err: Error | undefined, text?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(text!);
    };
    const fail = (why: string, cause?: unknown): void =>
      finish(
        new HelperError(
          HelperErrorCode.GEARMAND_ADMIN,
          `admin ${JSON.stringify(command)} to ${HOST}:${port}: ${why}`,
          cause === undefined ? {} : { cause },
        ),
      );
    const timer = setTimeout(
      () => fail(`no complete reply within ${timeoutMs} ms; got ${JSON.stringify(Buffer.concat(chunks).toString())}`),
      timeoutMs,
    );
    socket.on('connect', () => {
      // A binary packet first and text after is fine: gearmand picks the protocol per packet by its first byte.
      socket.write(buildPacket('REQ', T.SET_CLIENT_ID, [ADMIN_CLIENT_ID]));
      socket.write(`${command}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('utf8');
      if (isComplete(text, list)) finish(undefined, text);
    });
    socket.on('error', (err) => fail(err.message, err));
    socket.on('close', () =>
      fail(`connection closed before a complete reply; got ${JSON.stringify(Buffer.concat(chunks).toString())}`),
    );
  });
}

function describeExit(exit: Exit): string {
  if (exit.error !== undefined) return `failed to spawn (${exit.error.message})`;
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  return `exited with status ${String(exit.code)}`;
}

function unrefStream(stream: unknown): void {
  if (stream !== null && typeof stream === 'object' && 'unref' in stream && typeof stream.unref === 'function') {
    (stream as { unref(): void }).unref();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function raceTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
