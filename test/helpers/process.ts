/** Whether a process with this pid exists (kill -0). A zombie still counts: it has not been reaped yet. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
