import type { TaskSpec } from '@taskstream/domain';

/** What a step runner gets: the task, an abort signal (timeout or cancel), and identity for idempotency. */
export interface StepContext {
  spec: TaskSpec;
  signal: AbortSignal;
  flowId: string;
  taskId: string;
  attempt: number;
  idempotencyKey: string;
  /** Outputs of the task's upstream tasks by id, for transform expressions (`tasks.<id>.output`); none when absent. */
  upstream?: Record<string, { output: unknown }>;
  /** The flow's `params`, for transform expressions; `{}` when absent. */
  params?: unknown;
  /** A shell step's artifacts directory for this attempt ($TASKSTREAM_ARTIFACTS): what it leaves there is stored once it succeeded. */
  artifactsDir?: string;
}

export type StepRunner = (ctx: StepContext) => Promise<unknown>;
