/** What a slot is made with (slot.ts): its servers, functions and the pool's shared parts. */
import type { ServerAddress } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { AdmissionGate } from './admission-gate.js';
import type { Delivery } from './delivery/delivery.js';
import type { ServerState } from './gearman/server-state.js';
import type { WakeGroup } from './gearman/wake-group.js';

export interface SlotOptions {
  id: string;
  servers: readonly ServerAddress[];
  /** One per server, same order, shared by the slots of one generation (same functions). */
  wakeGroups?: readonly WakeGroup[];
  /** One per server, same order, shared by every slot of the pool (suspect servers, which GRAB they know). */
  serverStates?: readonly ServerState[];
  /** A late assignment found the slot busy and went back to gearmand (the pool counts jobs_returned). */
  onJobReturned?: () => void;
  functions: readonly string[];
  loopTimeoutMs: number;
  /** The pool's permits: a slot holds one from its grab until NO_JOB or the job's end. */
  gate: AdmissionGate;
  /** The pool's delivery: what happens to a job the slot holds. */
  delivery: Delivery;
  log: Logger;
  /** max_workload_bytes: larger workloads fail unread (0 or absent: the codec's packet cap). */
  maxWorkloadBytes?: number;
}
