/**
 * One floor process of the many-pools benchmark (forked with an IPC channel, as a pool child is):
 * - `bare`: nothing loaded; what any Node process costs.
 * - `pool URL CONNECTIONS`: the pool child's HTTP adapter (src/child/http/http-client.ts: undici's Client
 *   and nothing else of undici) loaded, its parser's compiler chosen as a child of CONNECTIONS slots
 *   has it, and one pool of CONNECTIONS to URL's origin built; on a `work` message it POSTs `jobs` small JSON bodies to URL
 *   through it (CONNECTIONS at a time), then answers `worked`. On `gc` (with --expose-gc) one full collection, then `collected`.
 * The least a Node process per pool can hold, idle and after the same work as a pool.
 */
import type { HttpPool as HttpPoolType } from '../../src/child/http/http-client.js';

const IDLE_FOREVER_MS = 1 << 30;

interface WorkMessage {
  type: 'work';
  jobs: number;
}

const [mode = 'bare', target = 'http://127.0.0.1:9/', connectionsArg = '2'] = process.argv.slice(2);
const connections = Number(connectionsArg);
setInterval(() => undefined, IDLE_FOREVER_MS);

if (mode === 'pool') {
  // Loaded here, not at the top: the `bare` process must not load it.
  const { HttpPool } = (await import('../../src/child/http/http-client.js')) as { HttpPool: typeof HttpPoolType };
  // The parser's compiler as a pool child of this size has it (src/child/wasm-tiering.ts).
  const { applyWasmTiering } = await import('../../src/child/wasm-tiering.js');
  applyWasmTiering(connections);
  const url = new URL(target);
  const pool = new HttpPool(url.origin, { connections });
  const post = (index: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ workload: `w${String(index).padStart(15, '0')}`, handle: `H:floor:${index}`, unique: `floor-${index}` });
      const chunks: Buffer[] = [];
      pool.dispatch(
        { method: 'POST', path: url.pathname, headers: ['content-type', 'application/json'], body, closeConnection: false, serverName: undefined },
        {
          onHeaders: () => undefined,
          onData: (chunk) => void chunks.push(chunk),
          onEnd: () => resolve(),
          onFailure: (error) => reject(error),
        },
      );
    });
  process.on('message', (message: WorkMessage | { type: 'gc' }) => {
    if (message.type === 'gc') {
      (globalThis as { gc?: () => void }).gc?.();
      process.send?.({ type: 'collected' });
      return;
    }
    const lanes = Array.from({ length: connections }, async (_, lane) => {
      for (let i = lane; i < message.jobs; i += connections) await post(i);
    });
    void Promise.all(lanes).then(
      () => process.send?.({ type: 'worked' }),
      (error: unknown) => process.send?.({ type: 'failed', error: String(error) }),
    );
  });
}
process.send?.({ type: 'ready' });
