/**
 * `driveshaft replay` against a real gearmand: letters written by the real DeadLetterFile are replayed,
 * and a real worker (RecordingWorker, on the project's codec) takes the jobs, so the tests see the
 * bytes gearmand hands to a worker. Queue counts come from gearmand's own admin `status` and
 * `prioritystatus` commands.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DeadLetterFile, encodeDeadLetter, type DeadLetter } from '../../src/child/delivery/dead-letters.js';
import { replayMain, type ReplayOutput } from '../../src/replay/replay.js';
import { parseReplayCommandLine } from '../../src/replay/options.js';
import { tempDir } from '../helpers/temp-dir.js';
import { freePort } from '../helpers/free-port.js';
import { startGearmand, type Gearmand } from '../helpers/gearmand.js';
import { waitFor } from '../helpers/wait-for.js';
import { RecordingWorker } from './recording-worker.js';

const BIN = fileURLToPath(new URL('../../../bin/driveshaft.js', import.meta.url));
const execFileAsync = promisify(execFile);

/** NUL, bytes that are not UTF-8, CR/LF, a quote and a backslash. */
const BINARY = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x22, 0x5c, 0x00, 0xc3]);

interface Captured extends ReplayOutput {
  stdout: string[];
  stderr: string[];
}

function capture(): Captured {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (line) => stdout.push(line), err: (line) => stderr.push(line) };
}

function letter(fields: Partial<DeadLetter> = {}): DeadLetter {
  return {
    pool: 'Regular',
    functionName: 'Sum',
    handle: Buffer.from('H:vm:1'),
    unique: Buffer.from('u-1'),
    workload: Buffer.from('[1,2]'),
    server: '127.0.0.1:4730',
    attempts: 5,
    reason: 'HTTP 503',
    ...fields,
  };
}

async function writeLetters(file: string, letters: DeadLetter[]): Promise<void> {
  const writer = new DeadLetterFile(file);
  try {
    for (const one of letters) await writer.write(one);
  } finally {
    await writer.close();
  }
}

async function gearmand(t: TestContext): Promise<Gearmand> {
  const server = await startGearmand();
  t.after(() => server.stop());
  return server;
}

/** Jobs gearmand holds per function (queued plus running), from its admin `status`. */
async function queued(server: Gearmand): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const row of await server.status()) if (row.total > 0) counts[row.function] = row.total;
  return counts;
}

test('replayed letters should reach a worker with their exact function, unique and workload bytes', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  const letters = [
    letter({ functionName: 'Sum', unique: Buffer.from('order-1'), workload: Buffer.from('[1,2]') }),
    letter({ functionName: 'Binary', unique: Buffer.from([0x75, 0xff, 0xfe, 0x2d, 0x31]), workload: BINARY }),
    letter({ functionName: 'Binary', unique: Buffer.from('ünïcode-✓'), workload: Buffer.alloc(0) }),
    letter({ functionName: 'Sum', unique: Buffer.from('big'), workload: Buffer.alloc(3 * 1024 * 1024, 0xab) }),
  ];
  await writeLetters(file, letters);
  const sizeBefore = statSync(file).size;

  const output = capture();
  const code = await replayMain(['--file', file, '--servers', server.label], output);
  assert.equal(code, 0, output.stderr.join('\n'));
  assert.deepEqual(output.stdout, ['replayed 4 of 4 letters (0 skipped by filter, 0 bad lines)']);
  assert.deepEqual(output.stderr, []);
  assert.equal(statSync(file).size, sizeBefore, 'replay never changes the file');

  const worker = await RecordingWorker.start(server.port, ['Sum', 'Binary']);
  t.after(() => worker.close());
  await waitFor(() => worker.jobs.length === letters.length || undefined, { timeoutMs: 15_000, message: 'the worker to run the 4 replayed jobs' });
  const key = (functionName: string, unique: Buffer): string => `${functionName}/${unique.toString('hex')}`;
  const ran = new Map(worker.jobs.map((job) => [key(job.functionName, job.unique), job.workload]));
  for (const sent of letters) {
    const workload = ran.get(key(sent.functionName, sent.unique));
    assert.ok(workload !== undefined, `no job ran for ${key(sent.functionName, sent.unique)}; ran ${[...ran.keys()].join(', ')}`);
    assert.ok(workload.equals(sent.workload), `${sent.functionName}: workload bytes differ`);
  }
});

test('--function, --since and --until should select letters; the rest is counted as skipped', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  const at = (time: string): Date => new Date(time);
  await writeLetters(file, [
    letter({ functionName: 'A', unique: Buffer.from('a-09'), time: at('2026-12-01T09:00:00Z') }),
    letter({ functionName: 'A', unique: Buffer.from('a-10'), time: at('2026-12-01T10:00:00Z') }),
    letter({ functionName: 'B', unique: Buffer.from('b-10'), time: at('2026-12-01T10:30:00Z') }),
    letter({ functionName: 'A', unique: Buffer.from('a-11'), time: at('2026-12-01T11:00:00Z') }),
    letter({ functionName: 'C', unique: Buffer.from('c-10'), time: at('2026-12-01T10:45:00Z') }),
    letter({ functionName: 'A', unique: Buffer.from('a-12'), time: at('2026-12-01T12:00:00Z') }),
  ]);

  const output = capture();
  const code = await replayMain(
    ['--file', file, '--servers', server.label, '--function', 'A', '--function=B', '--since', '2026-12-01T10:00:00Z', '--until', '2026-12-01T12:00:00+00:00'],
    output,
  );
  assert.equal(code, 0, output.stderr.join('\n'));
  assert.deepEqual(output.stdout, ['replayed 3 of 6 letters (3 skipped by filter, 0 bad lines)']);
  // since is inclusive (a-10), until exclusive (a-12 is out), C is not selected.
  assert.deepEqual(await queued(server), { A: 2, B: 1 });

  const worker = await RecordingWorker.start(server.port, ['A', 'B', 'C']);
  t.after(() => worker.close());
  await waitFor(() => worker.jobs.length === 3 || undefined, { timeoutMs: 15_000, message: 'the 3 selected jobs to run' });
  assert.deepEqual(worker.jobs.map((job) => job.unique.toString()).sort(), ['a-10', 'a-11', 'b-10']);
});

test('--dry-run should list the selected letters and submit nothing', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, [
    letter({ functionName: 'Sum', unique: Buffer.from('u-1'), time: new Date('2026-12-01T10:00:00Z') }),
    letter({ functionName: 'Sum', unique: Buffer.from([0xff]), workload: BINARY }),
    letter({ functionName: 'Other' }),
  ]);
  const output = capture();
  const code = await replayMain(['--file', file, '--servers', server.label, '--dry-run', '--function', 'Sum'], output);
  assert.equal(code, 0, output.stderr.join('\n'));
  assert.deepEqual(output.stdout, [
    'would submit line 1: function "Sum", unique "u-1", 5 workload bytes (2026-12-01T10:00:00.000Z, pool "Regular", 5 attempts, reason "HTTP 503")',
    `would submit line 2: function "Sum", unique base64 /w==, ${BINARY.length} workload bytes (${(JSON.parse(readFileSync(file, 'utf8').split('\n')[1] as string) as { time: string }).time}, pool "Regular", 5 attempts, reason "HTTP 503")`,
    'dry run: would replay 2 of 3 letters (1 skipped by filter, 0 bad lines)',
  ]);
  assert.deepEqual(await queued(server), {}, 'gearmand holds no job');

  // The same run without --dry-run does queue them: the check above can see jobs.
  assert.equal(await replayMain(['--file', file, '--servers', server.label, '--function', 'Sum'], capture()), 0);
  assert.deepEqual(await queued(server), { Sum: 2 });
});

test('malformed lines should be reported with their line numbers and skipped, the others replayed, exit 1', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, [letter({ unique: Buffer.from('first') })]);
  const good = readFileSync(file, 'utf8').trimEnd();
  const record = JSON.parse(good) as Record<string, unknown>;
  appendFileSync(
    file,
    [
      '{"time":"2026-12-01T1', // cut short by a failed write
      '', // blank: not a letter, not an error
      JSON.stringify({ ...record, workload: 'not base64!' }),
      JSON.stringify({ ...record, function: '' }),
      JSON.stringify({ ...record, time: 'yesterday' }),
      '[1,2]',
      JSON.stringify({ ...record, unique: 'last' }),
    ].join('\n') + '\n',
  );
  const output = capture();
  const code = await replayMain(['--file', file, '--servers', server.label], output);
  assert.equal(code, 1);
  assert.deepEqual(output.stdout, ['replayed 2 of 2 letters (0 skipped by filter, 5 bad lines)']);
  assert.equal(output.stderr.length, 5, output.stderr.join('\n'));
  const expected: Array<[number, RegExp]> = [
    [2, /not JSON/],
    [4, /"workload": expected base64/],
    [5, /"function": expected a non-empty function name/],
    [6, /"time": expected an ISO 8601 time, got "yesterday"/],
    [7, /expected a JSON object, got \[1,2\]/],
  ];
  expected.forEach(([line, pattern], index) => {
    const message = output.stderr[index] as string;
    assert.ok(message.startsWith(`${file} line ${line}: `), message);
    assert.match(message, pattern);
    assert.match(message, /; skipped$/);
  });
  assert.deepEqual(await queued(server), { Sum: 2 });
});

test('gearmand coalesces a replayed letter whose unique is still queued: replaying twice adds no job', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, [letter({ unique: Buffer.from('same') }), letter({ unique: Buffer.from('other') })]);
  assert.equal(await replayMain(['--file', file, '--servers', server.label], capture()), 0);
  assert.equal(await replayMain(['--file', file, '--servers', server.label], capture()), 0);
  assert.deepEqual(await queued(server), { Sum: 2 });
});

test('--priority should submit with the matching background packet', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, [letter({ functionName: 'High', unique: Buffer.from('h') }), letter({ functionName: 'Low', unique: Buffer.from('l') })]);
  assert.equal(await replayMain(['--file', file, '--servers', server.label, '--priority', 'high', '--function', 'High'], capture()), 0);
  assert.equal(await replayMain(['--file', file, '--servers', server.label, '--priority=low', '--function', 'Low'], capture()), 0);
  // prioritystatus: FUNCTION \t HIGH \t NORMAL \t LOW \t WORKERS
  const rows = (await server.admin('prioritystatus')).split('\n').filter((line) => /^(High|Low)\t/.test(line)).map((line) => line.split('\t').slice(0, 4).join(' ')).sort();
  assert.deepEqual(rows, ['High 1 0 0', 'Low 0 0 1']);
});

test('a letter gearmand refuses should be reported with its line, the others still replayed', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  // gearmand 1.1 refuses uniques over 64 bytes with ERROR ARGUMENT_TOO_LARGE and keeps the connection.
  await writeLetters(file, [letter({ unique: Buffer.from('ok-1') }), letter({ unique: Buffer.alloc(100, 0x78) }), letter({ unique: Buffer.from('ok-2') })]);
  const output = capture();
  const code = await replayMain(['--file', file, '--servers', server.label], output);
  assert.equal(code, 1);
  assert.equal(output.stderr.length, 1, output.stderr.join('\n'));
  assert.match(output.stderr[0] as string, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 2: gearmand ${server.label} refused the job: ERROR ARGUMENT_TOO_LARGE`));
  assert.deepEqual(output.stdout, ['replayed 2 of 3 letters (0 skipped by filter, 0 bad lines)']);
  assert.deepEqual(await queued(server), { Sum: 2 });
});

test('--servers should use the first server that accepts a connection, with a line for every server skipped', async (t) => {
  const server = await gearmand(t);
  const deadPort = await freePort();
  const otherDeadPort = await freePort();
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, [letter()]);
  const output = capture();
  assert.equal(await replayMain(['--file', file, '--servers', `127.0.0.1:${deadPort},${server.label}`], output), 0, output.stderr.join('\n'));
  assert.deepEqual(await queued(server), { Sum: 1 });
  assert.equal(output.stderr.length, 1, output.stderr.join('\n'));
  assert.match(output.stderr[0] as string, new RegExp(`^--servers: gearmand 127\\.0\\.0\\.1:${deadPort} unreachable \\(connect ECONNREFUSED[^)]*\\); skipped$`));

  const none = capture();
  assert.equal(await replayMain(['--file', file, '--servers', `127.0.0.1:${deadPort},127.0.0.1:${otherDeadPort}`], none), 1);
  assert.deepEqual(
    none.stderr.map((line) => line.replace(/\(connect ECONNREFUSED[^)]*\)/, '(refused)')),
    [
      `--servers: gearmand 127.0.0.1:${deadPort} unreachable (refused); skipped`,
      `--servers: gearmand 127.0.0.1:${otherDeadPort} unreachable (refused); skipped`,
      'no gearmand of --servers accepted a connection; nothing was submitted',
    ],
  );
});

/** Whether some connection to 127.0.0.1:port is established (Linux /proc/net/tcp: local port, state 01). */
function establishedTo(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .some((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[1]?.endsWith(`:${hexPort}`) === true && fields[3] === '01';
    });
}

test('a connection lost mid-replay should stop the replay and name the first letter not confirmed', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, [letter({ unique: Buffer.from('a') }), letter({ unique: Buffer.from('b') }), letter({ unique: Buffer.from('c') })]);
  // A stopped gearmand still completes the TCP handshake (the kernel does) but answers nothing.
  await server.kill('SIGSTOP');
  const output = capture();
  const done = replayMain(['--file', file, '--servers', server.label], output);
  await waitFor(() => establishedTo(server.port), { timeoutMs: 10_000, message: 'replay to connect to the stopped gearmand' });
  await server.kill('SIGKILL');
  assert.equal(await done, 1);
  assert.deepEqual(output.stdout, ['replayed 0 of 3 letters (0 skipped by filter, 0 bad lines)']);
  assert.equal(output.stderr.length, 1, output.stderr.join('\n'));
  assert.match(output.stderr[0] as string, new RegExp(`^stopped: gearmand ${server.label.replace(/\./g, '\\.')}: .+; 3 letters from line 1 on were not confirmed`));
  assert.ok((output.stderr[0] as string).endsWith(`; to resume: driveshaft replay --file ${file} --servers ${server.label} --from-line 1`), output.stderr[0]);
});

test('--reply-timeout should bound the wait for a stopped gearmand, and the report should name the command to resume', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, [letter({ unique: Buffer.from('a') }), letter({ unique: Buffer.from('b') })]);
  await server.kill('SIGSTOP');
  const output = capture();
  const started = Date.now();
  const code = await replayMain(['--file', file, '--servers', server.label, '--reply-timeout', '0.5', '--function', 'Sum', '--priority', 'low'], output);
  const elapsed = Date.now() - started;
  await server.kill('SIGCONT');
  assert.equal(code, 1);
  assert.ok(elapsed >= 450 && elapsed < 10_000, `gave up after ${elapsed} ms`);
  assert.deepEqual(output.stderr, [
    `stopped: gearmand ${server.label}: no reply to a submit within 0.5 s (--reply-timeout); 2 letters from line 1 on were not confirmed ` +
      '(those already sent may have been queued: replaying them again is coalesced only while they are still queued); ' +
      `to resume: driveshaft replay --file ${file} --servers ${server.label} --function Sum --priority low --reply-timeout 0.5 --from-line 1`,
  ]);
});

test('a torn last line should be reported and skipped, and alone should not make the exit status 1', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, [letter({ unique: Buffer.from('whole-1') }), letter({ unique: Buffer.from('whole-2') })]);
  // What a full disk leaves: the start of a letter and no line end (case 2 of issue 19 measured 77 bytes).
  const torn = (readFileSync(file, 'utf8').split('\n')[0] as string).slice(0, 77);
  appendFileSync(file, torn);
  const output = capture();
  assert.equal(await replayMain(['--file', file, '--servers', server.label], output), 0, output.stderr.join('\n'));
  assert.deepEqual(output.stdout, ['replayed 2 of 2 letters (0 skipped by filter, 0 bad lines, 1 torn last line)']);
  assert.equal(output.stderr.length, 1, output.stderr.join('\n'));
  assert.match(output.stderr[0] as string, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 3: torn last line \\(77 bytes without a line end: .*\\); skipped`));
  assert.deepEqual(await queued(server), { Sum: 2 });

  // A whole letter without its line end is a torn write too (the line end is the last byte written).
  const wholeButUnended = path.join(tempDir(t), 'unended.jsonl');
  await writeLetters(wholeButUnended, [letter({ unique: Buffer.from('kept') }), letter({ unique: Buffer.from('unended') })]);
  const text = readFileSync(wholeButUnended, 'utf8');
  writeFileSync(wholeButUnended, text.slice(0, -1));
  const unended = capture();
  assert.equal(await replayMain(['--file', wholeButUnended, '--servers', server.label, '--dry-run'], unended), 0);
  assert.equal(unended.stdout.at(-1), 'dry run: would replay 1 of 1 letters (0 skipped by filter, 0 bad lines, 1 torn last line)');
  assert.match(unended.stderr[0] as string, /line 2: torn last line .*end it with a newline and replay it with --from-line 2\)$/);
});

test('--from-line should skip the lines before it, and refuse a line past the end of the file', async (t) => {
  const server = await gearmand(t);
  const file = path.join(tempDir(t), 'dead.jsonl');
  await writeLetters(file, ['l1', 'l2', 'l3', 'l4'].map((unique) => letter({ unique: Buffer.from(unique) })));
  appendFileSync(file, 'garbage before the resume point would not be reported again\n');
  const lines = readFileSync(file, 'utf8').split('\n');
  writeFileSync(file, [lines[0], lines[4], lines[1], lines[2], lines[3], ''].join('\n'));
  const output = capture();
  assert.equal(await replayMain(['--file', file, '--servers', server.label, '--from-line', '3'], output), 0, output.stderr.join('\n'));
  assert.deepEqual(output.stdout, ['replayed 3 of 3 letters from line 3 (0 skipped by filter, 0 bad lines)']);
  assert.deepEqual(output.stderr, []);
  const worker = await RecordingWorker.start(server.port, ['Sum']);
  t.after(() => worker.close());
  await waitFor(() => worker.jobs.length === 3 || undefined, { timeoutMs: 15_000, message: 'the 3 letters from line 3 on to run' });
  assert.deepEqual(worker.jobs.map((job) => job.unique.toString()).sort(), ['l2', 'l3', 'l4']);

  const past = capture();
  assert.equal(await replayMain(['--file', file, '--servers', server.label, '--from-line', '6'], past), 1);
  assert.deepEqual(past.stderr, [`--from-line 6: ${file} has only 5 lines; nothing was replayed`]);
});

/** The words of a command line printed by replay (the test's paths hold no character the shell would quote). */
function commandWords(command: string): string[] {
  assert.doesNotMatch(command, /['"\\]/, 'no quoting expected in this test');
  return command.split(' ');
}

test('a replay interrupted by gearmand dying mid-replay and resumed with the printed command should submit every letter exactly once', async (t) => {
  const dir = tempDir(t);
  // gearmand's persistent queue keeps what it confirmed across the crash, as it would in production.
  const server = await startGearmand({ extraArgs: ['-q', 'libsqlite3', '--libsqlite3-db', path.join(dir, 'queue.sqlite')] });
  t.after(() => server.stop());
  const file = path.join(dir, 'dead.jsonl');
  const total = 2000;
  const uniques = Array.from({ length: total }, (_, index) => `order-${index}`);
  writeFileSync(file, Buffer.concat(uniques.map((unique) => encodeDeadLetter(letter({ unique: Buffer.from(unique), workload: Buffer.from(unique) })))));

  const first = capture();
  const running = replayMain(['--file', file, '--servers', server.label], first);
  let finished = false;
  void running.then(() => (finished = true));
  await waitFor(async () => ((await queued(server)).Sum ?? 0) >= total / 4 || undefined, { timeoutMs: 60_000, intervalMs: 5, message: 'a quarter of the letters to be queued' });
  // Frozen first, so that the replay is known to be mid-way when gearmand dies.
  await server.kill('SIGSTOP');
  assert.equal(finished, false, 'the replay finished before gearmand was stopped; the file is too short for this machine');
  await server.kill('SIGKILL');
  assert.equal(await running, 1);
  const stopped = first.stderr.find((line) => line.startsWith('stopped: '));
  assert.ok(stopped !== undefined, first.stderr.join('\n'));
  const match = /; (\d+) letters from line (\d+) on were not confirmed .*; to resume: (driveshaft replay .*)$/.exec(stopped);
  assert.ok(match !== null, stopped);
  const [, unconfirmed, fromLine, command] = match as unknown as [string, string, string, string];
  assert.ok(Number(fromLine) > 1 && Number(fromLine) <= total, stopped);
  assert.equal(Number(unconfirmed), total - Number(fromLine) + 1);

  await server.restart();
  const words = commandWords(command);
  assert.deepEqual(words.slice(0, 2), ['driveshaft', 'replay']);
  assert.deepEqual(words.slice(-2), ['--from-line', fromLine]);
  const resumed = capture();
  assert.equal(await replayMain(words.slice(2), resumed), 0, resumed.stderr.join('\n'));
  assert.deepEqual(resumed.stdout, [`replayed ${unconfirmed} of ${unconfirmed} letters from line ${fromLine} (0 skipped by filter, 0 bad lines)`]);

  // Letters gearmand queued but could not confirm before it died were coalesced by their unique.
  assert.deepEqual(await queued(server), { Sum: total });
  const worker = await RecordingWorker.start(server.port, ['Sum']);
  t.after(() => worker.close());
  await waitFor(async () => (worker.jobs.length >= total && Object.keys(await queued(server)).length === 0) || undefined, { timeoutMs: 60_000, message: 'every queued job to run' });
  assert.equal(worker.jobs.length, total);
  assert.deepEqual(new Set(worker.jobs.map((job) => job.unique.toString())), new Set(uniques));
  for (const job of worker.jobs) assert.equal(job.workload.toString(), job.unique.toString());
});

test('the replay options should be checked, one clear problem at a time', () => {
  const problems: Array<[string[], RegExp]> = [
    [[], /^--file: is required/],
    [['--file', 'x'], /^--servers: is required/],
    [['--file', 'x', '--servers', 'h:99999'], /^--servers: "h:99999": expected/],
    [['--file', 'x', '--servers', 'a,a:4730'], /^--servers: a:4730 is listed twice/],
    [['--file', 'x', '--servers', 'h', '--since', '2026-12-01T10:00'], /^--since: expected an ISO 8601 time/],
    [['--file', 'x', '--servers', 'h', '--since', '2026-12-02', '--until', '2026-12-01'], /^--until: must be later than --since/],
    [['--file', 'x', '--servers', 'h', '--priority', 'urgent'], /^--priority: expected normal, high or low/],
    [['--file', 'x', '--servers', 'h', '--dry-run=yes'], /^--dry-run: takes no value/],
    [['--file', 'x', '--file', 'y', '--servers', 'h'], /^--file: given twice/],
    [['--file', '--servers', 'h'], /^--file: expected a value/],
    [['--file', 'x', '--servers', 'h', '--bogus'], /^--bogus: unknown option/],
    [['--file', 'x', '--servers', 'h', 'stray'], /^"stray": unexpected argument/],
    [['--file', 'x', '--servers', 'h', '--from-line', '0'], /^--from-line: expected a line number \(1 or more\), got "0"$/],
    [['--file', 'x', '--servers', 'h', '--from-line', '3009th'], /^--from-line: expected a line number/],
    [['--file', 'x', '--servers', 'h', '--reply-timeout', '0'], /^--reply-timeout: expected a positive number of seconds, got "0"$/],
    [['--file', 'x', '--servers', 'h', '--reply-timeout', '30s'], /^--reply-timeout: expected a positive number of seconds, got "30s"$/],
  ];
  for (const [argv, pattern] of problems) {
    assert.throws(() => parseReplayCommandLine(argv), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'DS_OPTIONS', argv.join(' '));
      assert.match(error.message, pattern, argv.join(' '));
      assert.ok(!error.message.includes('\n'));
      return true;
    });
  }
  const parsed = parseReplayCommandLine(['--file', '/f', '--servers', 'g1,[::1]:4731', '--since', '2026-12-01', '--function', 'A', '--function', 'A']);
  assert.equal(parsed.kind, 'run');
  if (parsed.kind !== 'run') return;
  assert.deepEqual(parsed.options.servers.map((s) => s.label), ['g1:4730', '[::1]:4731']);
  assert.equal(parsed.options.sinceMs, Date.parse('2026-12-01T00:00:00Z'), 'a date alone is midnight UTC');
  assert.deepEqual(parsed.options.functions, ['A']);
  assert.equal(parsed.options.priority, 'normal');
  assert.equal(parsed.options.fromLine, 1);
  assert.equal(parsed.options.replyTimeoutMs, 30_000);
});

/** Runs `node bin/driveshaft.js replay …` to completion. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [BIN, 'replay', ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test('the replay command should exit 0 when complete, 1 on a bad line or an unreachable server, 2 on bad options or file', async (t) => {
  const server = await gearmand(t);
  const dir = tempDir(t);
  const file = path.join(dir, 'dead.jsonl');
  await writeLetters(file, [letter({ unique: Buffer.from('cli-1') }), letter({ unique: Buffer.from('cli-2'), workload: BINARY })]);

  const ok = await cli(['--file', file, '--servers', server.label]);
  assert.deepEqual(ok, { code: 0, stdout: 'replayed 2 of 2 letters (0 skipped by filter, 0 bad lines)\n', stderr: '' });

  const usage = await cli(['--file', file, '--servers', server.label, '--priority', 'urgent']);
  assert.equal(usage.code, 2);
  assert.equal(usage.stdout, '');
  assert.equal(usage.stderr, 'driveshaft replay: --priority: expected normal, high or low, got "urgent"\n');

  const missing = await cli(['--file', path.join(dir, 'nope.jsonl'), '--servers', server.label]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^driveshaft replay: --file \S+nope\.jsonl: cannot read: ENOENT/);
  const directory = await cli(['--file', dir, '--servers', server.label]);
  assert.deepEqual(directory, { code: 2, stdout: '', stderr: `driveshaft replay: --file ${dir}: cannot read: is a directory\n` });

  appendFileSync(file, 'garbage\n');
  const bad = await cli(['--file', file, '--servers', server.label, '--dry-run']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^driveshaft replay: \S+dead\.jsonl line 3: not JSON .*; skipped\n$/);
  assert.match(bad.stdout, /^would submit line 1: .*\nwould submit line 2: .*\ndry run: would replay 2 of 2 letters \(0 skipped by filter, 1 bad lines\)\n$/);

  const deadPort = await freePort();
  const unreachable = await cli(['--file', file, '--servers', `127.0.0.1:${deadPort}`]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /no gearmand of --servers accepted a connection; nothing was submitted/);

  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: driveshaft replay --file PATH --servers/);
  assert.match(help.stdout, /^ {2}--from-line N /m);
  assert.match(help.stdout, /^ {2}--reply-timeout S .*\n.*\(default 30;/m);
  assert.deepEqual(await queued(server), { Sum: 2 }, 'only the first run submitted anything');
});
