import type { DaemonOptions } from '../../src/config/types.js';

/**
 * Daemon options as parseCommandLine gives them with only --jobsconfig (the CLI's defaults), with
 * `overrides` on top: one builder for every test that hands options to the master or --check.
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
    daemonize: false,
    request_format: 'json',
    check: false,
    exporter_addr: null,
    exporter_allowed_hosts: [],
    web_config_file: null,
    ...overrides,
  };
}
