/**
 * The container image's HEALTHCHECK (contrib/container/Containerfile, docs/container.md): one GET of the
 * exporter's /healthz, exit 0 on a 200 and 1 otherwise, with the reason on stderr (podman and docker
 * keep the last lines of a check's output in `inspect`).
 *
 *   node dist/src/observe/healthcheck.js            probes $DRIVESHAFT_EXPORTER_ADDR
 *   node dist/src/observe/healthcheck.js 0.0.0.0:9100
 *
 * Decisions:
 * - /healthz, not /readyz: a container engine restarts (or an orchestrator replaces) what is unhealthy,
 *   and a gearmand that is down makes every pool unready without anything a restart could fix.
 * - The address is the daemon's own --exporter_addr value, so the check follows the port the operator
 *   picked; a wildcard bind (0.0.0.0, ::) is probed on the loopback of the same family.
 * - A separate entry, not a `driveshaft` subcommand: it loads node:http and this file only, not the
 *   daemon's option parser and config loader, since it runs every few seconds for the container's life.
 */
import { request } from 'node:http';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatListenAddress, parseListenAddress } from '../config/listen-address.js';

/** Below the Containerfile's `--timeout=5s`, so that a slow answer is reported by us, with a reason. */
export const HEALTHCHECK_TIMEOUT_MS = 3000;

const WILDCARD_TO_LOOPBACK: Readonly<Record<string, string>> = { '0.0.0.0': '127.0.0.1', '::': '::1' };

/** Null when GET /healthz on `addressText` answered 200 within `timeoutMs`, else why not (one line). */
export function probeHealth(addressText: string | undefined, timeoutMs = HEALTHCHECK_TIMEOUT_MS): Promise<string | null> {
  if (addressText === undefined || addressText.trim() === '') {
    return Promise.resolve('no exporter address: set DRIVESHAFT_EXPORTER_ADDR (the daemon serves /healthz only with --exporter_addr)');
  }
  const address = parseListenAddress(addressText);
  if (typeof address === 'string') return Promise.resolve(`exporter address ${JSON.stringify(addressText)}: ${address}`);
  const host = WILDCARD_TO_LOOPBACK[address.host] ?? address.host;
  const url = `http://${formatListenAddress({ host, port: address.port })}/healthz`;
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs, headers: { connection: 'close' } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? null : `GET ${url}: HTTP ${res.statusCode ?? '?'}`);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) => {
      resolve(`GET ${url}: ${error.code ?? error.message}`);
    });
    req.end();
  });
}

/** True when this file is the script node was started with (not imported by a test). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const problem = await probeHealth(process.argv[2] ?? process.env.DRIVESHAFT_EXPORTER_ADDR);
  if (problem !== null) process.stderr.write(`unhealthy: ${problem}\n`);
  process.exitCode = problem === null ? 0 : 1;
}
