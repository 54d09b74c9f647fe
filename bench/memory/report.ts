/** The many-pools benchmark's text report: floors, one row per run, deltas against `ours`, targets. */
import type { Floors } from './floors.js';
import { childExcessKiB, secondsUntilBack, type Options, type PoolsRun } from './pools-run.js';
import { median, mib, type Memory, type TreeMemory } from './smaps.js';

/** Private memory of the whole daemon after the jobs (the issue's target, and its stretch). */
export const TARGET_AFTER_WORK_MIB = 450;
export const STRETCH_AFTER_WORK_MIB = 350;
/** How close to its idle USS each child must come back within the quiet period. */
export const BACK_MARGIN_KIB = 1024;

function three(memory: Memory): string {
  return `${mib(memory.ussKiB)} (${mib(memory.pssKiB)} / ${mib(memory.rssKiB)})`;
}

function childMedian(sample: TreeMemory): number {
  return median(sample.children.map((c) => c.ussKiB));
}

function runRow(run: PoolsRun, quietS: number): string {
  const last = run.quiet.at(-1) as TreeMemory;
  const children = run.idle.children.length;
  const back = secondsUntilBack(run, BACK_MARGIN_KIB);
  const excessAtEnd = childExcessKiB(run).map((series) => series.at(-1) as number);
  const perChild = children === 0
    ? `one process: ${mib(run.idle.master.ussKiB)} → ${mib(run.afterWork.master.ussKiB)} → ${mib(last.master.ussKiB)}`
    : `child median ${mib(childMedian(run.idle))} → ${mib(childMedian(run.afterWork))} → ${mib(childMedian(last))}, master ${mib(run.idle.master.ussKiB)} → ${mib(run.afterWork.master.ussKiB)} → ${mib(last.master.ussKiB)}; ` +
      `over idle at ${quietS} s: median ${(median(excessAtEnd) / 1024).toFixed(2)}, max ${(Math.max(...excessAtEnd) / 1024).toFixed(2)} MiB; ` +
      `all within ${BACK_MARGIN_KIB / 1024} MiB ${Number.isNaN(back) ? `never (${excessAtEnd.filter((e) => e <= BACK_MARGIN_KIB).length}/${children} at the end)` : `from ${back} s`}`;
  return [
    `${run.variant.label.padEnd(12)} ${String(1 + children).padStart(3)} procs  registered in ${(run.registeredMs / 1000).toFixed(1)} s, ${run.jobs} jobs in ${run.workMs} ms, integrity ${run.integrity.ok ? 'ok' : `FAILED (${run.integrity.logged} logged, ${run.integrity.non200} not 200, queue empty ${String(run.integrity.queueEmpty)})`}`,
    `    USS (PSS / RSS) MiB: idle ${three(run.idle.total)} → after work ${three(run.afterWork.total)} → after ${quietS} s quiet ${three(last.total)}`,
    `    USS MiB ${perChild}`,
  ].join('\n');
}

function floorLines(floors: Floors, options: Options): string[] {
  const p = options.pools;
  const designAfterWork = floors.bare.ussKiB + p * floors.poolAfterWork.ussKiB;
  const designAfterGc = floors.bare.ussKiB + p * floors.poolAfterGc.ussKiB;
  return [
    `Floors (one process each; ${[...floors.execArgv, ...Object.entries(floors.env).map(([k, v]) => `${k}=${v}`)].join(' ')}), USS (PSS / RSS) MiB:`,
    `    bare Node ${three(floors.bare)}; HTTP adapter idle ${three(floors.poolIdle)}, after ${options.jobsPerPool} POSTs ${three(floors.poolAfterWork)}, ${options.quietS} s later ${three(floors.poolAfterQuiet)}; after ${options.jobsPerPool} POSTs and one full GC ${three(floors.poolAfterGc)}`,
    `    a master (bare) + ${p} × the Pool process: idle ${mib(floors.bare.ussKiB + p * floors.poolIdle.ussKiB)}, after work ${mib(designAfterWork)}, after work and GC ${mib(designAfterGc)} MiB USS`,
  ];
}

function deltaLines(runs: readonly PoolsRun[]): string[] {
  const lines: string[] = [];
  const rounds = new Map<string, PoolsRun[]>();
  for (const run of runs) {
    if (run.error !== undefined) continue;
    const list = rounds.get(run.variant.label) ?? [];
    list.push(run);
    rounds.set(run.variant.label, list);
  }
  const base = rounds.get('ours');
  if (base === undefined) return lines;
  const med = (list: readonly PoolsRun[], pick: (run: PoolsRun) => number): number => median(list.map(pick));
  const afterWork = (run: PoolsRun): number => run.afterWork.total.ussKiB;
  const idle = (run: PoolsRun): number => run.idle.total.ussKiB;
  const end = (run: PoolsRun): number => (run.quiet.at(-1) as TreeMemory).total.ussKiB;
  for (const [label, list] of rounds) {
    if (label === 'ours') continue;
    const spec = [...list[0]!.variant.nodeArgs, ...Object.entries(list[0]!.variant.env).map(([k, v]) => `${k}=${v}`), ...(list[0]!.variant.flavour === 'ours' && !list[0]!.variant.bin.endsWith('/bin/driveshaft.js') ? [`bin:${list[0]!.variant.bin}`] : [])].join(' ');
    const d = (pick: (run: PoolsRun) => number): string => {
      const delta = (med(list, pick) - med(base, pick)) / 1024;
      return `${delta >= 0 ? '+' : ''}${delta.toFixed(1)}`;
    };
    lines.push(`    ${label}${spec ? ` (${spec})` : ''} − ours, USS MiB: idle ${d(idle)}, after work ${d(afterWork)}, after quiet ${d(end)}; ours ÷ it after work ${(med(base, afterWork) / med(list, afterWork)).toFixed(2)}×`);
  }
  return lines;
}

export function report(options: Options, meta: Record<string, unknown>, floors: Floors | undefined, runs: readonly PoolsRun[]): string {
  const out: string[] = [];
  out.push(`Many pools: ${options.pools} pools × ${options.slots} slots, idle ${options.idleS} s, ${options.jobsPerPool} jobs per pool, ${options.quietS} s quiet`);
  out.push(`node ${String(meta['node'])}, ${String(meta['cpu'])} ×${String(meta['cores'])}, commit ${String(meta['commit'])}, load ${JSON.stringify(meta['loadStart'])} → ${JSON.stringify(meta['loadEnd'])}`);
  out.push(`command: ${String(meta['command'])}`);
  out.push('USS = Private_Clean + Private_Dirty (smaps_rollup), summed over the master and its children: what the daemon alone holds.');
  if (floors !== undefined) out.push(...floorLines(floors, options));
  out.push('');
  for (const run of runs) {
    if (run.error !== undefined) out.push(`${run.variant.label.padEnd(12)} ERROR ${run.error.split('\n')[0] ?? ''}`);
    else out.push(runRow(run, options.quietS));
  }
  const deltas = deltaLines(runs);
  if (deltas.length > 0) out.push('', 'Against the plain build (medians over rounds):', ...deltas);

  const ours = runs.filter((run) => run.variant.label === 'ours' && run.error === undefined);
  if (ours.length > 0) {
    const after = median(ours.map((run) => run.afterWork.total.ussKiB)) / 1024;
    const back = ours.map((run) => secondsUntilBack(run, BACK_MARGIN_KIB));
    out.push('', 'Targets (ours; median over rounds):');
    out.push(`    USS after work ≤ ${TARGET_AFTER_WORK_MIB} MiB (stretch ${STRETCH_AFTER_WORK_MIB}): ${after.toFixed(1)} MiB ${after <= STRETCH_AFTER_WORK_MIB ? 'PASS (stretch too)' : after <= TARGET_AFTER_WORK_MIB ? 'PASS' : 'FAIL'}`);
    out.push(`    every child within ${BACK_MARGIN_KIB / 1024} MiB of its idle USS within ${options.quietS} s of quiet: ${back.map((s) => (Number.isNaN(s) ? 'never' : `from ${s} s`)).join(', ')} ${back.every((s) => !Number.isNaN(s)) ? 'PASS' : 'FAIL'}`);
    const original = runs.find((run) => run.variant.flavour === 'original' && run.error === undefined);
    if (original !== undefined) out.push(`    the original, one process: USS ${mib(original.idle.total.ussKiB)} idle, ${mib(original.afterWork.total.ussKiB)} after work; ours ÷ it after work ${(after * 1024 / original.afterWork.total.ussKiB).toFixed(1)}×`);
  }
  return out.join('\n');
}
