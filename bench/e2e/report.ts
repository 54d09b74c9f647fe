/**
 * The e2e benchmark's report: the ceiling, scenario, CPU, memory, signing and comparison tables and
 * the targets' verdicts, as text.
 */
import { MODES, type Options } from './options.js';
import { SIGNED_SUFFIX, type CeilingResult, type Integrity, firstQueueRun, idealRate, type MemoryFloor, type ScenarioResult, type Target, type ThroughputResult } from './results.js';

export const fmt = {
  int: (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en-US')),
  f1: (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(1)),
  f3: (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(3)),
  mib: (kib: number | undefined): string => (kib === undefined ? '—' : (kib / 1024).toFixed(1)),
};

/** "10" for ours, "original 10" or "compare 10" for the compare binary. */
function scenarioName(s: ScenarioResult): string {
  if (s.binary === 'ours') return s.label;
  return `${s.compareKind === 'original' ? 'original' : 'compare'} ${s.label}`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function mean(values: Array<number | undefined>): number | undefined {
  const present = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  return present.length === 0 ? undefined : present.reduce((a, b) => a + b, 0) / present.length;
}

interface CeilingFigures {
  /** The ceiling queue-mode ratios divide by. */
  reported: number | undefined;
  reportedKind: string;
  node: number | undefined;
  nodeConcurrent: number | undefined;
  libgearman: number | undefined;
  latencyP50: number | undefined;
  latencyP50Libgearman: number | undefined;
  herdP50: number | undefined;
}

/**
 * The original's 40,000 jobs/s came from `gearman -w` workers, so that is the ceiling its ratios
 * (0.117 at 10 workers) are relative to; the codec echo worker stands in when the CLI is absent.
 */
export function ceilingFigures(ceilings: ReadonlyArray<CeilingResult | undefined>): CeilingFigures {
  const present = ceilings.filter((c): c is CeilingResult => c !== undefined);
  const node = mean(present.map((c) => c.node?.rate));
  const libgearman = mean(present.map((c) => c.libgearman?.rate));
  return {
    reported: libgearman ?? node,
    reportedKind: libgearman !== undefined ? 'gearman -w ×10 (libgearman)' : 'codec echo worker ×10 (Node)',
    node,
    nodeConcurrent: mean(present.map((c) => c.nodeConcurrent?.rate)),
    libgearman,
    latencyP50: mean(present.map((c) => c.latencyNode?.p50Us)),
    latencyP50Libgearman: mean(present.map((c) => c.latencyLibgearman?.p50Us)),
    herdP50: mean(present.map((c) => c.latencyNodeHerd?.p50Us)),
  };
}

/** The whole report; `targets` are the verdicts on the same scenarios (evaluateTargets). */
export function report(options: Options, meta: Record<string, unknown>, ceilings: CeilingResult[], scenarios: ScenarioResult[], targets: readonly Target[], memoryFloor?: MemoryFloor): string {
  const out: string[] = [];
  const overall = ceilingFigures(ceilings);
  out.push('');
  out.push(`driveshaft e2e — ${String(meta['date'])}, commit ${String(meta['commit'])}, node ${String(meta['node'])}, ${String(meta['cpu'])} ×${String(meta['cores'])}`);
  out.push(`load average at start ${(meta['loadStart'] as number[]).join(' ')}, at end ${(meta['loadEnd'] as number[]).join(' ')}; endpoint: ${String(meta['endpoint'])}; daemon log level ${options.logLevel}; ${options.jobs} jobs per run`);
  out.push('');
  out.push(`Ceiling: gearmand draining the same queue with workers that answer at once, no HTTP (${options.ceilingConnections} workers; fg = foreground p50/p99 µs):`);
  const ceilRows = ceilings.map((c) => [
    c.at,
    fmt.int(c.libgearman?.rate),
    fmt.int(c.node?.rate),
    fmt.int(c.nodeConcurrent?.rate),
    c.latencyNode ? `${fmt.int(c.latencyNode.p50Us)}/${fmt.int(c.latencyNode.p99Us)}` : '—',
    c.latencyLibgearman ? `${fmt.int(c.latencyLibgearman.p50Us)}/${fmt.int(c.latencyLibgearman.p99Us)}` : '—',
    c.latencyNodeHerd ? `${fmt.int(c.latencyNodeHerd.p50Us)}/${fmt.int(c.latencyNodeHerd.p99Us)} (×${c.latencyNodeHerd.connections})` : '—',
    c.libgearman ? fmt.f1(c.libgearman.cpuUsPerJob.gearmand) : fmt.f1(c.node?.cpuUsPerJob.gearmand),
    c.errors.join('; '),
  ]);
  out.push(table(['measured', 'gearman -w jobs/s', 'echo jobs/s', 'echo concurrent', 'echo ×1 fg', 'gearman -w ×1 fg', 'echo ×slots fg', 'gearmand µs/job', 'errors'], ceilRows));
  out.push(`Reported ceiling: ${overall.reportedKind}; mean ${fmt.int(overall.reported)} jobs/s over ${ceilings.length} measurement(s)` +
    (overall.node !== undefined && overall.libgearman !== undefined ? ` (codec echo: ${fmt.f3(overall.node / overall.libgearman)}× libgearman)` : '') +
    (options.ceiling === 'each' ? '. Each scenario\'s ratios use the ceiling measured right before it.' : '.'));
  out.push('');

  const rows: string[][] = [];
  for (const s of scenarios) {
    const name = scenarioName(s);
    const ceiling = ceilingFigures([s.ceiling]);
    if (s.error !== undefined) rows.push([name, 'ERROR', s.error.split('\n')[0]!.slice(0, 100)]);
    for (const mode of MODES) {
      const run = s.runs[mode];
      if (run === undefined) continue;
      if (run.kind === 'latency') {
        const base = ceiling.latencyP50;
        const herd = ceiling.herdP50 === undefined ? '' : `herd floor ${fmt.int(ceiling.herdP50)}`;
        rows.push([name, 'latency', `p50 ${fmt.int(run.p50Us)} µs`, base === undefined ? '—' : `+${fmt.int(run.p50Us - base)} µs`, `p99 ${fmt.int(run.p99Us)}`, herd, '', '', '', '', run.failed === 0 ? `ok (${run.jobs} jobs)` : `${run.failed} failed`]);
        continue;
      }
      const ideal = idealRate(s);
      const ceilingRate = mode === 'concurrent' ? ceiling.nodeConcurrent : ceiling.reported;
      const allQueueRuns = [...(s.warmupRuns ?? []), ...(s.queueRuns ?? [run])];
      const integ = mode === 'queue' ? mergeIntegrity(allQueueRuns) : run.integrity;
      // RSS is the first run's (a warm-up's, with --warmup): the figure "after one N-job run" the target is about.
      const first = firstQueueRun(s);
      const rssRun = mode === 'queue' && first?.kind === 'throughput' ? first : run;
      const warm = s.warmupRuns === undefined ? '' : ` after ${s.warmupRuns.length} warm-up`;
      const modeLabel =
        mode !== 'queue'
          ? mode
          : s.queueRuns !== undefined
            ? `queue (median of ${s.queueRuns.length}${warm}: ${s.queueRuns.map((r) => fmt.int(r.rate)).join(', ')})`
            : `queue${warm === '' ? '' : ` (${warm.trim()})`}`;
      rows.push([
        name,
        modeLabel,
        fmt.int(run.rate),
        ideal !== undefined ? `${fmt.f3(run.rate / ideal)} ideal` : ceilingRate === undefined ? '—' : fmt.f3(run.rate / ceilingRate),
        fmt.f1(run.cpuUsPerJob.workers),
        fmt.f1(run.cpuUsPerJob.gearmand),
        fmt.f1(run.cpuUsPerJob.endpoint),
        `${fmt.f1(run.coresBusy)} / ${fmt.f1(run.otherCores)}`,
        `${fmt.mib(rssRun.rssBeforeKiB)}→${fmt.mib(rssRun.rssAfterKiB)}`,
        String(run.httpConnections ?? '—'),
        integ === undefined ? '—' : integ.ok ? `ok ${integ.answered}/${run.jobs}` : integ.problems.join('; '),
      ]);
    }
    const floorRow = (label: string, f: ThroughputResult): string[] => [
      name,
      label,
      fmt.int(f.rate),
      ceiling.reported === undefined ? '—' : fmt.f3(f.rate / ceiling.reported),
      fmt.f1(f.cpuUsPerJob.workers),
      fmt.f1(f.cpuUsPerJob.gearmand),
      fmt.f1(f.cpuUsPerJob.endpoint),
      `${fmt.f1(f.coresBusy)} / ${fmt.f1(f.otherCores)}`,
      '',
      String(s.slots),
      `ok ${f.jobs}/${f.jobs}`,
    ];
    const floorLabel = (label: string, runs: ThroughputResult[] | undefined): string =>
      runs === undefined ? label : `${label} (median of ${runs.length}: ${runs.map((r) => fmt.int(r.rate)).join(', ')})`;
    if (s.floor !== undefined) rows.push(floorRow(floorLabel('Node floor', s.floorRuns), s.floor));
    if (s.undiciFloor !== undefined) rows.push(floorRow(floorLabel('undici floor', s.undiciFloorRuns), s.undiciFloor));
    if (s.contractFloor !== undefined) rows.push(floorRow(floorLabel('contract floor', s.contractFloorRuns), s.contractFloor));
    if (s.floorLatency !== undefined) {
      const l = s.floorLatency;
      const base = ceiling.latencyP50;
      rows.push([name, 'Node floor latency', `p50 ${fmt.int(l.p50Us)} µs`, base === undefined ? '—' : `+${fmt.int(l.p50Us - base)} µs`, `p99 ${fmt.int(l.p99Us)}`, '', '', '', '', '', l.failed === 0 ? `ok (${l.jobs} jobs)` : `${l.failed} failed`]);
    }
    if (s.floorError !== undefined) rows.push([name, 'Node floor', 'ERROR', s.floorError.split('\n')[0]!.slice(0, 100)]);
    if (s.idleRssKiB !== undefined) rows.push([name, 'idle', '', '', '', '', '', '', `${fmt.mib(s.idleRssKiB)} (${s.idleProcesses} procs)`, '', `registered in ${s.registerMs} ms, load ${s.load[0]}`]);
  }
  out.push('Scenarios (× ceiling: queue/cold ÷ the reported ceiling, concurrent ÷ the echo workers\' concurrent run, latency p50 − the echo ×1 p50;');
  out.push('"Node floor" at 1 slot: one raw-socket Node worker POSTing each job to the same endpoint, no HTTP library — the 1-slot rate Node allows here;');
  out.push('"undici floor": the same worker POSTing through the daemon\'s undici adapter — what Node with undici allows;');
  out.push('"contract floor" at 10 slots: the undici floor sending the contract\'s request (the daemon\'s body, job headers and traceparent)');
  out.push('and reading the answer with the daemon\'s answer reader — what the HTTP contract allows, without the daemon\'s own machinery):');
  out.push(table(['slots', 'mode', 'jobs/s', '× ceiling', 'daemon µs/job', 'gearmand µs/job', 'endpoint µs/job', 'cores ours/other', 'RSS MiB', 'http conns', 'integrity'], rows));
  out.push('');
  out.push(...slowLines(scenarios));

  out.push('Daemon CPU per job by process, queue mode (µs; "kernel" = stime: socket syscalls and epoll; "waited" = time runnable');
  out.push('but waiting for a core ÷ time on one (schedstat); "slept", "preempted" = the main thread\'s context switches per job, voluntary');
  out.push('(nothing to do) and not (a woken gearmand or nginx took its core): both move from run to run with where the processes landed):');
  const figures = (p: NonNullable<ThroughputResult['perProcess']>[number]): string =>
    `${fmt.f1(p.cpuUsPerJob)} (kernel ${fmt.f1(p.sysUsPerJob)}${p.waitPerRun == null ? '' : `, waited ${p.waitPerRun.toFixed(2)}`}${p.sleepsPerJob == null ? '' : `, slept ${p.sleepsPerJob.toFixed(2)}`}${p.preemptionsPerJob == null ? '' : `, preempted ${p.preemptionsPerJob.toFixed(2)}`})`;
  for (const s of scenarios) {
    const q = s.runs.queue ?? s.runs.cold;
    if (q?.kind !== 'throughput' || q.perProcess === undefined) continue;
    const parts = q.perProcess.map((p, i) => `${i === 0 ? 'master' : `child ${i}`} ${figures(p)}`);
    for (const [label, floor] of [['Node floor', s.floor], ['undici floor', s.undiciFloor], ['contract floor', s.contractFloor]] as const) {
      const p = floor?.perProcess?.[0];
      if (p !== undefined) parts.push(`${label} ${figures(p)}`);
    }
    out.push(`  ${scenarioName(s)}: ${parts.join(', ')}`);
  }
  out.push('');

  out.push(memoryLines(scenarios, memoryFloor).join('\n'));
  out.push('');

  const signed = scenarios.filter((s) => s.binary === 'ours' && s.label.endsWith(SIGNED_SUFFIX));
  if (signed.length > 0) {
    out.push(`Signing on ÷ off (queue mode, ${options.signingSecrets} signing secret${options.signingSecrets === 1 ? '' : 's'}; the runs are adjacent on the same machine):`);
    for (const on of signed) {
      const offLabel = on.label.slice(0, -SIGNED_SUFFIX.length);
      const off = scenarios.find((s) => s.binary === 'ours' && s.label === offLabel)?.runs.queue;
      const onRun = on.runs.queue;
      if (off?.kind === 'throughput' && onRun?.kind === 'throughput') {
        out.push(
          `  ${offLabel}: ${fmt.int(onRun.rate)} vs ${fmt.int(off.rate)} jobs/s = ${fmt.f3(onRun.rate / off.rate)}× (cost ${fmt.f1((1 - onRun.rate / off.rate) * 100)}%); daemon CPU/job ${fmt.f1(onRun.cpuUsPerJob.workers)} vs ${fmt.f1(off.cpuUsPerJob.workers)} µs`,
        );
      }
    }
    out.push('');
  }

  const compares = scenarios.filter((s) => s.binary === 'compare');
  if (compares.length > 0) {
    const theirName = compares[0]?.compareKind === 'original' ? 'the original' : 'the compare build';
    out.push(`Ours ÷ ${theirName}, same run (queue: the median run; memory: PSS alone / PSS / RSS):`);
    for (const c of compares) {
      const mine = scenarios.find((s) => s.binary === 'ours' && s.label === c.label);
      const ours = mine?.runs.queue;
      const theirs = c.runs.queue;
      const parts: string[] = [];
      if (ours?.kind === 'throughput' && theirs?.kind === 'throughput') {
        parts.push(`${fmt.int(ours.rate)} vs ${fmt.int(theirs.rate)} jobs/s = ${fmt.f3(ours.rate / theirs.rate)}×`);
        parts.push(`CPU/job ${fmt.f1(ours.cpuUsPerJob.workers)} vs ${fmt.f1(theirs.cpuUsPerJob.workers)} µs = ${fmt.f3(ours.cpuUsPerJob.workers / theirs.cpuUsPerJob.workers)}×`);
      }
      const ourLatency = mine?.runs.latency;
      const theirLatency = c.runs.latency;
      if (ourLatency?.kind === 'latency' && theirLatency?.kind === 'latency') {
        parts.push(`fg p50 ${fmt.int(ourLatency.p50Us)} vs ${fmt.int(theirLatency.p50Us)} µs`);
      }
      if (mine?.idleRssKiB !== undefined && c.idleRssKiB !== undefined) {
        parts.push(`idle ${memoryTriple(mine.idleAloneKiB, mine.idlePssKiB, mine.idleRssKiB)} vs ${memoryTriple(c.idleAloneKiB, c.idlePssKiB, c.idleRssKiB)} MiB`);
      }
      const ourFirst = mine === undefined ? undefined : firstQueueRun(mine);
      const theirFirst = firstQueueRun(c);
      if (ourFirst?.kind === 'throughput' && theirFirst?.kind === 'throughput') {
        parts.push(
          `after one run ${memoryTriple(ourFirst.aloneAfterKiB, ourFirst.pssAfterKiB, ourFirst.rssAfterKiB)} vs ` +
            `${memoryTriple(theirFirst.aloneAfterKiB, theirFirst.pssAfterKiB, theirFirst.rssAfterKiB)} MiB`,
        );
      }
      if (parts.length > 0) out.push(`  ${c.label}: ${parts.join('; ')}`);
    }
    out.push('');
  }

  out.push('Performance targets (ratios from this run; memory: PSS alone of master + children, PSS and RSS beside it):');
  out.push(table(['target', 'measured', 'goal', 'verdict'], targets.map((t) => [t.name, t.value, t.goal, t.pass === undefined ? `n/a${t.note ? ` (${t.note})` : ''}` : t.pass ? 'PASS' : 'FAIL'])));

  for (const s of scenarios) {
    if (s.profile === undefined || s.profile.length === 0) continue;
    out.push('');
    out.push(`Profile, ${s.label} slots (--cpu-prof; self time, % of non-idle):`);
    for (const p of s.profile) {
      out.push(`  ${p.file.split('/').pop()}: ${fmt.int(p.totalMs - p.idleMs)} ms busy of ${fmt.int(p.totalMs)} ms, GC ${fmt.int(p.gcMs)} ms`);
      out.push(`    by area: ${p.byArea.slice(0, 8).map((a) => `${a.area} ${a.selfPercent.toFixed(1)}%`).join(', ')}`);
      for (const e of p.top.slice(0, 12)) {
        out.push(`    ${e.selfPercent.toFixed(1).padStart(5)}%  ${e.function}  ${e.location}`);
        for (const caller of e.callers ?? []) out.push(`             ← ${caller}`);
      }
    }
  }
  return out.join('\n');
}

/**
 * The slow-endpoint scenarios: the rate against Little's law (every slot busy for the endpoint's whole
 * delay), CPU per job, the most descriptors held at once and the memory after the first run.
 */
function slowLines(scenarios: readonly ScenarioResult[]): string[] {
  const slow = scenarios.filter((s) => s.delayMs !== undefined);
  if (slow.length === 0) return [];
  const rows = slow.flatMap((s): string[][] => {
    const run = s.runs.queue;
    const first = firstQueueRun(s);
    const ideal = idealRate(s) as number;
    if (run?.kind !== 'throughput') return [[scenarioName(s), s.error === undefined ? 'no queue run' : `ERROR ${s.error.split('\n')[0]!.slice(0, 120)}`]];
    const f = s.undiciFloor;
    const floorRow =
      f === undefined
        ? []
        : [[`${scenarioName(s)} undici floor ×${s.slots}`, fmt.int(f.rate), fmt.int(ideal), fmt.f3(f.rate / ideal), fmt.f1(f.cpuUsPerJob.workers), fmt.f1(f.cpuUsPerJob.gearmand), fmt.f1(f.cpuUsPerJob.endpoint), '', '', '', String(s.slots)]];
    const fds = run.fdsPeak;
    return [[
      scenarioName(s),
      fmt.int(run.rate),
      fmt.int(ideal),
      fmt.f3(run.rate / ideal),
      fmt.f1(run.cpuUsPerJob.workers),
      fmt.f1(run.cpuUsPerJob.gearmand),
      fmt.f1(run.cpuUsPerJob.endpoint),
      fds === undefined ? '—' : `${fmt.int(fds.daemon)}${fds.daemonProcess === undefined ? '' : ` (${fmt.int(fds.daemonProcess)})`} / ${fmt.int(fds.gearmand)} / ${fmt.int(fds.endpoint)}`,
      `${pssMib(s.idleAloneKiB)} → ${first?.kind === 'throughput' ? pssMib(first.aloneAfterKiB) : '—'}`,
      `${fmt.mib(s.idleRssKiB)} → ${first?.kind === 'throughput' ? fmt.mib(first.rssAfterKiB) : '—'}`,
      String(run.httpConnections ?? '—'),
    ], ...floorRow];
  });
  return [
    `Behind a slow endpoint (queue mode; ideal = Little's law, slots ÷ the endpoint's delay; fds: the most held at once, daemon (its largest process) / gearmand / endpoint;`,
    'memory: idle → after the first run, MiB):',
    table(['scenario', 'jobs/s', 'ideal', '× ideal', 'daemon µs/job', 'gearmand µs/job', 'endpoint µs/job', 'fds peak', 'PSS alone', 'RSS', 'http conns'], rows),
    '',
  ];
}

/** PSS in MiB, or — when smaps_rollup could not be read. */
export function pssMib(kib: number | null | undefined): string {
  return kib === null || kib === undefined ? '—' : fmt.mib(kib);
}

/** "PSS alone / PSS / RSS" in MiB. */
function memoryTriple(alone: number | null | undefined, pss: number | null | undefined, rss: number | undefined): string {
  return `${pssMib(alone)} / ${pssMib(pss)} / ${fmt.mib(rss)}`;
}

/**
 * The memory figure the targets judge: "PSS alone" (master + children, each page counted once, see
 * uniqueSetKiB) when pagemap was readable, else the summed PSS, which other processes sharing the
 * node binary lower.
 */
export function judgedMemory(alone: number | null | undefined, pss: number | null | undefined): { kib: number; kind: string } | undefined {
  if (alone !== null && alone !== undefined) return { kib: alone, kind: 'PSS alone' };
  if (pss !== null && pss !== undefined) return { kib: pss, kind: 'PSS (pagemap unreadable: lowered by other processes)' };
  return undefined;
}

/**
 * RSS per process, split into anonymous (the process's own heap and malloc) and file-backed (mostly
 * the node binary's pages, shared by every node process but counted by RSS in each), with PSS beside
 * it. The targets are PSS, which counts the node binary's pages once for master and children.
 */
function memoryLines(scenarios: readonly ScenarioResult[], memoryFloor: MemoryFloor | undefined): string[] {
  const out = [
    'Daemon memory, MiB (RSS = anon + file; PSS divides a shared page between every process mapping it, this harness',
    "and other people's Node processes included; \"alone\" counts each page of master + children once, as their PSS",
    'would be with nothing else mapping the node binary: the targets judge it):',
  ];
  const who = (i: number): string => (i === 0 ? 'master' : `child ${i}`);
  const pss = pssMib;
  if (memoryFloor !== undefined) {
    out.push(
      `  Node floor (a cluster primary and one child that loaded undici, nothing else, idle): alone ${pss(memoryFloor.aloneKiB)}, ` +
        `RSS ${fmt.mib(memoryFloor.rssKiB)}, PSS ${pss(memoryFloor.pssKiB)}`,
    );
  }
  for (const s of scenarios) {
    const name = scenarioName(s);
    if (s.idleByProcess !== undefined) {
      const parts = s.idleByProcess.map((p, i) => `${who(i)} ${fmt.mib(p.rssKiB)} (${fmt.mib(p.rssAnonKiB)}+${fmt.mib(p.rssFileKiB)}, PSS ${pss(p.pssKiB)})`);
      out.push(`  ${name} idle: alone ${pss(s.idleAloneKiB)}, RSS ${fmt.mib(s.idleRssKiB)}, PSS ${pss(s.idlePssKiB)}; ${parts.join(', ')}`);
    }
    const q = firstQueueRun(s) ?? s.runs.cold;
    if (q?.kind === 'throughput' && q.perProcess !== undefined) {
      const parts = q.perProcess.map((p, i) => `${who(i)} ${fmt.mib(p.rssAfterKiB)} (${fmt.mib(p.rssAnonAfterKiB)}+${fmt.mib(p.rssFileAfterKiB)}, PSS ${pss(p.pssAfterKiB)})`);
      out.push(`  ${name} after ${q.mode}: alone ${pss(q.aloneAfterKiB)}, RSS ${fmt.mib(q.rssAfterKiB)}, PSS ${pss(q.pssAfterKiB)}; ${parts.join(', ')}`);
      if (s.settledAloneKiB !== undefined) out.push(`  ${name} 3 s after that run: alone ${pss(s.settledAloneKiB)}`);
    }
  }
  return out;
}

function mergeIntegrity(runs: readonly ThroughputResult[]): Integrity | undefined {
  const all = runs.map((r) => r.integrity).filter((i): i is Integrity => i !== undefined);
  if (all.length === 0) return undefined;
  return {
    answered: all.reduce((sum, i) => sum + i.answered, 0) / all.length,
    non200: all.reduce((sum, i) => sum + i.non200, 0),
    queueEmpty: all.every((i) => i.queueEmpty),
    ok: all.every((i) => i.ok),
    problems: all.flatMap((i) => i.problems),
  };
}
