/**
 * Which of a slot's connections it grabs on next: round-robin starting after the connection that
 * served last, so a busy server cannot starve one that just sent NOOP (the woken one is next), and with
 * one server it is always the same connection, whose answer and next GRAB leave in one write. A
 * suspect server's connection is skipped (server-state.ts), so a hung server cannot hold the slot; the
 * slot asks to be kicked when that server answers again.
 */
import { ConnectionState } from './gearman/gearman-connection.js';
import type { GearmanConnection } from './gearman/gearman-connection.js';
import type { SuspectWaiter } from './gearman/server-state.js';

export class GrabRotation {
  readonly #connections: readonly GearmanConnection[];
  /** Index of the connection that grabbed last: the round-robin starts after it. */
  #cursor = 0;

  constructor(connections: readonly GearmanConnection[]) {
    this.#connections = connections;
  }

  /** `connection` got a job: the next round starts after it. */
  served(connection: GearmanConnection): void {
    this.#cursor = this.#connections.indexOf(connection);
  }

  /**
   * The next READY connection after the cursor, the cursor's own last; `alsoReady` counts as READY
   * (the connection whose job is finishing right now). `waiter` is kicked when a skipped suspect
   * server answers again.
   */
  next(alsoReady: GearmanConnection | null, waiter: SuspectWaiter): GearmanConnection | null {
    const connections = this.#connections;
    const n = connections.length;
    for (let i = 1; i <= n; i++) {
      const index = (this.#cursor + i) % n;
      const connection = connections[index] as GearmanConnection;
      if (connection === alsoReady || connection.state === ConnectionState.READY) {
        if (connection.serverState.suspect) {
          connection.serverState.wait(waiter);
          continue;
        }
        this.#cursor = index;
        return connection;
      }
    }
    return null;
  }
}
