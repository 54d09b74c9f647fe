/**
 * `--exporter_addr` (issue #7): the original's option name and `host:port` form. Decisions:
 * - A port alone (`9100` or `:9100`) binds 127.0.0.1, like --status_host's default: metrics and job
 *   handles are not for the whole network unless the operator says so (`0.0.0.0:9100`).
 * - IPv6 addresses go in brackets (`[::1]:9100`), as in gearman_servers_list; a bare `::1:9100` is
 *   ambiguous and refused with that hint.
 */
import { isIPv6 } from 'node:net';
import type { ListenAddress } from './types.js';

export const DEFAULT_LISTEN_HOST = '127.0.0.1';

const PORT = /^[0-9]{1,5}$/;
const HOST = /^[^\s\x00-\x1f\x7f/\\[\]@]+$/;

function port(text: string): number | null {
  if (!PORT.test(text)) return null;
  const value = Number(text);
  return value >= 1 && value <= 65535 ? value : null;
}

const EXPECTED = 'expected HOST:PORT, [IPv6]:PORT or a port alone (binds 127.0.0.1), with a port from 1 to 65535';

/** The address `text` names, or the problem with it (a phrase for "--exporter_addr: <problem>"). */
export function parseListenAddress(text: string): ListenAddress | string {
  const trimmed = text.trim();
  const alone = port(trimmed.startsWith(':') ? trimmed.slice(1) : trimmed);
  if (alone !== null) return { host: DEFAULT_LISTEN_HOST, port: alone };
  if (trimmed.startsWith('[')) {
    const match = /^\[([^\]]+)\]:([^:]*)$/.exec(trimmed);
    if (match === null || !isIPv6(match[1] as string)) return EXPECTED;
    const p = port(match[2] as string);
    return p === null ? EXPECTED : { host: match[1] as string, port: p };
  }
  const colon = trimmed.lastIndexOf(':');
  if (colon === -1) return EXPECTED;
  const host = trimmed.slice(0, colon);
  if (host.includes(':')) return `${EXPECTED} (put an IPv6 address in brackets: [::1]:9100)`;
  const p = port(trimmed.slice(colon + 1));
  if (p === null || !HOST.test(host)) return EXPECTED;
  return { host, port: p };
}

/** `host:port` again, brackets for IPv6: for messages and logs. */
export function formatListenAddress(address: ListenAddress): string {
  return isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

const ALLOWED_HOST = /^\.?[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?$/;

/**
 * `--exporter_allowed_hosts`: host names separated by commas, lowercased; `.example.com` stands for
 * example.com and every name under it. The names a request's Host may carry besides the ones the
 * exporter always answers (docs/observability.md, Access). The problem as a phrase when one is not a name.
 */
export function parseAllowedHosts(text: string): string[] | string {
  const names = text.split(',').map((name) => name.trim().toLowerCase().replace(/\.$/, '')).filter((name) => name !== '');
  const bad = names.find((name) => !ALLOWED_HOST.test(name) || name.length > 253);
  if (bad !== undefined) return `expected host names separated by commas (a leading "." allows a domain and its subdomains; no ports; ${JSON.stringify(bad)} is not one)`;
  return names;
}
