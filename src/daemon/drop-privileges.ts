/**
 * --user (docs/configuration.md, Options): after the status port is bound and the log files are open, become `user` with its
 * primary group and supplementary groups. Order matters: groups first (setgid and initgroups need root),
 * uid last. Only root can do this; anyone else gets a clear error instead of a half-dropped process.
 *
 * The pool children run as that user and load the program from disk then. A checkout under a private
 * directory (a clone in /root) is readable by root only: the children would die with MODULE_NOT_FOUND
 * and crash-loop. So once the master is the user, and before it forks anything, it checks that it can
 * still read its program (checkProgramReadable); access() as the user itself counts every directory
 * on the way, symlinks, groups and ACLs exactly as the children's loading will.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { UserError } from '../errors.js';

export interface UserIdentity {
  name: string;
  uid: number;
  gid: number;
}

/** Looks `name` up in /etc/passwd, then through `id` (NSS: LDAP, sssd) when it is not there. */
export function lookupUser(name: string, passwd = '/etc/passwd'): UserIdentity {
  try {
    for (const line of readFileSync(passwd, 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields[0] === name && fields.length >= 4) {
        const uid = Number(fields[2]);
        const gid = Number(fields[3]);
        if (Number.isInteger(uid) && Number.isInteger(gid)) return { name, uid, gid };
      }
    }
  } catch {
    // No readable passwd file: ask id below.
  }
  try {
    const uid = Number(execFileSync('id', ['-u', '--', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim());
    const gid = Number(execFileSync('id', ['-g', '--', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim());
    if (Number.isInteger(uid) && Number.isInteger(gid)) return { name, uid, gid };
  } catch {
    // Falls through to the error below.
  }
  throw new UserError(`--user ${name}: no such user`);
}

/** Drops to `name`. Throws UserError when not root, the user is unknown, or a step fails. */
export function dropPrivileges(name: string): UserIdentity {
  if (typeof process.getuid !== 'function' || typeof process.setuid !== 'function') {
    throw new UserError(`--user ${name}: changing user is not supported on this platform`);
  }
  const identity = lookupUser(name);
  const current = process.getuid();
  if (current === identity.uid) return identity;
  if (current !== 0) {
    throw new UserError(`--user ${name}: only root can change user (running as uid ${current})`);
  }
  try {
    // initgroups is missing from @types/node but present on POSIX builds of Node.
    (process as { initgroups?: (user: string, extraGroup: number) => void }).initgroups?.(name, identity.gid);
    process.setgid?.(identity.gid);
    process.setuid(identity.uid);
  } catch (error) {
    throw new UserError(`--user ${name}: cannot change user: ${(error as Error).message}`, { cause: error });
  }
  return identity;
}

/**
 * The files a pool child loads, as far as they can be known before forking: node itself, the child
 * entry, every compiled module beside it (the tree `programDir`), the package.json that makes them ES
 * modules, and each runtime dependency's package.json and entry.
 */
export function programFiles(programDir: string, packageJson: string): string[] {
  const files = [process.execPath, packageJson];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.js')) files.push(full);
    }
  };
  walk(programDir);
  const manifest = JSON.parse(readFileSync(packageJson, 'utf8')) as { dependencies?: Record<string, string> };
  const require = createRequire(packageJson);
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    for (const request of [`${name}/package.json`, name]) {
      try {
        files.push(require.resolve(request));
      } catch {
        // A package without a CommonJS entry (or not installed: the master would have failed already).
      }
    }
  }
  return files;
}

/**
 * Throws UserError naming the first of `files` this process cannot read (node itself: execute), and the
 * directory on its way that stops it, if one does. Called as the target user, before any fork.
 */
export function checkProgramReadable(user: string, files: readonly string[]): void {
  for (const file of files) {
    const mode = file === process.execPath ? constants.X_OK : constants.R_OK;
    try {
      accessSync(file, mode);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      const blocker = blockingDirectory(file);
      const where = blocker === null ? '' : ` (${blocker} is not searchable by ${user})`;
      throw new UserError(
        `--user ${user}: the pool processes run as ${user} and cannot ${mode === constants.X_OK ? 'run' : 'read'} ${file}: ${code}${where}; install driveshaft where ${user} can read it (e.g. under /opt or /usr/local) or give ${user} access to every directory on the way`,
        { cause: error },
      );
    }
  }
}

/** The first ancestor of `file` this process cannot search (x), or null when every one can be. */
function blockingDirectory(file: string): string | null {
  const parts = path.resolve(file).split(path.sep).filter((part) => part !== '');
  let dir: string = path.sep;
  for (const part of parts.slice(0, -1)) {
    dir = path.join(dir, part);
    try {
      accessSync(dir, constants.X_OK);
    } catch {
      return dir;
    }
  }
  return null;
}
