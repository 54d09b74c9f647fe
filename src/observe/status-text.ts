/**
 * What the status port's commands say (docs/observability.md, Status port), rendered from one snapshot of the master:
 * the same Observation /status and /metrics are built from, so the views cannot disagree. Pure
 * functions of plain data; status-server.ts speaks the line protocol around them.
 *
 * Decisions where the spec is silent:
 * - `threads` leaves out the slots of a child that did not answer the status poll (the original's line
 *   format has no place for "unknown"); `gauges` says `<pool>.responding: 0` for it.
 * - A slot's `threads` flag, `gauges`' `stopping_slots`, /status and /metrics share one definition of
 *   stopping (slotState): told to stop by the child, or its child draining.
 * - `gauges` has a line per paused function (`<pool>.function.<name>.breaker: open|half-open`), not per
 *   function: a pool may list thousands, and the closed ones are what is normal. `paused_functions`
 *   counts them, so a check has a line to read that is always there.
 * - An operator's pause (docs/operations.md, Pause and resume): `threads` says `Paused` for an idle
 *   slot of a paused pool, `gauges` has `<pool>.paused: 0|1` always and a line per function an
 *   operator paused (`<pool>.function.<name>.paused: 1`), from the master's record of the pauses.
 */
import { COUNTER_NAMES } from '../ipc/counters.js';
import { flowGaugeLines, poolFlow } from './flow-view.js';
import { isPaused } from './function-breaker-view.js';
import { childrenOf, childResponding, countedPools, poolDelivery, poolFunctionBreakers, poolPause, poolSuspectServers, slotsOf, slotState, SlotState } from './observation.js';
import type { Observation } from './observation.js';
import { emptyTotals } from './pool-totals.js';
import type { StatusSource } from './status-server.js';

/** Control characters in a handle or unique would break the one-line-per-slot format. */
function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function lines(list: readonly string[]): string {
  return list.map((line) => `${line}\r\n`).join('');
}

/** One line per slot of every child that answered: `<slot-id>\t<pool>\t<stopping 0|1>\t<state>`. */
export function threadsText(observation: Observation): string {
  const out: string[] = [];
  for (const child of observation.children) {
    const idle = poolPause(observation, child.pool)?.pool != null && !child.retiring ? 'Paused' : 'Waiting for work';
    for (const slot of child.status?.slots ?? []) {
      const state = slot.job === null ? idle : `job_handle=${printable(slot.job.handle)} job_unique=${printable(slot.job.unique)}`;
      const flag = slotState(slot, child) === SlotState.STOPPING ? 1 : 0;
      out.push(`${printable(slot.id)}\t${printable(child.pool)}\t${flag}\t${state}`);
    }
  }
  return lines(out);
}

/** The daemon's and every pool's totals, the pools removed long ago included: the figures of /metrics and /status. */
export function countersText(observation: Observation): string {
  const out = [`reloads: ${observation.reloads.ok}`, `reload_failures: ${observation.reloads.failed}`, `child_restarts: ${observation.childRestarts}`];
  for (const pool of countedPools(observation)) {
    const totals = observation.totals.get(pool) ?? emptyTotals();
    for (const name of COUNTER_NAMES) out.push(`${pool}.${name}: ${totals.counters[name]}`);
    out.push(`${pool}.breaker_opened: ${totals.breakerOpened}`, `${pool}.child_restarts: ${totals.restarts}`);
  }
  return lines(out);
}

/** The daemon's and every configured or draining pool's current state. */
export function gaugesText(observation: Observation): string {
  const serving = observation.children.filter((child) => !child.retiring);
  const out = [
    `pools: ${Object.keys(observation.pools).length}`,
    `children: ${observation.children.filter((child) => child.pid !== null).length}`,
    `failed_pools: ${serving.filter((child) => child.state === 'failed').length}`,
    `uptime_seconds: ${Math.floor((observation.takenAt - observation.startedAt) / 1000)}`,
  ];
  for (const pool of observation.poolNames) {
    const children = childrenOf(observation, pool);
    const current = serving.find((child) => child.pool === pool);
    const slots = slotsOf(observation, pool);
    const delivery = poolDelivery(children);
    const paused = poolFunctionBreakers(observation, pool, delivery).filter(isPaused);
    const pause = poolPause(observation, pool);
    out.push(
      `${pool}.worker_count: ${observation.pools[pool]?.workerCount ?? 0}`,
      `${pool}.slots: ${slots.length}`,
      `${pool}.busy_slots: ${slots.filter(({ slot }) => slot.job !== null).length}`,
      `${pool}.stopping_slots: ${slots.filter(({ slot, child }) => slotState(slot, child) === SlotState.STOPPING).length}`,
      // Servers the best-connected slot is registered with; `connections` counts every slot's.
      `${pool}.connected_servers: ${slots.reduce((max, { slot }) => Math.max(max, slot.connectedServers), 0)}`,
      `${pool}.connections: ${slots.reduce((sum, { slot }) => sum + slot.connectedServers, 0)}`,
      // Servers the slots skip because a GRAB went unanswered (hung or overloaded); /status names them.
      `${pool}.suspect_servers: ${poolSuspectServers(children).size}`,
      `${pool}.child_pid: ${current?.pid ?? 0}`,
      // A running child that did not answer this poll; one with no process has nothing to answer.
      `${pool}.responding: ${children.some((child) => child.status === null && child.pid !== null) ? 0 : 1}`,
      `${pool}.child_responding: ${childResponding(observation, pool) ? 1 : 0}`,
      `${pool}.failed: ${current?.state === 'failed' ? 1 : 0}`,
      // `unknown` while no child of the pool reports a delivery status (none running, or not answering).
      `${pool}.breaker: ${delivery?.breaker ?? 'unknown'}`,
      `${pool}.retrying: ${delivery?.retrying ?? 0}`,
      `${pool}.admitted_slots: ${delivery?.admitted ?? 0}`,
      `${pool}.paused: ${pause?.pool != null ? 1 : 0}`,
      ...(pause?.functions ?? []).map((f) => `${pool}.function.${printable(f.function)}.paused: 1`),
      ...flowGaugeLines(pool, poolFlow(children)),
      // Last: a line per paused function, as many as there are.
      `${pool}.paused_functions: ${paused.length}`,
      ...paused.map((b) => `${pool}.function.${printable(b.function)}.breaker: ${b.breaker}`),
    );
  }
  return lines(out);
}

/** The status port's commands, each answered from a fresh snapshot. */
export function statusCommands(observe: () => Promise<Observation>): StatusSource {
  return {
    threads: async () => threadsText(await observe()),
    counters: async () => countersText(await observe()),
    gauges: async () => gaugesText(await observe()),
  };
}
