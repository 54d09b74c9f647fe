/**
 * Who may read the exporter (docs/observability.md, Access): the Host check against DNS rebinding, and
 * basic authentication from the web config file.
 *
 * Host check. A web page in a browser on the operator's machine can point a name it controls at
 * 127.0.0.1 (DNS rebinding) and then read any local HTTP service "same-origin"; the one thing it cannot
 * change is the Host header, which carries its own name. So a request is answered only when its Host
 * names this exporter: `localhost` (and `*.localhost`, which browsers resolve to loopback themselves),
 * any IP address (a page served from an IP address is that address's origin: there is no name to
 * rebind), the host of --exporter_addr, or a name of --exporter_allowed_hosts. Any other name gets
 * 421 Misdirected Request (RFC 9110 §15.5.20: this server will not answer for that authority), not
 * 400: the request itself is well-formed, it was sent to the wrong server. The port is not compared:
 * a port forward or a proxy may change it, and it is not what rebinding forges.
 *
 * Basic auth. bcrypt (bcryptjs: Node has no bcrypt) costs tens of milliseconds of the master's CPU per
 * check at the usual cost 10, so: a successful check is remembered (a SHA-256 of user and password,
 * never the password) for the life of the process, as the exporter-toolkit does; checks run one at a
 * time; and when MAX_WAITING_CHECKS are already waiting the request is refused with 503 instead of
 * queueing more work, so a flood of wrong passwords cannot stall the master's heartbeats and IPC. An
 * unknown user is checked against a real hash too, so timing does not tell users apart.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/** Checks queued behind the one running before newcomers are refused (503). */
export const MAX_WAITING_CHECKS = 8;
/** Successful checks remembered; past that the oldest is forgotten (and checked again if it comes back). */
const MAX_REMEMBERED = 256;

/** The host name of a Host header value (`name`, `name:port`, `[v6]:port`), lowercase, without a trailing dot. */
export function hostName(header: string): string {
  const value = header.trim().toLowerCase();
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    return close === -1 ? value : value.slice(1, close);
  }
  const colon = value.lastIndexOf(':');
  const name = colon === -1 ? value : value.slice(0, colon);
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

export class HostCheck {
  readonly #exact = new Set<string>(['localhost']);
  readonly #suffixes: string[] = ['.localhost'];

  /** `ownHost`: the host of --exporter_addr as given; `allowed`: --exporter_allowed_hosts. */
  constructor(ownHost: string, allowed: readonly string[]) {
    this.#exact.add(hostName(ownHost.includes(':') ? `[${ownHost}]` : ownHost));
    for (const name of allowed) {
      if (name.startsWith('.')) {
        this.#exact.add(name.slice(1));
        this.#suffixes.push(name);
      } else {
        this.#exact.add(name);
      }
    }
  }

  /** Whether a request with this Host header (undefined: none) is answered. */
  allows(header: string | undefined): boolean {
    if (header === undefined || header === '') return false;
    const name = hostName(header);
    if (isIP(name) !== 0) return true;
    return this.#exact.has(name) || this.#suffixes.some((suffix) => name.endsWith(suffix));
  }
}

export const AuthVerdict = {
  OK: 'ok',
  DENIED: 'denied',
  BUSY: 'busy',
} as const;
export type AuthVerdict = (typeof AuthVerdict)[keyof typeof AuthVerdict];

type Compare = (password: string, hash: string) => Promise<boolean>;

/** `user:password` of a Basic Authorization header, or null when it is not one. */
function credentials(header: string | undefined): { user: string; password: string } | null {
  if (header === undefined) return null;
  const match = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header);
  if (match === null) return null;
  const decoded = Buffer.from(match[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export class BasicAuth {
  readonly #users: ReadonlyMap<string, string>;
  /** Checked against for an unknown user, so that its check takes as long as a known one's. */
  readonly #decoy: string;
  readonly #compare: Compare;
  readonly #remembered = new Map<string, Buffer>();
  #queue: Promise<unknown> = Promise.resolve();
  #waiting = 0;

  /** `users`: name → bcrypt hash (at least one); `compare`: bcryptjs's compare. */
  constructor(users: Readonly<Record<string, string>>, compare: Compare) {
    this.#users = new Map(Object.entries(users));
    this.#decoy = this.#users.values().next().value as string;
    this.#compare = compare;
  }

  async check(header: string | undefined): Promise<AuthVerdict> {
    const given = credentials(header);
    if (given === null) return AuthVerdict.DENIED;
    const digest = createHash('sha256').update(given.user).update('\0').update(given.password).digest();
    const known = this.#remembered.get(given.user);
    if (known !== undefined && timingSafeEqual(known, digest)) return AuthVerdict.OK;
    if (this.#waiting >= MAX_WAITING_CHECKS) return AuthVerdict.BUSY;
    this.#waiting++;
    const hash = this.#users.get(given.user);
    const run = this.#queue.then(() => this.#compare(given.password, hash ?? this.#decoy));
    this.#queue = run.catch(() => undefined);
    let matched: boolean;
    try {
      matched = (await run) && hash !== undefined;
    } finally {
      this.#waiting--;
    }
    if (!matched) return AuthVerdict.DENIED;
    if (this.#remembered.size >= MAX_REMEMBERED) this.#remembered.delete(this.#remembered.keys().next().value as string);
    this.#remembered.set(given.user, digest);
    return AuthVerdict.OK;
  }
}
