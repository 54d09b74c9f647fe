/**
 * CPU time and resident memory of a process tree, read from /proc (Linux only).
 *
 * The daemon is a master plus one child per pool, so "the daemon's cost" is the sum over the master
 * and all its descendants. Children are found by scanning every /proc/<pid>/stat for its parent pid:
 * /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN, which this machine's kernel lacks.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';

export interface ProcessSample {
  pid: number;
  /** The command name from /proc/<pid>/stat (at most 15 characters). */
  name: string;
  /** utime + stime, in microseconds. */
  cpuUs: number;
  /** stime alone: time in the kernel (syscalls: socket reads and writes, epoll). */
  sysUs: number;
  /** VmRSS, in KiB: every resident page the process maps, shared ones included. */
  rssKiB: number;
  /** RssAnon: the process's own memory (JS heap, malloc, stacks), in KiB. */
  rssAnonKiB: number;
  /** RssFile: resident pages of mapped files (mostly the node binary itself), in KiB. */
  rssFileKiB: number;
  /**
   * Pss from /proc/<pid>/smaps_rollup, in KiB: each resident page divided by the number of processes
   * mapping it. Summed over the daemon's processes it counts the node binary's pages once instead of
   * once per process. NaN when not read (see sampleProcesses) or unreadable.
   */
  pssKiB: number;
  /**
   * From /proc/<pid>/schedstat, in nanoseconds since the process started: time on a core, and time
   * runnable but waiting for one (the run queue). NaN when the kernel does not keep them.
   */
  runNs: number;
  waitNs: number;
  /**
   * Context switches of the main thread since it started (/proc/<pid>/status): voluntary ones are the
   * event loop going to sleep for want of work (or a lock), involuntary ones a preemption.
   */
  sleeps: number;
  preemptions: number;
}

export interface TreeSample {
  /** performance.timeOrigin + performance.now(), in milliseconds since the epoch. */
  atMs: number;
  processes: ProcessSample[];
  cpuUs: number;
  rssKiB: number;
  /** NaN unless PSS was read for every process. */
  pssKiB: number;
  /**
   * Every resident page of these processes counted once, however many of them map it, and whoever
   * else does (see uniqueSetKiB). NaN unless read (with `pss`) and readable (root only).
   */
  uniqueKiB: number;
}

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
const CLOCK_TICKS = ((): number => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(ticks) && ticks > 0) return ticks;
  } catch {
    // getconf missing: USER_HZ is 100 on every Linux architecture Node runs on.
  }
  return 100;
})();
const US_PER_TICK = 1_000_000 / CLOCK_TICKS;

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

interface StatFields {
  name: string;
  ppid: number;
  cpuUs: number;
  sysUs: number;
}

/**
 * Parses /proc/<pid>/stat. The command name is in parentheses and may itself contain spaces and
 * parentheses, so the fixed fields are counted from the LAST ')'.
 */
function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined; // exited between listing and reading
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  // After ')': state(3) ppid(4) … utime(14) stime(15), numbered as in proc(5).
  const fields = text.slice(close + 2).split(' ');
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { name: text.slice(open + 1, close), ppid, cpuUs: (utime + stime) * US_PER_TICK, sysUs: stime * US_PER_TICK };
}

/** Time on a core and time waiting in the run queue (/proc/<pid>/schedstat, ns); NaN when unreadable. */
function readSchedstat(pid: number): { runNs: number; waitNs: number } {
  try {
    const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'latin1').trim().split(' ').map(Number);
    return { runNs: run ?? NaN, waitNs: wait ?? NaN };
  } catch {
    return { runNs: NaN, waitNs: NaN };
  }
}

/** A number field of /proc/<pid>/status (its unit, if any, after it); NaN when absent. */
function statusField(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
  return match === null ? NaN : Number(match[1]);
}

/** VmRSS and its split (RssAnon, RssFile; RssShmem is counted in VmRSS only), and the context switches, from /proc/<pid>/status. */
function readStatus(pid: number): { rssKiB: number; rssAnonKiB: number; rssFileKiB: number; sleeps: number; preemptions: number } {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return { rssKiB: 0, rssAnonKiB: 0, rssFileKiB: 0, sleeps: NaN, preemptions: NaN };
  }
  return {
    rssKiB: statusField(text, 'VmRSS') || 0,
    rssAnonKiB: statusField(text, 'RssAnon') || 0,
    rssFileKiB: statusField(text, 'RssFile') || 0,
    sleeps: statusField(text, 'voluntary_ctxt_switches'),
    preemptions: statusField(text, 'nonvoluntary_ctxt_switches'),
  };
}

/** Pss from /proc/<pid>/smaps_rollup (Linux ≥ 4.14); NaN when unavailable. */
function readPssKiB(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
    return match === null ? NaN : Number(match[1]);
  } catch {
    return NaN;
  }
}

const PAGE_SIZE = ((): number => {
  try {
    const size = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
    if (Number.isInteger(size) && size > 0) return size;
  } catch {
    // getconf missing
  }
  return 4096;
})();
/** pagemap entries are 64 bits: bit 63 "present", bits 0–54 the page frame number. */
const PAGEMAP_ENTRY = 8;
const PAGEMAP_CHUNK_PAGES = 32_768;

/**
 * The memory these processes occupy together: the number of distinct physical pages resident in any
 * of them, from /proc/<pid>/pagemap. This is what summed PSS means to say ("a page the master and a
 * child both map counts once"), without PSS's dependence on the rest of the machine: PSS divides a
 * page of the node binary between every process mapping it, this harness and other people's Node
 * processes included, so the same daemon's summed PSS moves with what else runs. Page frame numbers
 * are readable by root only (CAP_SYS_ADMIN); otherwise, or if a process vanished meanwhile, NaN.
 */
export function uniqueSetKiB(pids: readonly number[]): number {
  const frames = new Set<number>();
  for (const pid of pids) {
    let smaps: string;
    let fd: number;
    try {
      smaps = readFileSync(`/proc/${pid}/smaps`, 'latin1');
      fd = openSync(`/proc/${pid}/pagemap`, 'r');
    } catch {
      return NaN;
    }
    try {
      let sawFrame = false;
      let range: [number, number] | undefined;
      const buffer = Buffer.allocUnsafe(PAGEMAP_CHUNK_PAGES * PAGEMAP_ENTRY);
      for (const line of smaps.split('\n')) {
        const header = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
        if (header !== null) {
          range = [parseInt(header[1] as string, 16), parseInt(header[2] as string, 16)];
          continue;
        }
        // Only mappings with resident pages are walked: V8 reserves gigabytes it never touches.
        const rss = /^Rss:\s+(\d+) kB/.exec(line);
        if (rss === null || range === undefined || Number(rss[1]) === 0) continue;
        const [start, end] = range;
        range = undefined;
        if (start >= 2 ** 47) continue; // [vsyscall]: not in the process's page tables
        for (let page = start / PAGE_SIZE; page < end / PAGE_SIZE; page += PAGEMAP_CHUNK_PAGES) {
          const pages = Math.min(PAGEMAP_CHUNK_PAGES, end / PAGE_SIZE - page);
          const n = readSync(fd, buffer, 0, pages * PAGEMAP_ENTRY, page * PAGEMAP_ENTRY);
          for (let at = 0; at + PAGEMAP_ENTRY <= n; at += PAGEMAP_ENTRY) {
            const high = buffer.readUInt32LE(at + 4);
            if ((high & 0x8000_0000) === 0) continue; // not present (untouched, or swapped out)
            const frame = (high & 0x7f_ffff) * 2 ** 32 + buffer.readUInt32LE(at);
            if (frame !== 0) sawFrame = true;
            frames.add(frame);
          }
        }
      }
      // Without CAP_SYS_ADMIN every frame number reads as 0.
      if (!sawFrame) return NaN;
    } catch {
      return NaN;
    } finally {
      closeSync(fd);
    }
  }
  return (frames.size * PAGE_SIZE) / 1024;
}

/** `root` and every live descendant, parents before children. */
export function processTree(root: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const stat = readStat(pid);
    if (stat === undefined) continue;
    let list = childrenOf.get(stat.ppid);
    if (list === undefined) childrenOf.set(stat.ppid, (list = []));
    list.push(pid);
  }
  if (readStat(root) === undefined) return [];
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(childrenOf.get(tree[i] as number) ?? []));
  return tree;
}

/**
 * CPU and RSS of the given processes, summed. Processes that have exited count as zero. `pss` also
 * reads smaps_rollup and the pages resident in any of them (uniqueSetKiB): the kernel walks the page
 * tables, tens of ms for a large process, so only for the daemon, and after its CPU time was read.
 */
export function sampleProcesses(pids: readonly number[], { pss = false }: { pss?: boolean } = {}): TreeSample {
  const processes: ProcessSample[] = [];
  const atMs = nowMs();
  for (const pid of pids) {
    const stat = readStat(pid);
    if (stat === undefined) continue;
    processes.push({ pid, name: stat.name, cpuUs: stat.cpuUs, sysUs: stat.sysUs, ...readStatus(pid), pssKiB: NaN, ...readSchedstat(pid) });
  }
  if (pss) for (const p of processes) p.pssKiB = readPssKiB(p.pid);
  return {
    atMs,
    processes,
    cpuUs: processes.reduce((sum, p) => sum + p.cpuUs, 0),
    rssKiB: processes.reduce((sum, p) => sum + p.rssKiB, 0),
    pssKiB: processes.reduce((sum, p) => sum + p.pssKiB, 0),
    uniqueKiB: pss ? uniqueSetKiB(processes.map((p) => p.pid)) : NaN,
  };
}

/** CPU and RSS of `root` and all its descendants right now. */
export function sampleTree(root: number, options: { pss?: boolean } = {}): TreeSample {
  return sampleProcesses(processTree(root), options);
}

/** CPU microseconds spent between two samples of the same processes (processes new in `after` count fully). */
export function cpuDeltaUs(before: TreeSample, after: TreeSample): number {
  const start = new Map(before.processes.map((p) => [p.pid, p.cpuUs]));
  return after.processes.reduce((sum, p) => sum + p.cpuUs - (start.get(p.pid) ?? 0), 0);
}

/** Sends `signal` to each pid, ignoring processes that are already gone. */
export function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // ESRCH: exited meanwhile.
    }
  }
}

/** `uptime`'s load averages, from /proc/loadavg. */
export function loadAverage(): [number, number, number] {
  const [one, five, fifteen] = readFileSync('/proc/loadavg', 'latin1').split(' ').map(Number);
  return [one ?? NaN, five ?? NaN, fifteen ?? NaN];
}

/** Busy CPU time of the whole machine (all processes, all cores) since boot, in microseconds. */
export function machineBusyUs(): number {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal …: steal counts as busy (the VM's host took it).
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * US_PER_TICK;
}

/**
 * Stops a process the harness spawned: SIGCONT first (a run may have left it frozen), then `signal`,
 * then SIGKILL if it is still there after `timeoutMs`. Resolves once it exited.
 */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGCONT');
    child.kill(signal);
  });
}

/** Open file descriptors of `pid` (entries of /proc/<pid>/fd); NaN when the process is gone or unreadable. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}
