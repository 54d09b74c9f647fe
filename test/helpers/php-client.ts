/**
 * Runs test/php/client.php, a php-gearman (Debian's php-gearman, libgearman 1.1) client, and returns
 * the JSON lines it prints: the events a PHP application's callbacks see, in order.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** dist/test/helpers/php-client.js → test/php/client.php (PHP files are not compiled). */
export const PHP_CLIENT = fileURLToPath(new URL('../../../test/php/client.php', import.meta.url));

/** `php client.php …args`; rejects (with PHP's output) on a non-zero exit or after `timeoutMs`. */
export async function php(args: string[], timeoutMs = 30_000): Promise<unknown[][]> {
  const { stdout } = await execFileAsync('php', [PHP_CLIENT, ...args], { timeout: timeoutMs });
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown[]);
}
