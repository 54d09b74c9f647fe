/**
 * A folder the daemon creates for itself (the default dead-letter folder, --dead_letter_dir), and the
 * test of whether this process may write into a folder: what the master does before forking, and what
 * --check does as the --user the children will run as (src/daemon/write-probe.ts).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface FolderOwner {
  uid: number;
  gid: number;
}

const REASONS: Record<string, string> = {
  ENOENT: 'does not exist',
  ENOTDIR: 'a parent of it is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
};

/** A file system error as a short phrase (the errno code's meaning, or the error's message). */
export function fileErrorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return REASONS[code] ?? (error as Error).message;
}

/** The closest folder of `dir` (itself included) that exists, or null when not even `/` does. */
export function nearestExisting(dir: string): string | null {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    if (fs.existsSync(current)) return current;
    if (path.dirname(current) === current) return null;
  }
}

/**
 * Creates `dir` and its missing parents; the last one gets mode 0700 (it holds job payloads). When
 * `owner` is given and this process is root, every folder created is given to it: the pool children
 * run as that user and must reach and write the folder. An existing folder is left as it is.
 * Returns the folders created; throws the file system's error.
 */
export function createPrivateFolder(dir: string, owner: FolderOwner | null): string[] {
  const target = path.resolve(dir);
  const missing: string[] = [];
  for (let current = target; !fs.existsSync(current); current = path.dirname(current)) {
    missing.unshift(current);
    if (path.dirname(current) === current) break;
  }
  const chown = owner !== null && process.geteuid?.() === 0;
  for (const folder of missing) {
    // Parents get the usual mode (umask applies); only the folder of the letters is private.
    fs.mkdirSync(folder, folder === target ? { mode: 0o700 } : {});
    if (chown) fs.chownSync(folder, owner.uid, owner.gid);
  }
  return missing;
}

/**
 * Why this process cannot create a file in `dir`, or null when it can: it creates and removes an
 * empty file there, which counts permissions, ACLs, read-only mounts and every folder on the way
 * exactly as a later append will. The phrase names the folder: "directory /x: permission denied",
 * "/x is not a directory".
 */
export function folderWriteProblem(dir: string): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch (error) {
    return `directory ${dir}: ${fileErrorReason(error)}`;
  }
  if (!stat.isDirectory()) return `${dir} is not a directory`;
  const probe = path.join(dir, `.driveshaft-check-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    fs.closeSync(fs.openSync(probe, 'wx', 0o600));
  } catch (error) {
    return `directory ${dir}: ${fileErrorReason(error)}`;
  }
  try {
    fs.unlinkSync(probe);
  } catch {
    // Created but not removable (a sticky folder owned by someone else): writing works, which is the question.
  }
  return null;
}

/** Why this process cannot append to the existing `file`, or null when it can or the file does not exist yet. */
export function fileAppendProblem(file: string): string | null {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? null : fileErrorReason(error);
  }
  if (!stat.isFile()) return 'it exists and is not a regular file';
  try {
    fs.accessSync(file, fs.constants.W_OK);
  } catch (error) {
    return fileErrorReason(error);
  }
  return null;
}
