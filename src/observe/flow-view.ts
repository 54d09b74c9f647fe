/**
 * A pool's flow control (rate limit, concurrency limit; docs/flow-control.md) as the master's views
 * show it: `gauges`, /metrics, /status and the status page. Pure functions of what the pool's serving
 * child reports (ChildStatus.flow); a pool whose child reports none (none running, an older child) shows
 * `unknown` in `gauges` and no series in /metrics rather than a stale or made-up figure.
 */
import type { ChildStatus, FlowStatus } from '../ipc/messages.js';
import { MetricType } from './prometheus.js';
import type { MetricFamily, Sample } from './prometheus.js';

/** The serving child's flow status (the one not draining), else a draining one's; null while none reports one. */
export function poolFlow(children: ReadonlyArray<{ status: ChildStatus | null; retiring: boolean }>): FlowStatus | null {
  const reporting = children.filter((child) => child.status?.flow != null);
  const chosen = reporting.find((child) => !child.retiring) ?? reporting[0];
  return chosen?.status?.flow ?? null;
}

/** The `gauges` lines of one pool. */
export function flowGaugeLines(pool: string, flow: FlowStatus | null): string[] {
  const out = [
    `${pool}.concurrency: ${flow?.concurrency ?? 'unknown'}`,
    `${pool}.concurrency_limit: ${flow?.concurrencyLimit ?? 0}`,
    `${pool}.rate_limit: ${flow === null ? 'unknown' : (flow.ratePerSecond ?? 'none')}`,
  ];
  if (flow?.tokens != null) out.push(`${pool}.rate_tokens: ${flow.tokens}`);
  out.push(`${pool}.waiting_slots: ${flow?.waitingSlots ?? 0}`);
  return out;
}

/**
 * /status: a pool's limits (`flow.limits`): the child's flow status without the pause, which /status
 * shows beside them; null while no child of the pool reports them.
 */
export type StatusLimits = Omit<FlowStatus, 'paused' | 'pausedFunctions'>;

export function statusLimits(flow: FlowStatus | null): StatusLimits | null {
  if (flow === null) return null;
  return {
    concurrency: flow.concurrency,
    concurrencyLimit: flow.concurrencyLimit,
    baselineMs: flow.baselineMs,
    ratePerSecond: flow.ratePerSecond,
    burst: flow.burst,
    tokens: flow.tokens,
    waitingSlots: flow.waitingSlots,
  };
}

/** The /metrics families of the pools' flow control; a series only where a child reports it. */
export function flowFamilies(pools: ReadonlyArray<{ pool: string; flow: FlowStatus | null }>): MetricFamily[] {
  const limit: Sample[] = [];
  const baseline: Sample[] = [];
  const rate: Sample[] = [];
  const tokens: Sample[] = [];
  const waiting: Sample[] = [];
  for (const { pool, flow } of pools) {
    if (flow === null) continue;
    const labels = { pool };
    limit.push({ labels: { pool, mode: flow.concurrency }, value: flow.concurrencyLimit });
    if (flow.baselineMs !== null) baseline.push({ labels, value: flow.baselineMs / 1000 });
    if (flow.ratePerSecond !== null) rate.push({ labels, value: flow.ratePerSecond });
    if (flow.tokens !== null) tokens.push({ labels, value: flow.tokens });
    waiting.push({ labels, value: flow.waitingSlots });
  }
  return [
    {
      name: 'driveshaft_concurrency_limit',
      help: 'Slots that may hold a job by the pool\'s concurrency setting: worker_count when mode="fixed", the limit the pool found from the endpoint\'s latency and errors when mode="adaptive" (the breaker may admit fewer: driveshaft_admitted_slots).',
      type: MetricType.GAUGE,
      samples: limit,
    },
    {
      name: 'driveshaft_concurrency_baseline_seconds',
      help: "Adaptive concurrency: the endpoint's no-load latency (median at half the limit) that each window's median latency is compared with.",
      type: MetricType.GAUGE,
      samples: baseline,
    },
    {
      name: 'driveshaft_rate_limit_per_second',
      help: "The pool's rate_limit.per_second: new jobs taken from gearmand per second at most (pools with a rate limit only).",
      type: MetricType.GAUGE,
      samples: rate,
    },
    {
      name: 'driveshaft_rate_limit_tokens',
      help: "Whole tokens in the pool's rate-limit bucket (at most rate_limit.burst; below zero while retries taken on credit are paid back).",
      type: MetricType.GAUGE,
      samples: tokens,
    },
    {
      name: 'driveshaft_waiting_slots',
      help: 'Idle slots that may not grab now: refused by the breaker, the concurrency limit or the rate limit; their jobs wait in gearmand.',
      type: MetricType.GAUGE,
      samples: waiting,
    },
  ];
}
