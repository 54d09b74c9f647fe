/**
 * A path to this very node binary that every user may execute, for tests that run the daemon (or a
 * check) as `nobody`. When the checkout is private (a clone under /root, or under a 0700 mktemp
 * folder) and the node in use lives inside it (.node/, fetched by scripts/install-deps.sh), nobody
 * cannot run it: the test would then prove only that. The binary is hard-linked (or, across file
 * systems, copied) into a world-readable temporary folder once per test process.
 */
import { accessSync, chmodSync, constants, copyFileSync, linkSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

let shared: string | null = null;

/** True when every directory on the way to `file` is searchable by others and the file is executable by them. */
function othersCanRun(file: string): boolean {
  let dir = path.dirname(file);
  try {
    accessSync(file, constants.X_OK);
    for (;;) {
      // mode bits for "others": search on every directory, execute on the file.
      if ((statMode(dir) & 0o001) === 0) return false;
      const parent = path.dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
    return (statMode(file) & 0o001) !== 0;
  } catch {
    return false;
  }
}

function statMode(file: string): number {
  return statSync(file).mode;
}

export function nodeForEveryone(): string {
  if (othersCanRun(process.execPath)) return process.execPath;
  if (shared !== null) return shared;
  const dir = mkdtempSync(path.join(tmpdir(), 'ds-node-'));
  chmodSync(dir, 0o755);
  const target = path.join(dir, 'node');
  try {
    linkSync(process.execPath, target);
  } catch {
    copyFileSync(process.execPath, target);
    chmodSync(target, 0o755);
  }
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  shared = target;
  return target;
}
