import { createHash, randomFillSync } from 'node:crypto';
import { encodeTime, monotonicFactory } from 'ulid';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * ulid's default generator asks the system for one random byte per character (16 calls per new
 * millisecond); drawing bytes from a pool filled 4 KiB at a time gives the same randomness for a
 * fraction of the cost.
 */
function pooledRandom(poolSize = 4096): () => number {
  const pool = new Uint8Array(poolSize);
  let next = poolSize;
  return () => {
    if (next === poolSize) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++]! / 256;
  };
}

const nextUlid = monotonicFactory(pooledRandom());

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
