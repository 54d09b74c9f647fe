/**
 * The smallest daemon this design allows, for the memory floor (memory-floor.ts): a node:cluster
 * primary that forks one worker, and a worker that loads what every pool child must (undici's Pool,
 * by the same file the child imports, node:net and node:crypto), builds one Pool, and then idles.
 * No Gearman, no config, no logging: what is left is Node's own cost of two processes.
 */
import cluster from 'node:cluster';
import { createRequire } from 'node:module';

const IDLE_FOREVER_MS = 1 << 30;

if (cluster.isPrimary) {
  const worker = cluster.fork();
  worker.on('message', (message: unknown) => process.send?.({ worker: worker.process.pid, message }));
  setInterval(() => undefined, IDLE_FOREVER_MS);
} else {
  await import('node:net');
  await import('node:crypto');
  const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as new (origin: string, options: object) => object;
  const pool = new Pool('http://127.0.0.1:9', { connections: 10 });
  process.send?.('ready');
  setInterval(() => pool, IDLE_FOREVER_MS);
}
