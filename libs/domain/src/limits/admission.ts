import { refill, take, type BucketState } from './token-bucket.js';
import { bucketOf, type QueuePolicy } from './queue-policy.js';

/**
 * The shared record of one limited queue, kept in KV and changed only by compare-and-set: the
 * token bucket and the tasks holding a concurrency slot (holder key -> concurrency key or "").
 */
export interface QueueLimitsRecord {
  bucket?: BucketState;
  holders: Record<string, string>;
}

export interface Candidate {
  /** `<flow id>:<task id>`: the slot holder's key. */
  key: string;
  concurrencyKey?: string;
}

export type ThrottleReason = 'rate' | 'concurrency' | 'key_concurrency';

export interface Admission {
  record: QueueLimitsRecord;
  /**
   * Whether the record must be stored: some candidate took a token or a slot. A round that only
   * refilled the bucket need not be written (refilling later gives the same tokens).
   */
  changed: boolean;
  admitted: Candidate[];
  /** Why each candidate left waiting is waiting. */
  held: Map<string, ThrottleReason>;
  /** When to look again for rate-limited candidates (ms from now); undefined if only a release can help. */
  retryInMs?: number;
}

/**
 * Admits as many candidates as the policy allows, in the order given (the caller orders by
 * priority, then arrival). A candidate blocked only by its key's limit does not block others, so one
 * tenant's backlog cannot starve another; a queue-wide limit (rate, concurrency) stops the round.
 * A candidate that already holds a slot (a redelivery) is admitted again without a new token.
 */
export function admit(policy: QueuePolicy, record: QueueLimitsRecord, candidates: readonly Candidate[], now: number): Admission {
  const holders = { ...record.holders };
  const config = bucketOf(policy);
  let bucket = config ? (record.bucket ? refill(record.bucket, config, now) : { tokens: config.burst, at_ms: now }) : undefined;
  let running = Object.keys(holders).length;
  const perKey = new Map<string, number>();
  for (const key of Object.values(holders)) perKey.set(key, (perKey.get(key) ?? 0) + 1);

  // Slots are only tracked where a concurrency limit needs them.
  const tracksSlots = policy.concurrency !== undefined || policy.per_key_concurrency !== undefined;
  const admitted: Candidate[] = [];
  let changed = false;
  const held = new Map<string, ThrottleReason>();
  let stop: ThrottleReason | undefined;
  for (const candidate of candidates) {
    if (Object.hasOwn(holders, candidate.key)) {
      admitted.push(candidate);
      continue;
    }
    if (stop) {
      held.set(candidate.key, stop);
      continue;
    }
    const key = candidate.concurrencyKey ?? '';
    if (policy.concurrency !== undefined && running >= policy.concurrency) {
      stop = 'concurrency';
      held.set(candidate.key, stop);
      continue;
    }
    if (policy.per_key_concurrency !== undefined && key !== '' && (perKey.get(key) ?? 0) >= policy.per_key_concurrency) {
      held.set(candidate.key, 'key_concurrency');
      continue;
    }
    if (config && bucket) {
      const taken = take(bucket, config, now, 1);
      if (taken.granted === 0) {
        stop = 'rate';
        held.set(candidate.key, stop);
        continue;
      }
      bucket = taken.state;
    }
    if (tracksSlots) holders[candidate.key] = key;
    running++;
    perKey.set(key, (perKey.get(key) ?? 0) + 1);
    admitted.push(candidate);
    changed = true;
  }
  let retryInMs: number | undefined;
  if (config && bucket && [...held.values()].includes('rate')) {
    retryInMs = Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / config.rate));
  }
  return { record: { ...(bucket && { bucket }), holders }, changed, admitted, held, ...(retryInMs !== undefined && { retryInMs }) };
}

/** The record once `key` gave its slot back; unchanged (same object) when it held none. */
export function release(record: QueueLimitsRecord, key: string): QueueLimitsRecord {
  if (!Object.hasOwn(record.holders, key)) return record;
  const holders = { ...record.holders };
  delete holders[key];
  return { ...record, holders };
}
