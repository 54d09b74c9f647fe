/**
 * The functions one connection registers (CAN_DO), changeable at runtime, and the CANT_DOs it still
 * owes gearmand. Bytes only: the connection decides when what is returned here may be written.
 *
 * Why a CANT_DO can be owed: gearmand 1.1.20 re-queues a job a worker holds when that worker sends
 * CANT_DO for the job's function (test/codec/hand-back.test.ts), so the endpoint would run it twice.
 * A CANT_DO therefore waits while the socket holds a job of that function, or has a GRAB outstanding
 * that may still bring one; a new socket registers the current set and owes nothing.
 */
import { RESET_ABILITIES_PACKET, encodeCanDo, encodeCantDo, encodeSetClientId } from '../../codec/index.js';

export class Abilities {
  /** What gearmand should believe this connection can do. */
  #functions: readonly string[];
  /** Dropped from #functions but still registered on the current socket. */
  readonly #owed = new Set<string>();
  /** The current socket was registered (a change must be written to it, not only remembered). */
  #registered = false;

  constructor(functions: readonly string[]) {
    this.#functions = [...functions];
  }

  get functions(): readonly string[] {
    return this.#functions;
  }

  /** RESET_ABILITIES + SET_CLIENT_ID + CAN_DO… for a new socket, which owes nothing. */
  register(clientId: string): Buffer {
    this.#owed.clear();
    this.#registered = true;
    return Buffer.concat([RESET_ABILITIES_PACKET, encodeSetClientId(clientId), ...this.#functions.map((fn) => encodeCanDo(fn))]);
  }

  /** The socket is gone; the next one registers whatever is current then. */
  unregistered(): void {
    this.#owed.clear();
    this.#registered = false;
  }

  /**
   * Sets the functions; returns the CAN_DO packets to write now (none before registration, which
   * will carry them). Functions dropped become owed CANT_DOs; one re-added before its CANT_DO went
   * out is simply no longer owed (gearmand still has it).
   */
  change(functions: readonly string[]): Buffer | null {
    const next = new Set(functions);
    const previous = new Set(this.#functions);
    this.#functions = [...next];
    if (!this.#registered) return null;
    const canDo: Buffer[] = [];
    for (const fn of next) {
      if (this.#owed.delete(fn)) continue;
      if (!previous.has(fn)) canDo.push(encodeCanDo(fn));
    }
    for (const fn of previous) if (!next.has(fn)) this.#owed.add(fn);
    return canDo.length === 0 ? null : Buffer.concat(canDo);
  }

  /** Whether a CANT_DO is owed. */
  get owing(): boolean {
    return this.#owed.size > 0;
  }

  /** The owed CANT_DOs except `held`'s (the function of a job the socket holds), now no longer owed. */
  takeCantDo(held: string | null = null): Buffer | null {
    if (this.#owed.size === 0) return null;
    const packets: Buffer[] = [];
    for (const fn of this.#owed) {
      if (fn === held) continue;
      packets.push(encodeCantDo(fn));
      this.#owed.delete(fn);
    }
    return packets.length === 0 ? null : Buffer.concat(packets);
  }
}

/** The parts present, in order, as one buffer for one write; null when none is. */
export function concatPackets(...parts: ReadonlyArray<Buffer | null>): Buffer | null {
  const present = parts.filter((part): part is Buffer => part !== null);
  if (present.length === 0) return null;
  return present.length === 1 ? (present[0] as Buffer) : Buffer.concat(present);
}
