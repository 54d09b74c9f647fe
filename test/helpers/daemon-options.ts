import path from 'node:path';
import type { DaemonOptions } from '../../src/config/types.js';

/**
 * Daemon options as parseCommandLine gives them with only --jobsconfig (the CLI's defaults, except
 * --dead_letter_dir, whose default depends on the user), with `overrides` on top: one builder for
 * every test that hands options to the master or --check.
 */
export function daemonOptions(jobsconfig: string, overrides: Partial<DaemonOptions> = {}): DaemonOptions {
  return {
    jobsconfig,
    logconfig: null,
    max_running_time: 300,
    loop_timeout: 10,
    child_unresponsive_after: 10,
    child_kill_after: 60,
    status_port: null,
    status_host: '127.0.0.1',
    user: null,
    pid_file: null,
    // Beside the jobs config, a test's own folder: nothing is written there unless a test asks.
    dead_letter_dir: path.join(path.dirname(jobsconfig), 'dead-letters'),
    daemonize: false,
    request_format: 'json',
    check: false,
    exporter_addr: null,
    exporter_allowed_hosts: [],
    web_config_file: null,
    ...overrides,
  };
}
