/**
 * The master's side of --dead_letter_dir: the folder of the pools' default dead-letter files exists
 * before their children are forked. It is created (mode 0700, with its missing parents) at startup
 * while the master may still be root, given to --user, and tested for writing once the master runs
 * as that user; a reload that starts or changes pools creates it again if it went missing.
 *
 * A folder that cannot be created or written is one error line, not a failed start: the pools run,
 * and a job they would dead-letter is handed back to gearmand instead of failed (the child's side).
 */
import path from 'node:path';
import type { PoolConfig } from '../config/types.js';
import { lookupUser } from '../daemon/drop-privileges.js';
import { createPrivateFolder, fileErrorReason, folderWriteProblem, type FolderOwner } from '../daemon/private-folder.js';
import type { Logger } from '../log/logger.js';

export class DeadLetterFolder {
  readonly #dir: string;
  readonly #user: string | null;
  readonly #log: Logger;

  constructor(dir: string, user: string | null, log: Logger) {
    this.#dir = path.resolve(dir);
    this.#user = user;
    this.#log = log;
  }

  /** The pools among `pools` that will run and write into the folder. */
  #users(pools: Iterable<PoolConfig>): string[] {
    const names: string[] = [];
    for (const pool of pools) {
      const file = pool.delivery.deadLetterFile;
      if (pool.workerCount > 0 && file !== null && path.dirname(file) === this.#dir) names.push(pool.name);
    }
    return names;
  }

  /**
   * Creates the folder when one of `pools` writes into it and it is missing. Returns false, after
   * logging one error line, when it cannot be created.
   */
  create(pools: Iterable<PoolConfig>): boolean {
    const names = this.#users(pools);
    if (names.length === 0) return true;
    let owner: FolderOwner | null = null;
    try {
      if (this.#user !== null) owner = lookupUser(this.#user);
      const created = createPrivateFolder(this.#dir, owner);
      if (created.length > 0) {
        this.#log.info({ event: 'dead-letter-dir-created', dir: this.#dir, created, user: this.#user }, `created the dead-letter folder ${this.#dir} (--dead_letter_dir, mode 0700)`);
      }
      return true;
    } catch (error) {
      this.#fail(names, `cannot create the folder: ${fileErrorReason(error)}`, 'create it');
      return false;
    }
  }

  /**
   * Checks, as this process (after --user took effect: as the pool children will be), that the folder
   * takes files. Returns false, after logging one error line, when it does not.
   */
  verify(pools: Iterable<PoolConfig>): boolean {
    const names = this.#users(pools);
    if (names.length === 0) return true;
    const problem = folderWriteProblem(this.#dir);
    if (problem === null) return true;
    const who = this.#user ?? `uid ${process.geteuid?.() ?? '?'}`;
    this.#fail(names, `not writable by ${who}: ${problem}`, `make it writable by ${who}`);
    return false;
  }

  /** Creates and verifies: for a reload, when the master already runs as --user. */
  prepare(pools: Iterable<PoolConfig>): void {
    const list = [...pools];
    if (this.create(list)) this.verify(list);
  }

  #fail(pools: string[], what: string, fix: string): void {
    const list = pools.map((name) => JSON.stringify(name)).join(', ');
    this.#log.error(
      { event: 'dead-letter-dir-failed', dir: this.#dir, pools, user: this.#user },
      `--dead_letter_dir ${this.#dir}: ${what}; pools ${list} keep no dead letters until it can be written (a job they would dead-letter is handed back to gearmand instead): ${fix} or set --dead_letter_dir`,
    );
  }
}
