import { TaskstreamError } from '@taskstream/client';

/** A failure as the user reads it: the API's message (which says what to do), with each problem on its own line. */
export function describeError(error: unknown): string {
  if (error instanceof TaskstreamError) return error.describe();
  return error instanceof Error ? error.message : String(error);
}

export const isUnauthorized = (error: unknown) => error instanceof TaskstreamError && error.code === 'UNAUTHORIZED';
