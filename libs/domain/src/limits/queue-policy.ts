import { z } from 'zod';
import { BackoffInput } from '../flow/definition.js';

/**
 * A queue's policy (Tasked-compatible): limits the dispatcher enforces, and defaults for tasks that
 * do not set their own retries, timeout or backoff. A queue without a policy has no limits.
 */
export const QueuePolicyInput = z.strictObject({
  concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1 (delete the queue policy for no limit)').optional(),
  per_key_concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
  rate_limit: z
    .strictObject({
      per_second: z.number().positive('must be more than 0 (tasks started per second)'),
      max_burst: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
    })
    .optional(),
  max_retries: z.number().int().min(0, 'must be 0 or more').max(100).optional(),
  timeout_secs: z.number().positive('must be more than 0').optional(),
  backoff: BackoffInput.optional(),
});
export type QueuePolicyInput = z.input<typeof QueuePolicyInput>;
export type QueuePolicy = z.output<typeof QueuePolicyInput>;

/** The policy of a queue nobody configured: no limits; tasks default to no retries and no timeout. */
export const DEFAULT_QUEUE_POLICY: QueuePolicy = {};

/** Burst defaults to one second's worth of tokens (at least 1). */
export function bucketOf(policy: QueuePolicy): { rate: number; burst: number } | undefined {
  if (!policy.rate_limit) return undefined;
  const { per_second, max_burst } = policy.rate_limit;
  return { rate: per_second, burst: max_burst ?? Math.max(1, Math.ceil(per_second)) };
}

export function isLimited(policy: QueuePolicy): boolean {
  return policy.concurrency !== undefined || policy.per_key_concurrency !== undefined || policy.rate_limit !== undefined;
}
