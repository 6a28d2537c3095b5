import { existsSync, readFileSync } from 'node:fs';
import type { TaskSpec } from '@taskstream/domain';
import type { StepContext } from '../src/steps/index.js';

/**
 * Whether a process still runs. An orphan that was killed stays a zombie until init reaps it,
 * and some container inits never do; kill(pid, 0) succeeds on a zombie, so its state is read too.
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

/** The pids a command wrote to `file`, one a line. */
export function pidsIn(file: string): number[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
}

export function stepContext(executor: string, config: Record<string, unknown>, signal: AbortSignal = new AbortController().signal): StepContext {
  const spec: TaskSpec = { id: 't', executor, config, depends_on: [], queue: 'default', priority: 0 };
  return { spec, signal, flowId: '01J00000000000000000000000', taskId: 't', attempt: 1, idempotencyKey: 'k' };
}
