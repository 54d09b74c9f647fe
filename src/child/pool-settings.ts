/** What the child's pool derives from its settings: what a reconfigure needs, and each part's own settings. */
import { PoolChange, poolChanges, sameServers } from '../config/pool-changes.js';
import type { ChildSettings } from '../ipc/settings.js';
import type { FlowSettings } from './admission-gate.js';
import type { DeliverySettings } from './delivery/delivery.js';

/** What a reconfigure needs, from the one table of pool-changes.ts plus the child's own settings. */
export function changesBetween(a: ChildSettings, b: ChildSettings): Set<PoolChange> {
  const changes = poolChanges(a.pool, b.pool);
  if (a.loopTimeoutMs !== b.loopTimeoutMs || !sameServers(a.servers, b.servers)) changes.add(PoolChange.SLOTS);
  return changes;
}

export function flowSettings(settings: ChildSettings): FlowSettings {
  return { rateLimit: settings.pool.rateLimit, concurrency: settings.pool.concurrency, workerCount: settings.pool.workerCount };
}

export function deliverySettings(settings: ChildSettings): DeliverySettings {
  return { poolName: settings.pool.name, policy: settings.pool.delivery, traceParentField: settings.pool.traceParentField };
}

/** A slot's number, from its id `<pid>-<n>`: slots sort in the order they were made. */
export function slotNumber(id: string): number {
  return Number(id.slice(id.lastIndexOf('-') + 1));
}
