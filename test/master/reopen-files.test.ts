/**
 * USR2 reaches the pools' dead-letter files: the master asks each child to reopen them over IPC and
 * logs what each reopened, or that a child did not answer.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadJobsConfig } from '../../src/config/jobs-config.js';
import type { DaemonOptions } from '../../src/config/types.js';
import { clusterForker } from '../../src/master/child-process.js';
import { Master } from '../../src/master/master.js';
import type { SignalSource } from '../../src/master/signals.js';
import { tempDir } from '../helpers/temp-dir.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';
import { FAKE_CHILD, daemonOptions, fastTiming } from './support.js';
import { memoryLogger, type LogRecord } from '../helpers/memory-logger.js';
import { writeJobs } from '../helpers/jobs-file.js';

/** The real child entry with a DeadLetterFile open at $DEAD_LETTER_FILE. */
const DEAD_LETTER_CHILD = fileURLToPath(new URL('../child/fixtures/dead-letter-child.js', import.meta.url));

function options(file: string): DaemonOptions {
  return daemonOptions(file);
}

async function startMaster(t: TestContext, exec: string): Promise<{ records: LogRecord[]; signals: EventEmitter }> {
  const file = path.join(tempDir(t), 'jobs.json');
  // Nothing listens there: the real child is ready without gearmand and only has to answer IPC.
  writeJobs(file, [`127.0.0.1:${await freePort()}`], { Regular: { uri: 'http://127.0.0.1:1/job', count: 1, jobs: ['Sum'] } });
  const load = (f: string) => loadJobsConfig(f, { maxRunningTimeMs: 1000, requestFormat: 'json' });
  const { logger, records } = memoryLogger();
  const signals = new EventEmitter();
  const master = new Master({
    options: options(file),
    config: load(file),
    logger,
    fork: clusterForker(exec),
    loadConfig: load,
    checkBudget: () => undefined,
    signals: signals as unknown as SignalSource,
    timing: fastTiming(),
  });
  t.after(() => master.stop('hard'));
  await master.start();
  return { records, signals };
}

test('USR2 should make every pool child reopen its dead-letter files, and the master log them', async (t) => {
  const deadLetterFile = path.join(tempDir(t), 'dead.jsonl');
  // cluster.fork passes the master's environment on to the child.
  process.env['DEAD_LETTER_FILE'] = deadLetterFile;
  t.after(() => delete process.env['DEAD_LETTER_FILE']);
  const { records, signals } = await startMaster(t, DEAD_LETTER_CHILD);
  signals.emit('SIGUSR2', 'SIGUSR2');
  const record = await waitFor(() => records.find((r) => r['event'] === 'files-reopened'), { timeoutMs: 10_000, message: 'a files-reopened record' });
  assert.equal(record['pool'], 'Regular');
  assert.deepEqual(record['files'], [deadLetterFile]);
  assert.ok(records.some((r) => r['event'] === 'logs-reopened'), 'the log files are reopened as before');
});

test('USR2 should log a pool child that does not answer reopen-files', async (t) => {
  // The fake child answers the protocol it knows and ignores reopen-files.
  const { records, signals } = await startMaster(t, FAKE_CHILD);
  signals.emit('SIGUSR2', 'SIGUSR2');
  const record = await waitFor(() => records.find((r) => r['event'] === 'files-reopen-failed'), { timeoutMs: 10_000, message: 'a files-reopen-failed record' });
  assert.equal(record['pool'], 'Regular');
  assert.match(String(record['reason']), /no reply to reopen-files/);
});
