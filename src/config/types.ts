/**
 * The validated, resolved shape of the daemon's configuration, shared by the master (which loads it)
 * and the pool children (which receive their part over IPC). Plain data only: it crosses IPC.
 */

export const RequestFormat = {
  JSON: 'json',
  MULTIPART: 'multipart',
} as const;
export type RequestFormat = (typeof RequestFormat)[keyof typeof RequestFormat];

export const DEFAULT_GEARMAN_PORT = 4730;

/** One entry of gearman_servers_list, parsed. */
export interface ServerAddress {
  /** Host name or IP address, without brackets for IPv6. */
  host: string;
  port: number;
  /** `host:port` (`[v6]:port` for IPv6), used in logs, status and metrics. */
  label: string;
}

/** One pool of pools_list, with per-pool defaults already resolved from the daemon options. */
export interface PoolConfig {
  name: string;
  jobProcessingUri: string;
  workerCount: number;
  /** Function names registered with CAN_DO, in config order, without duplicates. */
  jobsList: string[];
  requestFormat: RequestFormat;
  /** The pool's max_running_time (or the CLI's), in milliseconds. */
  maxRunningTimeMs: number;
  /** Extra request headers, lower-cased names. */
  headers: Record<string, string>;
}

/** The whole jobs config file, validated. */
export interface JobsConfig {
  /** Absolute path the config was read from. */
  path: string;
  servers: ServerAddress[];
  /** Pools by name, in file order. */
  pools: Record<string, PoolConfig>;
}

/** Where a listener binds (--exporter_addr). */
export interface ListenAddress {
  /** Host name or IP address, without brackets for IPv6. */
  host: string;
  port: number;
}

/** Daemon options after convict validation (SPEC §1). Times are kept in the units the CLI uses. */
export interface DaemonOptions {
  jobsconfig: string;
  logconfig: string | null;
  /** Seconds. */
  max_running_time: number;
  /** Seconds. */
  loop_timeout: number;
  status_port: number | null;
  status_host: string;
  user: string | null;
  pid_file: string | null;
  daemonize: boolean;
  request_format: RequestFormat;
  check: boolean;
  /** The observability listener (Prometheus /metrics, /status, health checks, status page); null = off. */
  exporter_addr: ListenAddress | null;
}
