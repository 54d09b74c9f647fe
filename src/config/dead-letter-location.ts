/**
 * Where a pool keeps its dead letters when its `delivery` names no file: `<--dead_letter_dir>/<pool>.jsonl`
 * (docs/delivery.md, Dead letters and replay). Without a file a failed background job would be gone once gearmand
 * gets its WORK_FAIL, so the default is a file, in a folder the daemon creates itself.
 *
 * The folder follows where a service keeps its state: systemd's StateDirectory= (STATE_DIRECTORY),
 * else /var/lib for root, else the user's XDG state folder.
 */
import os from 'node:os';
import path from 'node:path';

/** The file name limit of Linux (and most) file systems, in bytes. */
export const MAX_FILE_NAME_BYTES = 255;

const FOLDER = path.join('driveshaft', 'dead-letters');
const SUFFIX = '.jsonl';
const SAFE_BYTE = /^[A-Za-z0-9._-]$/;

/** What the default depends on; the process's own values unless a test says otherwise. */
export interface DeadLetterDirContext {
  env: NodeJS.ProcessEnv;
  /** Effective uid; -1 where there is none (Windows). */
  euid: number;
  /** os.homedir(): used when HOME is not set. */
  homedir?: string;
}

/**
 * --dead_letter_dir when it is not given: `$STATE_DIRECTORY/dead-letters` under systemd's
 * StateDirectory= (its first folder when it lists several), `/var/lib/driveshaft/dead-letters` for
 * root, else `${XDG_STATE_HOME:-$HOME/.local/state}/driveshaft/dead-letters`.
 */
export function defaultDeadLetterDir({ env, euid, homedir }: DeadLetterDirContext): string {
  const stateDirectory = env.STATE_DIRECTORY?.split(':')[0];
  if (stateDirectory !== undefined && path.isAbsolute(stateDirectory)) return path.join(stateDirectory, 'dead-letters');
  if (euid === 0) return path.join('/var/lib', FOLDER);
  // The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, FOLDER);
  const home = env.HOME !== undefined && path.isAbsolute(env.HOME) ? env.HOME : (homedir ?? os.homedir());
  return path.join(home, '.local', 'state', FOLDER);
}

/** The default as --help describes it. */
export const DEFAULT_DEAD_LETTER_DIR_TEXT = '$STATE_DIRECTORY/dead-letters, else /var/lib/driveshaft/dead-letters as root, else ~/.local/state/driveshaft/dead-letters';

function percent(byte: number): string {
  return `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
}

/**
 * `<pool>.jsonl`, every byte outside [A-Za-z0-9._-] percent-encoded (UTF-8), so that no pool name can
 * reach another folder or a special name. One-to-one: `%` itself is encoded, and a lone UTF-16
 * surrogate (which UTF-8 cannot hold and would turn into U+FFFD, like a real U+FFFD) becomes `%uXXXX`.
 */
export function deadLetterFileName(pool: string): string {
  let name = '';
  for (const character of pool) {
    const unit = character.charCodeAt(0);
    if (character.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      name += `%u${unit.toString(16).toUpperCase()}`;
      continue;
    }
    for (const byte of Buffer.from(character, 'utf8')) {
      const text = String.fromCharCode(byte);
      name += SAFE_BYTE.test(text) ? text : percent(byte);
    }
  }
  return `${name}${SUFFIX}`;
}

/** The pool's default dead-letter file under `dir`. */
export function defaultDeadLetterFile(dir: string, pool: string): string {
  return path.join(dir, deadLetterFileName(pool));
}
