import type { TaskError } from '@taskstream/domain';

/** A failed step, saying what happened and whether another attempt could succeed. */
export class StepError extends Error {
  override name = 'StepError';
  constructor(readonly detail: TaskError) {
    super(detail.message);
  }
}

export function toTaskError(error: unknown): TaskError {
  if (error instanceof StepError) return error.detail;
  return { message: (error as Error)?.message ?? String(error), code: 'INTERNAL', retryable: true };
}
