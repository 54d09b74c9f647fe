/**
 * Keeps the HTTP response parser of a small pool's child on V8's baseline WebAssembly compiler.
 *
 * undici parses responses with llhttp compiled to WebAssembly. V8 first compiles it with Liftoff, its
 * baseline compiler, and once the parser has run a little (three jobs here) it recompiles the hot
 * functions with TurboFan on a background thread. That compilation of llhttp's large state machine
 * takes about 8.5 MiB of malloc memory, which glibc keeps after it is freed: measured with
 * bench/memory (30 pools × 2 slots, 5 jobs each), each child held 9.5 MiB more than idle 30 s after its
 * five jobs, 0.7 MiB with these flags (docs/performance.md, Many pools). The price is parse speed: about 1 µs more per response
 * (llhttp alone on nginx's 175-byte answer: 0.7 µs optimized, 1.5–2.1 µs baseline), a few per cent of
 * a job's CPU, paid only by pools of up to BASELINE_PARSER_MAX_SLOTS slots, whose memory is mostly
 * Node's own. Larger pools keep V8's default.
 *
 * Set at run time, not on the child's command line: V8 flags that change code generation given at
 * start-up make Node compile its own modules without their built-in code cache (0.8 MiB more per idle
 * child, measured the same way). They take effect for the parser compiled at the first connection.
 * An operator's own wasm tiering flag on the master's command line wins (Node refuses these V8 flags in
 * NODE_OPTIONS; it is still read, in case a later Node allows them).
 */
import { setFlagsFromString } from 'node:v8';

/** The same bound as the 1 MiB young generation's (SMALL_POOL_MAX_SLOTS, src/master/child-process.ts). */
export const BASELINE_PARSER_MAX_SLOTS = 16;
/** Without dynamic tiering V8 would tier up eagerly; without tier-up it does not at all. */
export const BASELINE_WASM_FLAGS: readonly string[] = ['--no-wasm-dynamic-tiering', '--no-wasm-tier-up'];
/** Flags (by name, without `no-`) by which an operator decides WebAssembly tiering themselves. */
const OPERATOR_TIERING_FLAGS = new Set(['wasm-dynamic-tiering', 'wasm-tier-up', 'liftoff', 'liftoff-only', 'wasm-tiering-budget']);

/** `--no-wasm_tier_up` → `wasm-tier-up`. */
function flagName(arg: string): string {
  const eq = arg.indexOf('=');
  const name = (eq < 0 ? arg : arg.slice(0, eq)).replace(/^--/, '').replaceAll('_', '-');
  return name.startsWith('no-') ? name.slice(3) : name;
}

/** The flags a child of `workerCount` slots sets (none when the operator set tiering flags). */
export function wasmTieringFlags(workerCount: number, execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env['NODE_OPTIONS'] ?? ''): readonly string[] {
  if (workerCount > BASELINE_PARSER_MAX_SLOTS) return [];
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].filter((arg) => arg.startsWith('--')).some((arg) => OPERATOR_TIERING_FLAGS.has(flagName(arg)));
  return given ? [] : BASELINE_WASM_FLAGS;
}

/** Sets wasmTieringFlags(workerCount) in this process; returns them. Call before the first HTTP connection. */
export function applyWasmTiering(workerCount: number): readonly string[] {
  const flags = wasmTieringFlags(workerCount);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}
