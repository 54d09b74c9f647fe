import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controlHelpText, parseControlCommandLine } from '../../src/control/pause-options.js';
import type { ControlCommandLine } from '../../src/control/pause-options.js';

function options(command: 'pause' | 'resume' | 'drain', argv: string[], env: NodeJS.ProcessEnv = {}) {
  const parsed: ControlCommandLine = parseControlCommandLine(command, argv, env);
  assert.equal(parsed.kind, 'run');
  return parsed.kind === 'run' ? parsed.options : null;
}

function problem(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseControlCommandLine('pause', argv, env);
  } catch (error) {
    return (error as Error).message;
  }
  return 'no problem';
}

test('parseControlCommandLine should read the pool, function, port, host and timeout, defaulting from the environment', () => {
  assert.deepEqual(options('pause', ['--pool', 'Regular', '--function=Resize image', '--status_port', '4731']), {
    command: 'pause',
    pool: 'Regular',
    functionName: 'Resize image',
    host: '127.0.0.1',
    port: 4731,
    timeoutMs: 30_000,
  });
  assert.deepEqual(options('drain', ['--pool', 'R'], { DRIVESHAFT_STATUS_PORT: '4731', DRIVESHAFT_STATUS_HOST: '::' }), { command: 'drain', pool: 'R', functionName: null, host: '::1', port: 4731, timeoutMs: null });
  assert.equal(options('resume', ['--pool', 'R', '--status_port', '1', '--status_host', '0.0.0.0', '--timeout', '2.5'])?.timeoutMs, 2500);
  assert.equal(options('resume', ['--pool', 'R', '--status_port', '1', '--status_host', '[::1]'])?.host, '::1');
  assert.equal(options('resume', ['--pool', 'R', '--status_port', '4000'], { DRIVESHAFT_STATUS_PORT: '1' })?.port, 4000, 'the option wins over the environment');
  assert.deepEqual(parseControlCommandLine('resume', ['--pool', 'R', '--help']), { kind: 'help', text: controlHelpText() });
});

test('parseControlCommandLine should name the option of every problem in one line', () => {
  assert.equal(problem(['--status_port', '1']), '--pool: is required (the pool to pause)');
  assert.equal(problem(['--pool', 'R']), '--status_port: is required (the port the daemon was started with; or set DRIVESHAFT_STATUS_PORT)');
  assert.equal(problem(['--pool', 'R', '--status_port', '70000']), '--status_port: expected a port number from 1 to 65535, got "70000"');
  assert.equal(problem(['--pool', 'R'], { DRIVESHAFT_STATUS_PORT: 'x' }), '--status_port: expected a port number from 1 to 65535, got "x"');
  assert.equal(problem(['--pool', 'R', '--pool', 'S']), '--pool: given twice');
  assert.equal(problem(['--pool']), '--pool: expected a value');
  assert.equal(problem(['--pool', '--function', 'F']), '--pool: expected a value');
  assert.equal(problem(['--pool=']), '--pool: expected a value');
  assert.equal(problem(['--pool', 'a\nb', '--status_port', '1']), '--pool: expected a name without NUL or line breaks');
  assert.equal(problem(['Regular']), '"Regular": unexpected argument (options start with --; see driveshaft pause --help)');
  assert.equal(problem(['--nope', 'x']), '--nope: unknown option (pause takes --pool, --function, --status_port, --status_host, --timeout, --help)');
  assert.equal(problem(['--pool', 'R', '--status_port', '1', '--timeout', '0']), '--timeout: expected a positive number of seconds, got "0"');
});
