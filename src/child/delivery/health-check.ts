/**
 * The half-open probe of a pool whose delivery policy names a health_url: one GET, healthy on any 2xx
 * within the timeout. node:http rather than undici: it runs once per cool-off, and the child loads
 * only undici's Client (see http-client.ts), not its request API.
 */
import type { PoolTls } from '../../config/types.js';
import { tlsConnectOptions } from '../http/endpoint-security.js';

/**
 * node:http or node:https from process.getBuiltinModule, not `import`: on Node 24 and later, importing
 * node:http as an ES module builds its namespace by reading every export, and its lazy WebSocket export
 * then loads Node's own bundled undici with zlib and web streams: 4-5 MiB more RSS in every pool child,
 * health URL or not (measured on Node 24 and 26; test/memory-footprint.test.ts). And asked for at the
 * first probe, not at load: node:https brings node:tls, 3 MiB of private memory in every child of a
 * plain-http pool, which has no health URL or an http one.
 */
function httpGet(secure: boolean): typeof import('node:http').get {
  return secure ? process.getBuiltinModule('node:https').get : process.getBuiltinModule('node:http').get;
}

export interface HealthResult {
  healthy: boolean;
  /** Why it is not healthy ("HTTP 503", "ECONNREFUSED …", "no answer within 5000 ms"), or "HTTP 200". */
  reason: string;
}

/** `tls`: the pool's own, so an https health_url on the endpoint's host is verified like its jobs are. */
export function checkHealth(url: string, timeoutMs: number, tls: PoolTls | null = null): Promise<HealthResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: HealthResult): void => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    const secure = url.startsWith('https:');
    const get = httpGet(secure);
    const options = { timeout: timeoutMs, headers: { 'user-agent': 'driveshaft-health-check' }, ...(secure && tls !== null ? tlsConnectOptions(tls) : {}) };
    const request = get(url, options, (response) => {
      const status = response.statusCode ?? 0;
      // The body is not needed, but it must be drained for the socket to close cleanly.
      response.resume();
      finish({ healthy: status >= 200 && status < 300, reason: `HTTP ${status}` });
    });
    request.on('timeout', () => {
      request.destroy();
      finish({ healthy: false, reason: `no answer within ${timeoutMs} ms` });
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      finish({ healthy: false, reason: error.code === undefined ? error.message : `${error.code} ${error.message}` });
    });
  });
}
