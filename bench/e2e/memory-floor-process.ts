/**
 * The smallest daemon this design allows, for the memory floor (memory-floor.ts): a node:cluster
 * primary that forks one worker, and a worker that loads what every pool child must (the child's own
 * HTTP adapter, src/child/http/http-client.ts: undici's Client and nothing else of undici; node:net and
 * node:crypto), builds one pool of 10 connections, and then idles.
 * No Gearman, no config, no logging: what is left is Node's own cost of two processes.
 */
import cluster from 'node:cluster';
import type { HttpPool as HttpPoolType } from '../../src/child/http/http-client.js';

const IDLE_FOREVER_MS = 1 << 30;

if (cluster.isPrimary) {
  const worker = cluster.fork();
  worker.on('message', (message: unknown) => process.send?.({ worker: worker.process.pid, message }));
  setInterval(() => undefined, IDLE_FOREVER_MS);
} else {
  await import('node:net');
  await import('node:crypto');
  // Loaded here, not at the top: the primary must not load it.
  const { HttpPool } = (await import('../../src/child/http/http-client.js')) as { HttpPool: typeof HttpPoolType };
  const pool = new HttpPool('http://127.0.0.1:9', { connections: 10 });
  process.send?.('ready');
  setInterval(() => pool, IDLE_FOREVER_MS);
}
