import { createHash } from 'node:crypto';
import { encodeTime, monotonicFactory } from 'ulid';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const nextUlid = monotonicFactory();

/** A fresh, time-ordered id for an event the shell originates (a submission, an executor outcome). */
export function newId(now: number = Date.now()): string {
  return nextUlid(now);
}

/**
 * The id of a decision: a ULID whose time is that of the event that caused it and whose random part
 * is a hash of the decision's key. The same history therefore yields the same ids.
 */
export function deterministicId(key: string, causeTimeMs: number): string {
  const digest = createHash('sha256').update(key).digest();
  let random = '';
  for (let i = 0; i < 16; i++) random += CROCKFORD[digest[i]! & 31];
  return encodeTime(causeTimeMs, 10) + random;
}
