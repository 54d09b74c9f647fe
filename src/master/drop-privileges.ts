/**
 * --user (SPEC §1): after the status port is bound and the log files are open, become `user` with its
 * primary group and supplementary groups. Order matters: groups first (setgid and initgroups need root),
 * uid last. Only root can do this; anyone else gets a clear error instead of a half-dropped process.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
