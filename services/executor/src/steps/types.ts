import type { TaskSpec } from '@taskstream/domain';

/** What a step runner gets: the task, an abort signal (timeout or cancel), and identity for idempotency. */
export interface StepContext {
  spec: TaskSpec;
  signal: AbortSignal;
  flowId: string;
  taskId: string;
  attempt: number;
  idempotencyKey: string;
}

export type StepRunner = (ctx: StepContext) => Promise<unknown>;
