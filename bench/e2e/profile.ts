/**
 * Summarises V8 .cpuprofile files (written by `--cpu-prof`, which the daemon's children inherit
 * through NODE_OPTIONS) into the functions with the most self time, so a run can say where the
 * daemon's CPU goes without opening DevTools.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  function: string;
  location: string;
  selfMs: number;
  selfPercent: number;
  /** For natives (writev, utf8Slice…), the JS functions that called them, by share of this entry's time. */
  callers?: string[];
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Time V8 attributes to (idle), (program), (garbage collector). */
  idleMs: number;
  gcMs: number;
  top: ProfileEntry[];
  /** Self time grouped by source area: src/child, src/codec, undici, node:internal, … */
  byArea: Array<{ area: string; selfMs: number; selfPercent: number }>;
}

function area(url: string, root: string): string {
  if (url === '') return '(native/v8)';
  if (url.startsWith('node:')) return url.startsWith('node:internal/') ? `node:${url.split('/')[1] ?? 'internal'}` : url;
  const path = url.startsWith('file://') ? url.slice(7) : url;
  const rel = relative(root, path);
  if (rel.includes('node_modules/')) return rel.slice(rel.indexOf('node_modules/') + 13).split('/')[0] ?? 'node_modules';
  const parts = rel.split('/');
  return parts[0] === 'dist' ? parts.slice(1, 3).join('/') : parts.slice(0, 2).join('/');
}

export function summariseProfile(file: string, root: string, topN = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totalUs = profile.endTime - profile.startTime;
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  const byFunction = new Map<string, { fn: string; location: string; us: number; callers: Map<string, number> }>();
  const byArea = new Map<string, number>();
  let idleUs = 0;
  let gcUs = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    if (functionName === '(garbage collector)') gcUs += us;
    const location = url === '' ? '' : `${relative(root, url.startsWith('file://') ? url.slice(7) : url)}:${lineNumber + 1}`;
    const key = `${functionName}@${location}`;
    const entry = byFunction.get(key) ?? { fn: functionName || '(anonymous)', location, us: 0, callers: new Map<string, number>() };
    entry.us += us;
    byFunction.set(key, entry);
    if (url === '') {
      // Natives have no location of their own: name the JS frames above them, up to the first one
      // in our code or a dependency (node internals between say little).
      const chain: string[] = [];
      for (let parent = parentOf.get(node.id); parent !== undefined && chain.length < 6; parent = parentOf.get(parent.id)) {
        const frame = parent.callFrame;
        chain.push(`${frame.functionName || '(anonymous)'}${frame.url.startsWith('node:') ? '' : ` ${area(frame.url, root)}`}`);
        if (frame.url !== '' && !frame.url.startsWith('node:')) break;
      }
      const caller = chain.join(' < ');
      entry.callers.set(caller, (entry.callers.get(caller) ?? 0) + us);
    }
    const a = functionName.startsWith('(') ? functionName : area(url, root);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
  }
  const busyUs = Math.max(1, totalUs - idleUs);
  return {
    file,
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    gcMs: gcUs / 1000,
    top: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((e) => ({
        function: e.fn,
        location: e.location,
        selfMs: e.us / 1000,
        selfPercent: (100 * e.us) / busyUs,
        ...(e.callers.size === 0
          ? {}
          : {
              callers: [...e.callers.entries()]
                .sort((a, b) => b[1] - a[1])
                .slice(0, 3)
                .map(([caller, us]) => `${((100 * us) / e.us).toFixed(0)}% ${caller}`),
            }),
      })),
    byArea: [...byArea.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ area: name, selfMs: us / 1000, selfPercent: (100 * us) / busyUs })),
  };
}

export function summariseProfileDir(dir: string, root: string): ProfileSummary[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'));
  } catch {
    return [];
  }
  return files.map((name) => summariseProfile(join(dir, name), root));
}
