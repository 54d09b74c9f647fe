/**
 * The `driveshaft` command: options → help / version / check → daemonize → log config, jobs config,
 * fd budget, pid file → Master. Every startup error is one line per problem on stderr (or sent to the
 * launcher under --daemonize) and exit status 2 (docs/configuration.md, Options).
 */
import path from 'node:path';
import { checkFdBudget } from './config/fd-budget.js';
import { loadJobsConfig } from './config/jobs-config.js';
import { parseCommandLine, versionText } from './config/options.js';
import { redactUris } from './config/redact.js';
import { secondsToMs } from './config/seconds.js';
import type { DaemonOptions, JobsConfig } from './config/types.js';
import { loadWebConfig, type ExporterWebConfig } from './config/web-config.js';
import { UserError, problemLines } from './errors.js';
import { createLogger, flushLogFiles } from './log/bunyan-logger.js';
import { DEFAULT_LOG_CONFIG, loadLogConfig, type LogConfig } from './log/log-config.js';
import type { Logger } from './log/logger.js';
import { clusterForker, DEFAULT_CHILD_EXEC, poolNodeFlags, secretVariables } from './master/child-process.js';
import { DaemonHandshake, launchDaemon } from './daemon/daemonize.js';
import { checkProgramReadable, dropPrivileges, lookupUser, programFiles } from './daemon/drop-privileges.js';
import { Master } from './master/master.js';
import { PidFile } from './daemon/pid-file.js';
import { makeFileStreamsReopenable } from './daemon/reopen-logs.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** How long the launcher waits for a daemon to report ready before giving up on it. */
const DAEMON_READY_TIMEOUT_MS = 60_000;

/** Where startup problems go: stderr, or the launcher when this process is the detached daemon. */
interface Reporter {
  fail(code: number, lines: string[]): Promise<number>;
}

/** Every startup line is redacted here, whatever produced it (an option, a config file, an OS error). */
function prefixed(lines: string[]): string[] {
  return lines.map((line) => `driveshaft: ${redactUris(line)}`);
}

function loadConfigFor(options: DaemonOptions): (file: string) => JobsConfig {
  const defaults = { maxRunningTimeMs: secondsToMs(options.max_running_time), requestFormat: options.request_format, deadLetterDir: options.dead_letter_dir };
  return (file) => loadJobsConfig(file, defaults);
}

/** Runs the command; resolves with the exit status. Never throws. */
export async function main(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv[0] === 'replay') {
    // A separate tool sharing the binary: loaded only here, so the daemon never carries it.
    const { replayMain } = await import('./replay/replay.js');
    return replayMain(argv.slice(1));
  }
  if (argv[0] === 'pause' || argv[0] === 'resume' || argv[0] === 'drain') {
    // A client of the daemon's status port (docs/operations.md, Pause and resume), loaded only here.
    const { controlMain } = await import('./control/pause-command.js');
    return controlMain(argv[0], argv.slice(1), env);
  }
  const handshake = DaemonHandshake.fromEnvironment(env);
  const reporter: Reporter = {
    async fail(code, lines) {
      const out = prefixed(lines);
      if (handshake !== null) await handshake.failed(code, out);
      else process.stderr.write(`${out.join('\n')}\n`);
      return code;
    },
  };

  let options: DaemonOptions;
  try {
    const command = parseCommandLine(argv, env);
    if (command.kind !== 'run') {
      process.stdout.write(command.text.endsWith('\n') ? command.text : `${command.text}\n`);
      return EXIT_OK;
    }
    options = command.options;
  } catch (error) {
    return reporter.fail(EXIT_USAGE, problemLines(error));
  }

  if (options.check) {
    // Loaded only here: a running daemon never needs the --check report code.
    const { runCheck } = await import('./config/check.js');
    const result = runCheck(options);
    (result.ok ? process.stdout : process.stderr).write(`${result.lines.map(redactUris).join('\n')}\n`);
    return result.ok ? EXIT_OK : EXIT_USAGE;
  }

  if (options.daemonize && handshake === null) {
    const script = process.argv[1] ?? '';
    const result = await launchDaemon(script, argv, DAEMON_READY_TIMEOUT_MS);
    if (result.code === EXIT_OK && options.logconfig === null) {
      // The detached daemon's stdout is /dev/null: without a log config its records go nowhere.
      result.lines.push('driveshaft: warning: --daemonize without --logconfig: log records are discarded');
    }
    if (result.lines.length > 0) process.stderr.write(`${result.lines.join('\n')}\n`);
    return result.code;
  }

  return runDaemon(options, handshake, reporter);
}

async function runDaemon(options: DaemonOptions, handshake: DaemonHandshake | null, reporter: Reporter): Promise<number> {
  // Everything that can be refused is checked before anything is started, bound or written.
  let logConfig: LogConfig = DEFAULT_LOG_CONFIG;
  let config: JobsConfig;
  let webConfig: ExporterWebConfig | null = null;
  const loadConfig = loadConfigFor(options);
  try {
    if (options.logconfig !== null) logConfig = loadLogConfig(options.logconfig);
    config = loadConfig(options.jobsconfig);
    if (options.web_config_file !== null) webConfig = loadWebConfig(options.web_config_file);
    checkFdBudget(config);
    if (options.user !== null) {
      const target = lookupUser(options.user);
      const uid = process.getuid?.();
      if (uid !== 0 && uid !== target.uid) {
        throw new UserError(`--user ${options.user}: only root can change user (running as uid ${uid})`);
      }
    }
  } catch (error) {
    return reporter.fail(EXIT_USAGE, problemLines(error));
  }

  let pidFile: PidFile | null = null;
  const staleNotes: string[] = [];
  if (options.pid_file !== null) {
    try {
      pidFile = PidFile.acquire(options.pid_file, { onStale: (pid) => staleNotes.push(`${options.pid_file}: took over a stale pid file (pid ${pid ?? 'none'})`) });
    } catch (error) {
      return reporter.fail(EXIT_USAGE, problemLines(error));
    }
    // A crash (uncaught exception, process.exit elsewhere) must not leave our pid behind either.
    process.on('exit', () => pidFile?.release());
  }

  let logger: Logger;
  try {
    logger = createLogger(logConfig);
  } catch (error) {
    pidFile?.release();
    return reporter.fail(EXIT_USAGE, [`${options.logconfig}: cannot open log streams: ${(error as Error).message}`]);
  }
  makeFileStreamsReopenable(logger);
  if (handshake !== null) process.chdir('/');

  const log = logger.child({ component: 'main' });
  log.info({ event: 'starting', version: versionText(), pid: process.pid, options }, `${versionText()} starting (pid ${process.pid})`);
  for (const note of staleNotes) log.info({ event: 'pid-file-stale' }, note);
  for (const warning of webConfig?.warnings ?? []) log.warn({ event: 'config-warning', file: webConfig?.file }, warning);

  process.on('uncaughtException', (error) => {
    log.fatal({ event: 'crash', err: error }, `uncaught exception: ${error.message}`);
    // Also on stderr: the crash may be in logging itself.
    process.stderr.write(`driveshaft: uncaught exception: ${error.stack ?? error.message}\n`);
    // Children exit on their own when the IPC channel drops; gearmand re-queues their jobs.
    void flushLogFiles(logger).then(() => process.exit(EXIT_FAILURE));
  });
  process.on('unhandledRejection', (reason) => {
    log.error({ event: 'unhandled-rejection', err: reason }, `unhandled rejection: ${String(reason)}`);
  });

  const user = options.user;
  const master: Master = new Master({
    options,
    config,
    logger,
    // A pool's child gets V8 flags sized to its worker_count as the master currently knows it (a
    // restart after a reload uses the new count), and none of the variables the config reads secrets from.
    fork: clusterForker(
      undefined,
      (pool): readonly string[] => poolNodeFlags(master.supervisor(pool)?.settings.pool.workerCount),
      () => secretVariables(master.config),
    ),
    loadConfig,
    webConfig,
    checkBudget: (next) => checkFdBudget(next),
    afterBind:
      user === null
        ? undefined
        : () => {
            // Listed while still root (the tree may not be listable as the user): dist/src/child/main.js →
            // dist/src, the modules a child loads, and the package's package.json.
            const programDir = path.dirname(path.dirname(DEFAULT_CHILD_EXEC));
            const files = programFiles(programDir, path.join(programDir, '..', '..', 'package.json'));
            const identity = dropPrivileges(user);
            log.info({ event: 'user', user, uid: identity.uid, gid: identity.gid }, `running as ${user} (uid ${identity.uid}, gid ${identity.gid})`);
            checkProgramReadable(user, files);
          },
  });
  try {
    await master.start();
  } catch (error) {
    const lines = problemLines(error);
    log.error({ event: 'start-failed', problems: lines }, `startup failed: ${lines.join('; ')}`);
    pidFile?.release();
    await flushLogFiles(logger);
    return reporter.fail(EXIT_USAGE, lines);
  }
  if (handshake !== null) await handshake.ready();

  const code = await master.done;
  pidFile?.release();
  await flushLogFiles(logger);
  return code;
}

/** The bin entry: runs main and exits with its status. */
export async function run(): Promise<void> {
  const code = await main();
  process.exit(code);
}
