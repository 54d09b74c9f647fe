/**
 * How the master starts a pool child: node:cluster, one process per pool. The pool's name is the only
 * setting passed in the environment (for `ps e` and crash reports), beside malloc's tuning (see
 * childEnv); the config goes over IPC, not as JSON in environment variables, which any process of the
 * same user can read and which have size limits. Secrets too: every variable a jobs config names as a
 * secret source (`signing_secrets: {"env": …}`) is removed from every child's environment, since
 * /proc/<pid>/environ of a child running as --user is readable by any process of that user; the child
 * gets the pool's keys in its settings over IPC.
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { SecretKind } from '../config/types.js';
import type { JobsConfig } from '../config/types.js';
import type { IpcEndpoint } from './ipc-channel.js';

/** One forked pool child as the supervisor sees it. */
export interface ForkedChild {
  /** -1 when the process could not be spawned (its exit is reported right after). */
  readonly pid: number;
  readonly endpoint: IpcEndpoint;
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
  onError(listener: (error: Error) => void): void;
  /** Sends a signal; a process that is already gone is not an error. */
  kill(signal: NodeJS.Signals): void;
}

export type ForkChild = (pool: string) => ForkedChild;

/** dist/src/master/child-process.js → dist/src/child/main.js */
export const DEFAULT_CHILD_EXEC = fileURLToPath(new URL('../child/main.js', import.meta.url));

/**
 * Pools up to this many slots get a 1 MiB young generation (V8's two semi-spaces, 1 MiB each); larger
 * ones get LARGE_POOL_SEMI_SPACE_MIB. docs/performance.md, Memory.
 *
 * A child allocates per job (HTTP request and response objects, promises) and almost none of it
 * outlives the job. During a burst V8 grows the semi-spaces towards their maximum, and that memory
 * stays resident afterwards. What a pool has in flight scales with its slots, and the young generation
 * has to hold it: otherwise every in-flight job's objects are promoted to the old generation and die
 * there, which costs CPU and old-space memory. Measured with bench/e2e (A/B, 20,000-job bursts):
 * 10 slots: 11–18 MiB less RSS after the burst, no measurable CPU cost; 100 slots: 20 % more CPU
 * per job for 3 MiB less; 1,000 slots: 12–35 % more CPU per job and 35 MiB more RSS. 16 slots keep
 * at least the 64 KiB of young space per slot that the 10-slot pool had.
 */
export const SMALL_POOL_MAX_SLOTS = 16;
const SMALL_POOL_SEMI_SPACE_MIB = 1;
/**
 * Node 22+ (V8 12.4+) lets a semi-space grow to 32 MiB where Node 20 stopped at 16: a 1,000-slot child
 * ended a 20,000-job burst with a 60 MiB young generation, mostly empty. 16 MiB still holds what 1,000
 * slots have in flight; 8 or less promotes it (more memory, not less). bench/e2e, 1,000 slots, same
 * machine, back to back (MALLOC_ARENA_MAX=1 in both): PSS alone after the burst 174.0 / 175.3 MiB with
 * V8's default / 32, 143.5 with 16, 149.1 with 8; earlier runs 190.8 with 2, 192.8 with 4.
 */
const LARGE_POOL_SEMI_SPACE_MIB = 16;

/** The V8 flags a pool child of `workerCount` slots gets by default (none when the count is unknown). */
export function poolNodeFlags(workerCount: number | undefined): readonly string[] {
  if (workerCount === undefined) return [];
  return [`--max-semi-space-size=${workerCount > SMALL_POOL_MAX_SLOTS ? LARGE_POOL_SEMI_SPACE_MIB : SMALL_POOL_SEMI_SPACE_MIB}`];
}

/**
 * glibc gives each thread that meets a locked arena one of its own (up to 8 per core), and memory freed
 * into one arena serves no other. A child's allocations come from its main thread; V8's compiler and GC
 * threads only add arenas that stay resident after a burst: 14 MiB of them in a 1,000-slot child after
 * 20,000 jobs (/proc/<pid>/smaps). bench/e2e --scenarios 10,1000 --modes queue --repeat 3, unset / 1 / 2,
 * two rounds back to back, PSS alone: after the 1,000-slot burst 191.9 and 195.2 / 179.3 and 170.7 /
 * 177.1 and 184.3 MiB; 10 slots idle 78.7 and 78.9 / 77.3 and 77.2 / 77.7 MiB; CPU per job within the
 * run-to-run noise of a shared machine. The operator's own MALLOC_ARENA_MAX, inherited from the
 * master's environment, wins.
 */
export const CHILD_MALLOC_ARENA_MAX = '1';

/**
 * glibc grows the heap by 128 KiB more than it needs and keeps that much when it gives memory back
 * (M_TOP_PAD); a pool child's malloc heap is a few MiB, so the pad is a sizeable share of it. Without
 * it: bench/memory (30 pools × 2 slots, 5 jobs each), two rounds, 9.6 MiB less after the jobs (0.3 MiB
 * per child), 8.2 MiB less idle; 10,000 POSTs through the child's HTTP client cost the same CPU per
 * request (within the noise, three runs each). The operator's own MALLOC_TOP_PAD_ wins.
 */
export const CHILD_MALLOC_TOP_PAD = '0';

/** The malloc tuning a child gets unless the master's environment sets the same variable. */
const CHILD_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: CHILD_MALLOC_ARENA_MAX, MALLOC_TOP_PAD_: CHILD_MALLOC_TOP_PAD };

/** Every environment variable any pool of `config` reads a secret from. */
export function secretVariables(config: JobsConfig): string[] {
  const names = new Set<string>();
  for (const pool of Object.values(config.pools)) {
    for (const source of pool.secretSources) if (source.kind === SecretKind.ENV) names.add(source.name);
  }
  return [...names];
}

/**
 * The environment a pool child gets on top of the master's (cluster.fork merges it into process.env).
 * `withheld` variables are set to undefined, which child_process leaves out of the new environment.
 */
export function childEnv(pool: string, parentEnv: NodeJS.ProcessEnv = process.env, withheld: Iterable<string> = []): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of withheld) env[name] = undefined;
  for (const [name, value] of Object.entries(CHILD_MALLOC_ENV)) if (parentEnv[name] === undefined) env[name] = value;
  return { ...env, DRIVESHAFT_POOL: pool };
}

/** `--max_semi_space_size=2` → `--max-semi-space-size`: V8 treats `_` and `-` alike. */
function flagName(arg: string): string {
  const eq = arg.indexOf('=');
  return (eq < 0 ? arg : arg.slice(0, eq)).replaceAll('_', '-');
}

/**
 * The execArgv of a pool child: the master's own (so --cpu-prof, --inspect and the like reach the
 * children, as cluster does by default) plus each of `defaults` whose flag the operator did not set
 * on the master's command line or in NODE_OPTIONS. Leaving ours out is what lets NODE_OPTIONS win:
 * a flag on the command line would beat the same flag in NODE_OPTIONS.
 */
export function childExecArgv(defaults: readonly string[], parentExecArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env['NODE_OPTIONS'] ?? ''): string[] {
  const given = new Set([...parentExecArgv, ...nodeOptions.split(/\s+/)].filter((arg) => arg.startsWith('--')).map(flagName));
  return [...parentExecArgv, ...defaults.filter((flag) => !given.has(flagName(flag)))];
}

/**
 * Forks pool children with `exec` as their entry. `nodeFlagsFor(pool)` gives the V8 flags a pool's
 * child gets by default (poolNodeFlags of its worker_count); the operator's own flags win.
 * `secretVariablesNow()` names the variables the current config reads secrets from: they and every
 * one named before (a reload may drop a name, the master's environment still holds its value) are
 * withheld from the child.
 */
export function clusterForker(
  exec: string = DEFAULT_CHILD_EXEC,
  nodeFlagsFor: (pool: string) => readonly string[] = () => [],
  secretVariablesNow: () => readonly string[] = () => [],
): ForkChild {
  const withheld = new Set<string>();
  return (pool) => {
    for (const name of secretVariablesNow()) withheld.add(name);
    // setupPrimary only affects later forks; calling it each time keeps two masters' settings (tests
    // that run a fixture child beside the real one) from leaking into each other.
    cluster.setupPrimary({ exec, args: [], silent: false, execArgv: childExecArgv(nodeFlagsFor(pool)) });
    const worker = cluster.fork(childEnv(pool, process.env, withheld));
    return {
      pid: worker.process.pid ?? -1,
      endpoint: worker,
      onExit(listener) {
        worker.on('exit', (code: number | null, signal: string | null) => listener(code, signal as NodeJS.Signals | null));
      },
      onError(listener) {
        worker.on('error', listener);
      },
      kill(signal) {
        try {
          worker.process.kill(signal);
        } catch {
          // ESRCH: it exited between our decision and the signal; its exit event does the rest.
        }
      },
    };
  };
}
