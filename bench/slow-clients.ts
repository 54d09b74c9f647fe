/**
 * How long slow clients can keep a real one out of the status port and the exporter ("Process faults
 * and hostile clients"). `npm run build && node dist/bench/slow-clients.js [--clients 64]
 * [--trickle-ms 4000] [--seconds 60] [--probe-ms 500]`; not part of `npm test`.
 *
 * One daemon started through its CLI (one pool of one slot; no gearmand needed), with --status_port
 * and --exporter_addr. For each listener in turn: `--clients` connections that each send one byte of a
 * never-finished request every `--trickle-ms` (and reconnect at once when the server drops them, as a
 * hostile client would), while a real client asks every `--probe-ms` (`threads` on the status port,
 * GET /healthz on the exporter) with a 2 s budget per try. Reported: how many probes were answered,
 * their median and worst latency, how many were refused or got nothing, and the longest stretch
 * without any answer.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/free-port.js';
import { OUR_BIN } from './e2e/daemon.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '64' },
    'trickle-ms': { type: 'string', default: '4000' },
    seconds: { type: 'string', default: '60' },
    'probe-ms': { type: 'string', default: '500' },
  },
});
const CLIENTS = Number(args.clients);
const TRICKLE_MS = Number(args['trickle-ms']);
const SECONDS = Number(args.seconds);
const PROBE_MS = Number(args['probe-ms']);

interface ProbeResult {
  ok: boolean;
  ms: number;
  /** What came back when not ok ('' for nothing, or the refusal text). */
  text: string;
}

/** One exchange: writes `request`, reads until the server closes or `budgetMs` passes. */
function probe(port: number, request: string, expect: (reply: string) => boolean, budgetMs = 2000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: expect(reply), ms: performance.now() - started, text: reply.slice(0, 60) });
    };
    const timer = setTimeout(done, budgetMs);
    socket.setEncoding('latin1');
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (expect(reply)) done();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

/** `count` clients that each trickle one byte of `request` every `intervalMs`, reconnecting when dropped. */
function trickle(port: number, request: string, count: number, intervalMs: number): { stop: () => void; reconnects: () => number } {
  let stopped = false;
  let reconnects = -count;
  const sockets = new Set<net.Socket>();
  const open = (): void => {
    if (stopped) return;
    reconnects++;
    const socket = net.connect(port, '127.0.0.1');
    sockets.add(socket);
    let sent = 0;
    let timer: NodeJS.Timeout | null = null;
    const next = (): void => {
      if (socket.destroyed) return;
      socket.write(request[sent % request.length] as string);
      sent++;
      timer = setTimeout(next, intervalMs);
    };
    socket.on('connect', next);
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      if (timer !== null) clearTimeout(timer);
      // A hostile client comes straight back; a short pause keeps this harness from spinning.
      if (!stopped) setTimeout(open, 10);
    });
  };
  for (let i = 0; i < count; i++) open();
  return {
    stop: () => {
      stopped = true;
      for (const socket of sockets) socket.destroy();
    },
    reconnects: () => Math.max(0, reconnects),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : (sorted[Math.floor(sorted.length / 2)] as number);
}

async function measure(name: string, port: number, slowRequest: string, request: string, expect: (reply: string) => boolean): Promise<void> {
  const attackers = trickle(port, slowRequest, CLIENTS, TRICKLE_MS);
  // Let every slow client take its place first.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const results: Array<ProbeResult & { at: number }> = [];
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    const at = Date.now();
    results.push({ ...(await probe(port, request, expect)), at });
    const wait = at + PROBE_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  attackers.stop();
  const answered = results.filter((r) => r.ok);
  let longestGap = 0;
  let since = end - SECONDS * 1000;
  for (const r of results) {
    if (r.ok) {
      longestGap = Math.max(longestGap, r.at - since);
      since = r.at;
    }
  }
  longestGap = Math.max(longestGap, end - since);
  const failures = new Map<string, number>();
  for (const r of results) if (!r.ok) failures.set(JSON.stringify(r.text), (failures.get(JSON.stringify(r.text)) ?? 0) + 1);
  console.log(
    `${name}: ${CLIENTS} slow clients (1 byte / ${TRICKLE_MS} ms, ${attackers.reconnects()} reconnects), ${SECONDS} s: ` +
      `${answered.length}/${results.length} probes answered, latency median ${median(answered.map((r) => r.ms)).toFixed(1)} ms, ` +
      `worst ${answered.length === 0 ? 'n/a' : Math.max(...answered.map((r) => r.ms)).toFixed(1)} ms; ` +
      `longest stretch without an answer ${(longestGap / 1000).toFixed(1)} s; not answered: ${[...failures].map(([text, n]) => `${n}× ${text}`).join(', ') || 'none'}`,
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ds-slow-clients-'));
  const statusPort = await freePort();
  const exporterPort = await freePort();
  const gearmandPort = await freePort();
  const jobs = join(dir, 'jobs.json');
  writeFileSync(jobs, JSON.stringify({ gearman_servers_list: [`127.0.0.1:${gearmandPort}`], pools_list: { Regular: { job_processing_uri: 'http://127.0.0.1:1/', worker_count: 1, jobs_list: ['Sum'] } } }));
  const daemon = spawn(process.execPath, [OUR_BIN, '--jobsconfig', jobs, '--status_port', String(statusPort), '--exporter_addr', `127.0.0.1:${exporterPort}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  daemon.stdout.resume();
  try {
    for (;;) {
      const ready = await probe(statusPort, 'threads\n', (reply) => reply.includes('\tRegular\t'));
      if (ready.ok) break;
      if (daemon.exitCode !== null) throw new Error(`the daemon exited with ${daemon.exitCode}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await measure('status port', statusPort, 'threads', 'threads\n', (reply) => reply.includes('\tRegular\t'));
    await measure('exporter', exporterPort, 'GET /metrics HTTP/1.1\r\nHost: x\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', (reply) => reply.startsWith('HTTP/1.1 200'));
  } finally {
    daemon.kill('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
