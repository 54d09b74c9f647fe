/**
 * --daemonize (docs/configuration.md, Options): the launching command re-runs itself detached (a new session, stdio on
 * /dev/null) with an IPC channel back, and exits 0 only once the daemon reports that it is serving
 * (config valid, children ready, status port bound, pid file written), or non-zero with the daemon's
 * own error lines. The original returned 0 before anything had started.
 *
 * The daemon runs the ordinary startup path; only its reporting differs (DaemonHandshake). Relative
 * paths were made absolute by the options parser, and the daemon keeps the launcher's working directory
 * until it has parsed its argv, then moves to / so it does not pin a mount point.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** Set in the daemon's environment by the launcher; removed again before any child is forked. */
export const DAEMON_ENV = 'DRIVESHAFT_DAEMON_HANDSHAKE';

type LauncherMessage = { type: 'daemon-ready'; pid: number } | { type: 'daemon-failed'; code: number; lines: string[] };

export interface LaunchResult {
  code: number;
  /** What to print on stderr (nothing on success). */
  lines: string[];
  pid: number | null;
}

/**
 * Starts the daemon and waits for its verdict. `script` is the CLI entry to run (process.argv[1]).
 * A daemon that neither reports nor exits within `timeoutMs` is killed and reported.
 */
export function launchDaemon(script: string, argv: readonly string[], timeoutMs: number): Promise<LaunchResult> {
  return new Promise((resolve) => {
    const devNull = openSync('/dev/null', 'r+');
    let settled = false;
    const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
      detached: true,
      stdio: [devNull, devNull, devNull, 'ipc'],
      env: { ...process.env, [DAEMON_ENV]: '1' },
    });
    closeSync(devNull);
    const finish = (result: LaunchResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolve(result);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ code: 1, lines: [`driveshaft: the daemon (pid ${child.pid}) did not report ready within ${timeoutMs} ms; killed it`], pid: null });
    }, timeoutMs);
    child.on('message', (message: LauncherMessage) => {
      if (message?.type === 'daemon-ready') finish({ code: 0, lines: [], pid: message.pid });
      else if (message?.type === 'daemon-failed') finish({ code: message.code, lines: message.lines, pid: null });
    });
    child.on('error', (error) => finish({ code: 1, lines: [`driveshaft: cannot start the daemon: ${error.message}`], pid: null }));
    child.on('exit', (code, signal) =>
      finish({ code: code === 0 || code === null ? 1 : code, lines: [`driveshaft: the daemon exited during startup (code ${code}, signal ${signal})`], pid: null }),
    );
  });
}

/** The daemon's side of the handshake; null when this process was not started by launchDaemon. */
export class DaemonHandshake {
  #open = true;

  private constructor() {}

  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): DaemonHandshake | null {
    const requested = env[DAEMON_ENV] === '1';
    delete env[DAEMON_ENV];
    if (!requested || typeof process.send !== 'function') return null;
    return new DaemonHandshake();
  }

  /** Tells the launcher the daemon is serving, and lets go of the channel. */
  ready(): Promise<void> {
    return this.#send({ type: 'daemon-ready', pid: process.pid });
  }

  /** Tells the launcher why startup failed; it prints the lines and exits with `code`. */
  failed(code: number, lines: string[]): Promise<void> {
    return this.#send({ type: 'daemon-failed', code, lines });
  }

  #send(message: LauncherMessage): Promise<void> {
    if (!this.#open) return Promise.resolve();
    this.#open = false;
    return new Promise((resolve) => {
      const done = (): void => {
        // The channel would keep the daemon tied to a launcher that is about to exit.
        if (process.connected) process.disconnect();
        resolve();
      };
      try {
        process.send?.(message, undefined, undefined, done);
      } catch {
        done();
      }
    });
  }
}
