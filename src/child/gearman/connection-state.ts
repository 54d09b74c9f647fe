/**
 * A GearmanConnection's states, the one table of the moves between them (gearman-connection.ts
 * refuses any other), and the timings its lifecycle runs on (docs/architecture.md, Lifecycles).
 */

export const ConnectionState = {
  CONNECTING: 'connecting',
  /** Registration and ECHO_REQ written; waiting for the ECHO_RES that proves the server alive. */
  HANDSHAKE: 'handshake',
  /** Registered, nothing outstanding, may have work waiting: the slot should grab here when it can. */
  READY: 'ready',
  GRABBING: 'grabbing',
  /** PRE_SLEEP sent: gearmand will NOOP when work arrives. */
  SLEEPING: 'sleeping',
  /** NO_JOB answered, no PRE_SLEEP: another connection of its WakeGroup sleeps and wakes this one. */
  PARKED: 'parked',
  /** Holds the slot's job. */
  RUNNING: 'running',
  BACKOFF: 'backoff',
  CLOSING: 'closing',
  CLOSED: 'closed',
} as const;
export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

const S = ConnectionState;

export const CONNECTION_TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  [S.CONNECTING]: [S.HANDSHAKE, S.BACKOFF, S.CLOSED],
  [S.HANDSHAKE]: [S.READY, S.BACKOFF, S.CLOSED],
  [S.READY]: [S.GRABBING, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.GRABBING]: [S.RUNNING, S.SLEEPING, S.PARKED, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.SLEEPING]: [S.READY, S.GRABBING, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.PARKED]: [S.READY, S.SLEEPING, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.RUNNING]: [S.READY, S.GRABBING, S.BACKOFF, S.CLOSING, S.CLOSED],
  [S.BACKOFF]: [S.CONNECTING, S.CLOSED],
  [S.CLOSING]: [S.CLOSED],
  [S.CLOSED]: [],
};

/** Registered with gearmand and proven alive (the status' connectedServers counts these). */
export function isConnected(state: ConnectionState): boolean {
  return state === S.READY || state === S.GRABBING || state === S.SLEEPING || state === S.PARKED || state === S.RUNNING;
}

/** Backoff after a lost or refused connection: 100 ms × 2^n, capped, ±25 % jitter. */
export const BACKOFF_BASE_MS = 100;
export const BACKOFF_MAX_MS = 5000;
/** gearmand answers a GRAB at once; waiting longer than this for one only stalls the slot's other servers. */
const GRAB_REPLY_TIMEOUT_MAX_MS = 2000;

export function backoffDelay(attempt: number, capMs: number, random: () => number = Math.random): number {
  const base = Math.min(capMs, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 20));
  // Jitter spreads the reconnects of many slots after a gearmand restart.
  return Math.round(base * (0.75 + 0.5 * random()));
}

/** How long a slot waits for a GRAB's answer before grabbing elsewhere (the pool's tick detects it). */
export function grabReplyTimeoutMs(loopTimeoutMs: number): number {
  return Math.min(loopTimeoutMs, GRAB_REPLY_TIMEOUT_MAX_MS);
}

/** How long a connect plus its handshake may take: a SYN into a black hole, or a stopped server, says nothing. */
export function connectTimeoutMs(loopTimeoutMs: number): number {
  return Math.max(loopTimeoutMs, 1000);
}
