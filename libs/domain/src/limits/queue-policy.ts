import { QueuePolicyInput } from '../flow/definition.js';
import { MAX_BURST } from '../flow/limits.js';

export { QueuePolicyInput };
export type QueuePolicy = import('zod').output<typeof QueuePolicyInput>;

/**
 * A queue's policy (Tasked-compatible): limits the dispatcher enforces, and defaults for tasks that
 * do not set their own retries, timeout or backoff. A queue without a policy has no limits.
 */
/** The policy of a queue nobody configured: no limits; tasks get Tasked's defaults (3 retries, 300 s, exponential from 1 s). */
export const DEFAULT_QUEUE_POLICY: QueuePolicy = {};

/** Burst defaults to one second's worth of tokens (at least 1), within the largest burst a policy may set. */
export function bucketOf(policy: QueuePolicy): { rate: number; burst: number } | undefined {
  if (!policy.rate_limit) return undefined;
  const { per_second, max_burst } = policy.rate_limit;
  return { rate: per_second, burst: max_burst ?? Math.min(MAX_BURST, Math.max(1, Math.ceil(per_second))) };
}

export function isLimited(policy: QueuePolicy): boolean {
  return policy.concurrency !== undefined || policy.per_key_concurrency !== undefined || policy.rate_limit !== undefined;
}
