import { z } from 'zod';
import { MAX_BACKOFF_DELAY_MS, MAX_TIMEOUT_SECS, MIN_TIMEOUT_SECS } from './limits.js';

/**
 * A finite number within [min, max]; YAML's .inf and .nan parse to numbers no event could record.
 * The bounds come before any other check, as validation reports the first problem of each field.
 */
export const bounded = (min: number, minMessage: string, max: number, maxMessage: string) =>
  z
    .number({ error: (issue) => (issue.input === undefined ? undefined : typeof issue.input === 'number' ? 'must be a finite number' : 'must be a number') })
    .min(min, minMessage)
    .max(max, maxMessage);

export const wholeNumber = (min: number, max: number, minMessage = `must be at least ${min}`) =>
  bounded(min, minMessage, max, `must be at most ${max}`).int('must be a whole number');

// Not .int(): its failure ends a union option outright, and a backoff's fields are inside a union
// whose options must fail softly for the one that was meant to be found and reported.
export const wholeMs = (max: number, maxMessage: string) => bounded(0, 'must be 0 or more', max, maxMessage).multipleOf(1, 'must be a whole number of milliseconds');

export const backoffMs = () => wholeMs(MAX_BACKOFF_DELAY_MS, `must be at most ${MAX_BACKOFF_DELAY_MS} (one day); wait longer with a schedule instead of a retry`);

/** Seconds, fractions allowed, from one millisecond to MAX_TIMEOUT_SECS; `what` ends "the longest …". */
export const durationSecs = (what: string) =>
  bounded(MIN_TIMEOUT_SECS, `must be at least ${MIN_TIMEOUT_SECS} seconds (1 ms)`, MAX_TIMEOUT_SECS, `must be at most ${MAX_TIMEOUT_SECS} seconds (365 days), the longest ${what}`);
