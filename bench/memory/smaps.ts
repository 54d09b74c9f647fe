/**
 * Memory of a process and of a daemon's tree, from /proc/<pid>/smaps_rollup (Linux ≥ 4.14).
 *
 * USS (Private_Clean + Private_Dirty) is what a process alone holds: the pages no other process maps,
 * i.e. what killing it would give back. It does not depend on what else runs on the machine, unlike
 * PSS, which divides the node binary's shared pages between every process mapping it (the harness
 * and other people's Node processes included). RSS counts every shared page in every process.
 */
import { readFileSync } from 'node:fs';
import { processTree } from '../e2e/proc-stats.js';

export interface Memory {
  ussKiB: number;
  pssKiB: number;
  rssKiB: number;
}

export interface ProcessMemory extends Memory {
  pid: number;
}

export interface TreeMemory {
  /** Milliseconds since the epoch. */
  atMs: number;
  /** The master (ours) or the only process (the original). */
  master: ProcessMemory;
  /** Pool children, by pid (ours); empty for the original. */
  children: ProcessMemory[];
  total: Memory;
}

function field(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  return match === null ? 0 : Number(match[1]);
}

/** undefined when the process is gone (or smaps_rollup is unreadable). */
export function processMemory(pid: number): ProcessMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
  } catch {
    return undefined;
  }
  return { pid, ussKiB: field(text, 'Private_Clean') + field(text, 'Private_Dirty'), pssKiB: field(text, 'Pss'), rssKiB: field(text, 'Rss') };
}

export function sumMemory(list: readonly Memory[]): Memory {
  return {
    ussKiB: list.reduce((sum, m) => sum + m.ussKiB, 0),
    pssKiB: list.reduce((sum, m) => sum + m.pssKiB, 0),
    rssKiB: list.reduce((sum, m) => sum + m.rssKiB, 0),
  };
}

/** The memory of `root` and every descendant; throws if `root` is gone. */
export function treeMemory(root: number): TreeMemory {
  const atMs = Date.now();
  const all = processTree(root)
    .map(processMemory)
    .filter((m): m is ProcessMemory => m !== undefined);
  const master = all.find((m) => m.pid === root);
  if (master === undefined) throw new Error(`process ${root} is gone`);
  const children = all.filter((m) => m.pid !== root).sort((a, b) => a.pid - b.pid);
  return { atMs, master, children, total: sumMemory(all) };
}

export function mib(kib: number): string {
  return Number.isFinite(kib) ? (kib / 1024).toFixed(1) : 'n/a';
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
