/**
 * Binds a master-side listener (status port, exporter). `exclusive` so a cluster master never shares the
 * handle with its workers. A bind error rejects (the caller exits 2 naming its option); errors after the
 * bind are logged, never thrown, so a listener fault cannot take the daemon down.
 */
import type { AddressInfo, Server } from 'node:net';
import type { Logger } from '../log/logger.js';

export function listenOn(server: Server, host: string, port: number, log: Logger, what: string): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      server.on('error', (error) => log.error({ err: error }, `${what} error: ${error.message}`));
      const address = server.address() as AddressInfo;
      resolve({ host: address.address, port: address.port });
    });
  });
}
