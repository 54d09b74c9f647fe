/**
 * The messages between the master and a pool child. REQUEST_REPLIES below is the one list of message
 * types: the TypeScript unions each direction uses and the master's runtime check of what a child sends
 * both derive from it. Requests carry `seq`; their replies carry `ack` with the same number. Everything
 * here is plain data: it crosses the IPC channel as JSON.
 */
import type { SerializedError } from '../errors.js';
import type { ChildCounters } from './counters.js';
import type { ChildMetrics } from './metrics.js';
import { reportedCount } from './metrics.js';
import type { ChildSettings, PauseState } from './settings.js';

/** Every request the master sends a child, with the reply types that may answer it. */
export const REQUEST_REPLIES = {
  init: ['ready', 'init-failed'],
  reconfigure: ['reconfigured', 'reconfigure-failed'],
  status: ['status-reply'],
  'reopen-files': ['files-reopened'],
  'set-pause': ['pause-set', 'pause-failed'],
  shutdown: ['stopped'],
} as const;

/** What a child sends unasked: nothing answers these and they carry no `ack`. */
export const NOTICE_TYPES = ['hello', 'log', 'heartbeat'] as const;

export type RequestType = keyof typeof REQUEST_REPLIES;
export type ReplyType = (typeof REQUEST_REPLIES)[RequestType][number];
export type NoticeType = (typeof NOTICE_TYPES)[number];

/** Every reply type, for the master's check of a message from a child. */
export const REPLY_TYPES: ReadonlySet<string> = new Set<string>(Object.values(REQUEST_REPLIES).flat());
export const NOTICE_TYPE_SET: ReadonlySet<string> = new Set<string>(NOTICE_TYPES);

export const ShutdownMode = {
  /** Stop grabbing, let running jobs finish until the deadline, WORK_FAIL the rest, close. */
  GRACEFUL: 'graceful',
  /** WORK_FAIL running jobs now, close. */
  HARD: 'hard',
} as const;
export type ShutdownMode = (typeof ShutdownMode)[keyof typeof ShutdownMode];

/** A message that carries nothing but its type (and `seq` or `ack`). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- a message with no fields of its own is exactly the empty shape
type Bare = {};
/** `Fields` with exactly the keys `Types`: a type missing from the table, or one the table lacks, fails to compile. */
type FieldsOf<Types extends string, Fields extends Record<Types, object> & Record<Exclude<keyof Fields, Types>, never>> = Fields;

/** What each request carries besides `type` and `seq`. */
type RequestFields = FieldsOf<
  RequestType,
  {
    init: { settings: ChildSettings };
    reconfigure: { settings: ChildSettings };
    status: Bare;
    /** USR2 (logrotate): close the pool's dead-letter files after their pending writes; the next write reopens the path. */
    'reopen-files': Bare;
    /** An operator paused or resumed the pool or some of its functions: the whole pause as it is now. */
    'set-pause': { pause: PauseState };
    shutdown: { mode: ShutdownMode; deadlineMs: number };
  }
>;

/** What each reply carries besides `type` and `ack`. */
type ReplyFields = FieldsOf<
  ReplyType,
  {
    ready: Bare;
    'init-failed': { error: SerializedError };
    reconfigured: Bare;
    'reconfigure-failed': { error: SerializedError };
    'status-reply': { status: ChildStatus };
    /** The dead-letter files closed for reopening (none when the pool has none). */
    'files-reopened': { files: string[] };
    /**
     * The pause is in force. `running`: jobs the pool's slots hold, by function. `settled`: every GRAB
     * sent before it that could still bring a paused job was answered (false: one to a slow gearmand
     * is still outstanding when the child stopped waiting).
     */
    'pause-set': { running: Record<string, number>; settled: boolean };
    'pause-failed': { error: SerializedError };
    /**
     * Sent once every slot has closed after a shutdown request; the child exits right after. It carries
     * the final counters and metrics, so jobs finished since the master's last status poll still count.
     */
    stopped: { counters?: ChildCounters; metrics?: ChildMetrics };
  }
>;

/** What each notice carries besides `type`. */
type NoticeFields = FieldsOf<
  NoticeType,
  {
    /**
     * Sent once the child listens for messages. The child's ES module loads asynchronously, and a message
     * that arrives before its listener exists is dropped, so the master sends `init` only after this.
     */
    hello: Bare;
    /** A bunyan record from the child; the master writes it to its own streams. */
    log: { record: Record<string, unknown> };
    /**
     * Sent every heartbeatIntervalMs from `ready` until the child exits, by a timer on the child's event
     * loop: a child that is stopped (SIGSTOP) or whose event loop is blocked falls silent, and the master
     * notices that without asking for a status.
     */
    heartbeat: Bare;
  }
>;

/** A request as its sender writes it; the IPC channel adds `seq`. */
export type MasterRequest = { [T in RequestType]: { type: T } & RequestFields[T] }[RequestType];
export type MasterToChild = MasterRequest & { seq: number };
/** A child-to-master message that answers a request. */
export type ChildReply = { [T in ReplyType]: { type: T; ack: number } & ReplyFields[T] }[ReplyType];
/** A child-to-master message that answers nothing (hello, a heartbeat, a forwarded log record). */
export type ChildNotice = { [T in NoticeType]: { type: T } & NoticeFields[T] }[NoticeType];
export type ChildToMaster = ChildReply | ChildNotice;

export interface SlotStatus {
  /** Unique across the daemon for the slot's lifetime: `<child pid>-<n>`. */
  id: string;
  /** True once the slot has been told to stop (scale-down, reconfigure, shutdown). */
  stopping: boolean;
  /** Present while a job runs. */
  job: {
    handle: string;
    unique: string;
    functionName: string;
    server: string;
    startedAt: number;
    /** The current attempt's number (1 unless retried or redelivered); absent from older children. */
    attempt?: number;
    /** Between two attempts, waiting for the backoff to pass. */
    waitingToRetry?: boolean;
  } | null;
  /** Servers this slot is currently registered with. */
  connectedServers: number;
  /**
   * Each connection, in gearman_servers_list order: the server's label, its state (the child's
   * ConnectionState) and whether that state means registered. Absent from older children.
   */
  connections?: Array<{ server: string; state: string; connected: boolean }>;
}

export const BreakerState = {
  /** Jobs flow; after a re-close, `admitted` slots may hold a job while the pool ramps back up. */
  CLOSED: 'closed',
  /** The pool grabs nothing; jobs wait in gearmand until the cool-off ends. */
  OPEN: 'open',
  /** One probe (a real job, or a GET of health_url) decides whether to close or re-open. */
  HALF_OPEN: 'half-open',
} as const;
export type BreakerState = (typeof BreakerState)[keyof typeof BreakerState];

/** One function's breaker (only functions that ever failed have one). */
export interface FunctionBreakerStatus {
  breaker: BreakerState;
  /** Date.now() of the last state change. */
  since: number;
  lastReason: string | null;
  /** Times it opened since the child started. */
  opened: number;
}

/** A pool's delivery state, for /status, the status page, `gauges`, /metrics and /readyz. */
export interface DeliveryStatus {
  breaker: BreakerState;
  /** Date.now() of the last breaker state change. */
  since: number;
  /** The transient failure that opened the breaker (or the last one seen), else null. */
  lastReason: string | null;
  /** Slots allowed to hold a job right now (worker_count when fully closed). */
  admitted: number;
  /** Jobs held by a slot waiting for their next attempt. */
  retrying: number;
  /** Times the breaker opened since the child started. */
  opened: number;
  /** Per-function breakers, by function name (absent or empty: none ever failed). */
  functions?: Record<string, FunctionBreakerStatus>;
}

const BREAKER_STATES: ReadonlySet<string> = new Set(Object.values(BreakerState));

/** A child's delivery status as the master keeps it, or null when it sent none or one the views could not show. */
export function sanitizeDelivery(delivery: DeliveryStatus | undefined): DeliveryStatus | null {
  if (delivery === undefined || delivery === null || typeof delivery !== 'object' || !BREAKER_STATES.has(delivery.breaker)) return null;
  return {
    breaker: delivery.breaker,
    since: reportedCount(delivery.since),
    lastReason: typeof delivery.lastReason === 'string' ? delivery.lastReason : null,
    admitted: reportedCount(delivery.admitted),
    retrying: reportedCount(delivery.retrying),
    opened: reportedCount(delivery.opened),
    functions: sanitizeFunctionBreakers(delivery.functions),
  };
}

function sanitizeFunctionBreakers(functions: unknown): Record<string, FunctionBreakerStatus> {
  const out: Record<string, FunctionBreakerStatus> = {};
  if (typeof functions !== 'object' || functions === null || Array.isArray(functions)) return out;
  for (const [name, value] of Object.entries(functions as Record<string, unknown>)) {
    const status = value as Partial<FunctionBreakerStatus> | null;
    if (typeof status !== 'object' || status === null || typeof status.breaker !== 'string' || !BREAKER_STATES.has(status.breaker)) continue;
    const sane: FunctionBreakerStatus = {
      breaker: status.breaker,
      since: reportedCount(status.since),
      lastReason: typeof status.lastReason === 'string' ? status.lastReason : null,
      opened: reportedCount(status.opened),
    };
    // An own property even for a function named __proto__ (a plain assignment would set the prototype).
    Object.defineProperty(out, name, { value: sane, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * A pool's flow control, for /status, `gauges`, /metrics and the status page: what an operator paused
 * (docs/operations.md, Pause and resume) and the admission gate's inputs besides the breaker, which
 * `delivery` reports (docs/flow-control.md).
 */
export interface FlowStatus {
  /** No slot grabs; running jobs finish. */
  paused: boolean;
  /** Functions no slot registers, in jobs_list order. */
  pausedFunctions: string[];
  /** The pool's concurrency.mode: "fixed" or "adaptive". */
  concurrency: string;
  /** Slots that may hold a job by the concurrency setting: worker_count when fixed, the controller's limit when adaptive. */
  concurrencyLimit: number;
  /** Adaptive: the no-load latency the controller compares with, ms; null when fixed or not yet measured. */
  baselineMs: number | null;
  /** rate_limit.per_second; null without a rate limit. */
  ratePerSecond: number | null;
  /** rate_limit.burst; null without a rate limit. */
  burst: number | null;
  /** Whole tokens in the bucket now (below zero while retries taken on credit are paid back); null without a rate limit. */
  tokens: number | null;
  /** Slots refused a permit (by the pause, the breaker, the limit or the rate), waiting to be admitted. */
  waitingSlots: number;
}

/** The part of a pool's flow status its admission gate reports. */
export type GateFlowStatus = Omit<FlowStatus, 'paused' | 'pausedFunctions'>;
/** The part its operator pauses report. */
export type PauseFlowStatus = Pick<FlowStatus, 'paused' | 'pausedFunctions'>;

const CONCURRENCY_MODES: ReadonlySet<string> = new Set(['fixed', 'adaptive']);

function reportedNumberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A child's flow status as the master keeps it, or null when it sent none or one the views could not show. */
export function sanitizeFlow(flow: FlowStatus | undefined): FlowStatus | null {
  if (flow === undefined || flow === null || typeof flow !== 'object') return null;
  const pauseKnown = typeof flow.paused === 'boolean';
  const gateKnown = CONCURRENCY_MODES.has(flow.concurrency);
  if (!pauseKnown && !gateKnown) return null;
  const functions = Array.isArray(flow.pausedFunctions) ? flow.pausedFunctions.filter((name): name is string => typeof name === 'string') : [];
  const tokens = reportedNumberOrNull(flow.tokens);
  return {
    paused: pauseKnown ? flow.paused : false,
    pausedFunctions: functions,
    concurrency: gateKnown ? flow.concurrency : 'fixed',
    concurrencyLimit: reportedCount(flow.concurrencyLimit),
    baselineMs: reportedNumberOrNull(flow.baselineMs),
    ratePerSecond: reportedNumberOrNull(flow.ratePerSecond),
    burst: reportedNumberOrNull(flow.burst),
    tokens: tokens === null ? null : Math.trunc(tokens),
    waitingSlots: reportedCount(flow.waitingSlots),
  };
}

/** What a pool's child knows of one configured gearmand beyond its connections. */
export interface ServerView {
  /** The server's label (host:port). */
  server: string;
  /** Date.now() when a GRAB to it went unanswered and the pool began to grab on its other servers; null while it answers. */
  suspectSince: number | null;
}

/** A child's server views as the master keeps them: entries with a label; a suspect time that is not a time reads as null. */
export function sanitizeServers(servers: unknown): ServerView[] | undefined {
  if (!Array.isArray(servers)) return undefined;
  const out: ServerView[] = [];
  for (const view of servers as unknown[]) {
    if (view === null || typeof view !== 'object') continue;
    const { server, suspectSince } = view as Partial<Record<keyof ServerView, unknown>>;
    if (typeof server === 'string') out.push({ server, suspectSince: reportedNumberOrNull(suspectSince) });
  }
  return out;
}

export interface ChildStatus {
  pool: string;
  pid: number;
  slots: SlotStatus[];
  /** Each configured server, in gearman_servers_list order (absent from older children). */
  servers?: ServerView[];
  counters: ChildCounters;
  /** Per-function and per-HTTP-code metrics (absent from older children). */
  metrics?: ChildMetrics;
  /** Retries, breaker and dead letters (absent from older children). */
  delivery?: DeliveryStatus;
  /** Operator pauses, the rate limit and the concurrency limit in force (absent from older children). */
  flow?: FlowStatus;
}
