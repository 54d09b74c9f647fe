/**
 * Jobs config texts and their parse for the config tests: a pool object, a whole config, and the
 * parse or its problem lines, named after `file` (each test file names its own, since the expected
 * problem lines quote it).
 */
import assert from 'node:assert/strict';
import { parseJobsConfig } from '../../src/config/jobs-config.js';
import type { JobsConfig } from '../../src/config/types.js';
import { ConfigError, ErrorCode } from '../../src/errors.js';

export const DEFAULTS = { maxRunningTimeMs: 300_000, requestFormat: 'json' } as const;

/** A valid pool object with `extra` keys on top. */
export function pool(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { job_processing_uri: 'http://localhost/job.php', worker_count: 4, jobs_list: ['Sum'], ...extra };
}

export function config(pools: Record<string, unknown>, servers: unknown = ['localhost']): string {
  return JSON.stringify({ gearman_servers_list: servers, pools_list: pools });
}

export interface ConfigParser {
  parse: (text: string) => JobsConfig;
  /** The problem lines parsing `text` throws, asserting they come as one ConfigError. */
  problems: (text: string) => readonly string[];
}

export function configParser(file: string): ConfigParser {
  const parse = (text: string): JobsConfig => parseJobsConfig(text, file, DEFAULTS);
  return {
    parse,
    problems(text) {
      try {
        parse(text);
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.code, ErrorCode.CONFIG);
        return error.problems;
      }
      assert.fail('expected a ConfigError');
    },
  };
}
