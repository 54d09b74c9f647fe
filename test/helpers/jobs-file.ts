/** Jobs config files in the shape users write them, for tests that hand a file to the master or the CLI. */
import { writeFileSync } from 'node:fs';

export interface PoolSpec {
  uri: string;
  count: number;
  jobs: string[];
  /** More pool keys (delivery, headers…), written as given. */
  extra?: Record<string, unknown>;
}

/** The jobs config text for `servers` and `pools`. */
export function jobsJson(servers: string[], pools: Record<string, PoolSpec>): string {
  const poolsList: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(pools)) poolsList[name] = { job_processing_uri: p.uri, worker_count: p.count, jobs_list: p.jobs, ...p.extra };
  return `${JSON.stringify({ gearman_servers_list: servers, pools_list: poolsList }, null, 2)}\n`;
}

export function writeJobs(file: string, servers: string[], pools: Record<string, PoolSpec>): void {
  writeFileSync(file, jobsJson(servers, pools));
}
