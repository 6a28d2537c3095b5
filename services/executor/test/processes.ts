import { existsSync, readFileSync } from 'node:fs';
import type { TaskSpec } from '@taskstream/domain';
import type { StepContext } from '../src/steps/index.js';

export { alive } from '@taskstream/testing';

/** The pids a command wrote to `file`, one a line. */
export function pidsIn(file: string): number[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number) : [];
}

export function stepContext(executor: string, config: Record<string, unknown>, signal: AbortSignal = new AbortController().signal): StepContext {
  const spec: TaskSpec = { id: 't', executor, config, depends_on: [], queue: 'default', priority: 0 };
  return { spec, signal, flowId: '01J00000000000000000000000', taskId: 't', attempt: 1, idempotencyKey: 'k' };
}
