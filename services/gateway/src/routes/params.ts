import { apiError } from '../errors.js';

/** A non-negative stream sequence from a query parameter (`after`), 0 when absent. */
export function sequenceParam(name: string, raw: unknown): number {
  if (raw === undefined || raw === '') return 0;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw apiError('INVALID_PARAMETER', name, `must be a stream sequence (a whole number, 0 or more), not "${String(raw)}"`);
  return value;
}
