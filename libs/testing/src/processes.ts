import { existsSync, readFileSync } from 'node:fs';

/**
 * Whether a process still runs. An orphan that was killed stays a zombie until init reaps it, and
 * some container inits never do; kill(pid, 0) succeeds on a zombie, so its state is read too.
 */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (!existsSync('/proc/self/stat')) return true;
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
