/**
 * One admin `status` exchange with one gearmand (its text protocol on the worker port): the master's
 * queue poller and a pool child's "how many jobs wait" both use it. One short-lived connection per
 * query, bounded by a timeout.
 */
import net from 'node:net';
import { adminReplyLength, parseAdminStatus } from './codec/admin.js';
import type { AdminFunctionStatus } from './codec/admin.js';
import type { ServerAddress } from './config/types.js';
import { AdminReplyError, GearmanConnectionError } from './errors.js';

/** A reply longer than this is not a `status` reply from gearmand. */
export const MAX_ADMIN_REPLY_CHARS = 8 * 1024 * 1024;

/** One `status` exchange with one gearmand; rejects with a coded error on any failure or the timeout. */
export function queryStatus(server: ServerAddress, timeoutMs: number, register?: (socket: net.Socket) => void): Promise<AdminFunctionStatus[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    register?.(socket);
    let text = '';
    let settled = false;
    const finish = (error: Error | null, functions?: AdminFunctionStatus[]): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error !== null) reject(error);
      else resolve(functions as AdminFunctionStatus[]);
    };
    const timer = setTimeout(() => finish(new GearmanConnectionError(`${server.label}: no complete admin status reply within ${timeoutMs} ms`)), timeoutMs);
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('status\n'));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_ADMIN_REPLY_CHARS) {
        finish(new AdminReplyError(`${server.label}: admin status reply over ${MAX_ADMIN_REPLY_CHARS} characters`));
        return;
      }
      // The reply ends with a "." line (or is one ERR line): only then is a full parse worth it.
      if (!text.endsWith('\n') || adminReplyLength(text, true) === -1) return;
      try {
        finish(null, parseAdminStatus(text));
      } catch (error) {
        finish(error as Error);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(new GearmanConnectionError(`${server.label}: ${error.code ?? error.message}`, { cause: error })));
    socket.on('close', () => finish(new GearmanConnectionError(`${server.label}: connection closed before the admin status reply ended`)));
  });
}
