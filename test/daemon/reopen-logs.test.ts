import assert from 'node:assert/strict';
import { readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createLogger, emitForwardedRecord } from '../../src/log/bunyan-logger.js';
import { makeFileStreamsReopenable, reopenLogFiles } from '../../src/daemon/reopen-logs.js';
import { waitFor } from '../helpers/wait-for.js';
import { tempDir } from '../helpers/temp-dir.js';

test('reopenLogFiles should move every logger, children included, to a fresh file after a rename', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'd.log');
  const logger = createLogger({ name: 'driveshaft', level: 'info', streams: [{ type: 'file', path: file }, { type: 'stderr', level: 'fatal' }] });
  makeFileStreamsReopenable(logger);
  const child = logger.child({ component: 'x' });
  child.info('before');
  await waitFor(() => readFileSync(file, 'utf8').includes('before'), { timeoutMs: 2000, message: 'first record' });
  renameSync(file, `${file}.1`);
  assert.deepEqual(reopenLogFiles(logger), [file]);
  child.info('after, from a child');
  logger.info('after, from the root');
  emitForwardedRecord(logger, { name: 'driveshaft', level: 30, msg: 'after, forwarded', time: new Date().toISOString(), v: 0, pid: 1, hostname: 'h' });
  await waitFor(() => (readFileSync(file, 'utf8').match(/after/g) ?? []).length === 3, { timeoutMs: 2000, message: 'three records in the new file' });
  assert.doesNotMatch(readFileSync(`${file}.1`, 'utf8'), /after/);
  assert.deepEqual(reopenLogFiles(createLogger()), [], 'stdout is not reopened');
});
