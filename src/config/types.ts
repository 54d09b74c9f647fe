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
  /** `keep_alive` (default true): false opens a new endpoint connection per job, as the original did. */
  keepAlive: boolean;
  /** `max_workload_bytes`: a job whose workload is larger fails with a clear reason; 0 = no limit. */
  maxWorkloadBytes: number;
  /** `max_response_bytes`: a response body larger than this fails the job; each slot may hold one this big. */
  maxResponseBytes: number;
  /** `delivery`: what happens when the endpoint cannot be reached or answers with a transient error. */
  delivery: DeliveryPolicy;
  /**
   * `trace_parent_field`: the member of a JSON-object workload whose string value, a W3C traceparent,
   * makes the job's requests join that trace; null (default) = every job starts a new trace.
   */
  traceParentField: string | null;
  /**
   * `signing_secrets`: the Standard Webhooks HMAC-SHA256 keys (base64 of the bytes after `whsec_`), in
   * the order given; every request carries one signature per key. Empty: requests are not signed.
   */
  signingKeys: string[];
  /** The content of `bearer_token_file`, sent as `authorization: Bearer <token>`; null = none. */
  bearerToken: string | null;
  /** `tls`: how the child verifies an https endpoint and authenticates to it; null = Node's defaults. */
  tls: PoolTls | null;
  /**
   * Where the pool's secrets were read from (file paths, variable names; never their content): what
   * --check lists and what the permission warnings look at.
   */
  secretSources: SecretSource[];
  /** `rate_limit`: new jobs taken from gearmand per second, with a burst; null (default) = no limit. */
  rateLimit: RateLimit | null;
  /** `concurrency`: how many slots may hold a job: all of them (fixed, default), or as many as the endpoint takes (adaptive). */
  concurrency: ConcurrencyPolicy;
}

/** A pool's `rate_limit` (docs/flow-control.md): a token bucket of `burst` tokens refilled at `perSecond`. */
export interface RateLimit {
  /** Tokens added per second (> 0; a fraction is one job every few seconds). */
  perSecond: number;
  /** Tokens the bucket holds at most: jobs that may start at once after a quiet spell (>= 1). */
  burst: number;
}

export const ConcurrencyMode = {
  /** worker_count slots may hold a job (what every version before did). */
  FIXED: 'fixed',
  /** worker_count is the ceiling; the pool finds the limit from the endpoint's latency and errors. */
  ADAPTIVE: 'adaptive',
} as const;
export type ConcurrencyMode = (typeof ConcurrencyMode)[keyof typeof ConcurrencyMode];

/** A pool's `concurrency` object (docs/flow-control.md). */
export interface ConcurrencyPolicy {
  mode: ConcurrencyMode;
  /** The adaptive limit's floor (>= 1, at most worker_count); unused when fixed. */
  min: number;
}

export const DEFAULT_CONCURRENCY: Readonly<ConcurrencyPolicy> = Object.freeze({ mode: ConcurrencyMode.FIXED, min: 2 });

/** A pool's `tls` object, its files already read (PEM text) so the child needs no access to them. */
export interface PoolTls {
  /** PEM CA certificates trusted instead of Node's bundled ones; null = Node's (plus NODE_EXTRA_CA_CERTS). */
  ca: string | null;
  caFile: string | null;
  /** PEM client certificate (chain) for mutual TLS; given together with key. */
  cert: string | null;
  certFile: string | null;
  /** PEM private key of the client certificate. */
  key: string | null;
  keyFile: string | null;
  /** Host name sent as SNI and checked against the endpoint's certificate instead of the URI's host. */
  serverName: string | null;
}

export const SecretKind = {
  FILE: 'file',
  ENV: 'env',
} as const;
export type SecretKind = (typeof SecretKind)[keyof typeof SecretKind];

/** One place a pool's secret came from. */
export interface SecretSource {
  /** The jobs config key it was named by: `signing_secrets`, `bearer_token_file`, `tls.key_file`. */
  key: string;
  kind: SecretKind;
  /** Absolute file path, or the environment variable's name. */
  name: string;
}

export const DeliveryMode = {
  /** Transient outcomes are retried in place, a circuit breaker hands jobs back to gearmand unfailed. */
  RETRY: 'retry',
  /** The original's behaviour: every failure, transient or not, is a WORK_FAIL at once. */
  FAIL_FAST: 'fail_fast',
} as const;
export type DeliveryMode = (typeof DeliveryMode)[keyof typeof DeliveryMode];

/**
 * A pool's delivery policy (the jobs config's `delivery` object, times in milliseconds here, seconds
 * in the file). Backoff has the Cloud Tasks shape: min_backoff doubling max_doublings times, then
 * growing linearly by that last step, capped at max_backoff, with jitter.
 */
export interface DeliveryPolicy {
  mode: DeliveryMode;
  /**
   * POSTs of one job before it is dead-lettered and failed (>= 1), counted across hand-backs to gearmand
   * by the pool process (failed breaker probes excepted).
   */
  maxAttempts: number;
  /** From the job's first attempt, across hand-backs; 0 = only maxAttempts bounds the retries. */
  maxRetryDurationMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  maxDoublings: number;
  /** HTTP statuses that are transient (retried); every other non-200 status is a permanent failure. */
  retryOnStatus: number[];
  /** Consecutive transient outcomes that open the pool's circuit breaker; 0 = never opens. */
  breakerThreshold: number;
  /** First cool-off of an open breaker before a probe; doubles after each failed probe. */
  breakerCooloffMs: number;
  breakerMaxCooloffMs: number;
  /**
   * The longest wait an endpoint may ask for with Retry-After or `retry_after`: a longer one is cut to
   * this. Also the longest a breaker's cool-off is stretched to honour such a wait.
   */
  maxRetryAfterMs: number;
  /** Half-open probe: GET this URL (2xx = healthy) instead of letting one real job through; null = a real job. */
  healthUrl: string | null;
  /**
   * Absolute path of the pool's dead-letter file (JSON lines), the explicit `dead_letter_file` or the
   * default under --dead_letter_dir; null = none (`false`, or fail_fast without a file).
   */
  deadLetterFile: string | null;
}

/**
 * The policy of a pool that sets no `delivery` object: safe for a 5-second deploy of the endpoint even
 * for a lone job (10 attempts span about 21 s of backoff), and a poison job reaches the dead letters.
 */
export const DEFAULT_DELIVERY: Readonly<DeliveryPolicy> = Object.freeze({
  mode: DeliveryMode.RETRY,
  maxAttempts: 10,
  maxRetryDurationMs: 60_000,
  minBackoffMs: 100,
  maxBackoffMs: 5_000,
  maxDoublings: 4,
  retryOnStatus: [408, 425, 429, 502, 503, 504],
  breakerThreshold: 5,
  breakerCooloffMs: 1_000,
  breakerMaxCooloffMs: 30_000,
  maxRetryAfterMs: 60_000,
  healthUrl: null,
  deadLetterFile: null,
});

/** The whole jobs config file, validated. */
export interface JobsConfig {
  /** Absolute path the config was read from. */
  path: string;
  servers: ServerAddress[];
  /** Pools by name, in file order. */
  pools: Record<string, PoolConfig>;
  /**
   * Things worth an operator's attention that do not stop the config from loading (a secret file others
   * can read, a client certificate past its expiry); the master logs them at start and at each reload.
   */
  warnings?: string[];
}

/**
 * The pool of that name, or undefined: a name from outside (a status port command, an old config) may
 * be "toString" or "__proto__", which `pools` (a plain object) would answer from its prototype.
 */
export function poolNamed(config: Pick<JobsConfig, 'pools'>, name: string): PoolConfig | undefined {
  return Object.hasOwn(config.pools, name) ? config.pools[name] : undefined;
}

/** Where a listener binds (--exporter_addr). */
export interface ListenAddress {
  /** Host name or IP address, without brackets for IPv6. */
  host: string;
  port: number;
}

/** Daemon options after convict validation (docs/configuration.md, Options). Times are kept in the units the CLI uses. */
export interface DaemonOptions {
  jobsconfig: string;
  logconfig: string | null;
  /** Seconds. */
  max_running_time: number;
  /** Seconds. */
  loop_timeout: number;
  /** Seconds without a heartbeat before a pool child is shown as unresponsive. */
  child_unresponsive_after: number;
  /** Seconds without a heartbeat before a pool child is killed and restarted; 0 = never. */
  child_kill_after: number;
  status_port: number | null;
  status_host: string;
  user: string | null;
  pid_file: string | null;
  /**
   * Absolute folder of the default dead-letter files (`<pool>.jsonl`), resolved at startup from
   * --dead_letter_dir or its default (src/config/dead-letter-location.ts).
   */
  dead_letter_dir: string;
  daemonize: boolean;
  request_format: RequestFormat;
  check: boolean;
  /** The observability listener (Prometheus /metrics, /status, health checks, status page); null = off. */
  exporter_addr: ListenAddress | null;
  /** Host names the exporter answers besides its own address, localhost and IP addresses (lowercase; `.name` = name and its subdomains). */
  exporter_allowed_hosts: string[];
  /** The exporter's TLS and basic auth (Prometheus exporter-toolkit web config format); null = plain HTTP, no auth. */
  web_config_file: string | null;
}

/** Default cap on a response body: far above any sane `{"gearman_ret":0,…}`, far below memory trouble. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** The highest max_response_bytes: the codec's cap on a packet from gearmand, well under V8's longest string (JSON.parse reads the body as one). */
export const MAX_RESPONSE_BYTES_LIMIT = 256 * 1024 * 1024;

/** The optional per-pool keys a pool that sets none of them gets: keep-alive on, no workload cap, a 64 MiB response cap, DEFAULT_DELIVERY, new traces, no signing, no credentials, Node's TLS defaults, no rate limit, fixed concurrency. */
export function defaultPoolExtensions(): Pick<PoolConfig, 'keepAlive' | 'maxWorkloadBytes' | 'maxResponseBytes' | 'delivery' | 'traceParentField' | 'signingKeys' | 'bearerToken' | 'tls' | 'secretSources' | 'rateLimit' | 'concurrency'> {
  return {
    keepAlive: true,
    maxWorkloadBytes: 0,
    maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
    delivery: { ...DEFAULT_DELIVERY, retryOnStatus: [...DEFAULT_DELIVERY.retryOnStatus] },
    traceParentField: null,
    signingKeys: [],
    bearerToken: null,
    tls: null,
    secretSources: [],
    rateLimit: null,
    concurrency: { ...DEFAULT_CONCURRENCY },
  };
}
