/**
 * Whether the pool children could write their dead letters, tested as the user they run as. --check
 * runs as root and root may write anywhere, so with --user the test runs in a short child process
 * that first becomes that user exactly as the daemon does (dropPrivileges: its groups, then gid, then
 * uid), then creates and removes a file in each folder.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { UserError } from '../errors.js';
import { dropPrivileges } from './drop-privileges.js';
import { fileAppendProblem, folderWriteProblem, nearestExisting } from './private-folder.js';

export interface WriteProbeRequest {
  dir: string;
  /** Files in `dir` that will be appended to. */
  files: string[];
  /** The daemon creates `dir` when it is missing (--dead_letter_dir): missing is then not a problem. */
  createdAtStartup: boolean;
}

export interface WriteProbeResult {
  dir: string;
  /** True when `dir` is missing and createdAtStartup: `problem` is then about reaching its parent. */
  missing: boolean;
  /** The folder's problem ("directory /x: permission denied"), or null. */
  problem: string | null;
  /** Problems of existing files, by path. */
  fileProblems: Record<string, string>;
}

const PROBE_TIMEOUT_MS = 15_000;

/** The tests, as this process. */
export function probeWrites(requests: readonly WriteProbeRequest[]): WriteProbeResult[] {
  return requests.map(({ dir, files, createdAtStartup }) => {
    if (createdAtStartup && !fs.existsSync(dir)) {
      // The master creates it and its missing parents for this user; it must still reach them.
      const parent = nearestExisting(dir);
      let problem: string | null = null;
      try {
        if (parent !== null) fs.accessSync(parent, fs.constants.X_OK);
      } catch {
        problem = `${parent} is not searchable`;
      }
      return { dir, missing: true, problem, fileProblems: {} };
    }
    const fileProblems: Record<string, string> = {};
    const problem = folderWriteProblem(dir);
    if (problem === null) {
      for (const file of files) {
        const fileProblem = fileAppendProblem(file);
        if (fileProblem !== null) fileProblems[file] = fileProblem;
      }
    }
    return { dir, missing: false, problem, fileProblems };
  });
}

/** Entry of the child process probeWritesAs starts: become `user`, run the tests. */
export function probeWritesAfterDrop(user: string, requests: readonly WriteProbeRequest[]): WriteProbeResult[] {
  dropPrivileges(user);
  return probeWrites(requests);
}

/**
 * The tests as `user`, in a child process (only root can become another user). Throws when the child
 * fails: that is a broken installation, not an answer.
 */
export function probeWritesAs(user: string, requests: readonly WriteProbeRequest[]): WriteProbeResult[] {
  // The module is loaded while still root (the program may be readable by root only), then dropped.
  const script = 'const [, url, user, requests] = process.argv; const probe = await import(url); process.stdout.write(JSON.stringify(probe.probeWritesAfterDrop(user, JSON.parse(requests))));';
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script, import.meta.url, user, JSON.stringify(requests)], {
    encoding: 'utf8',
    timeout: PROBE_TIMEOUT_MS,
  });
  if (result.status !== 0) {
    const reason = result.error?.message ?? (result.stderr.trim().split('\n').at(-1) || `exit status ${result.status}`);
    throw new UserError(`--user ${user}: cannot test the dead-letter folders as ${user}: ${reason}`);
  }
  return JSON.parse(result.stdout) as WriteProbeResult[];
}
