import { apiError } from '../errors.js';
import { quote } from './input.js';

/** A non-negative stream sequence in decimal digits, 0 when absent (the dead-letter routes read theirs with this). */
export function sequenceParam(name: string, raw: unknown): number {
  if (raw === undefined || raw === '') return 0;
  const text = String(raw);
  const value = Number(text);
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(value)) throw apiError('INVALID_PARAMETER', name, `must be a stream sequence (a whole number, 0 or more), not ${quote(text)}`);
  return value;
}
