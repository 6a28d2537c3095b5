import type { Backoff } from './definition.js';

/**
 * Delay before retry number `retry` (1 for the first retry). `random` in [0, 1) comes from the
 * caller; with jitter the delay lies in [d/2, 3d/2), Tasked's `exponential_jitter`, which spreads
 * retries of many tasks failing together while keeping the mean at d.
 */
export function retryDelayMs(backoff: Backoff, retry: number, random: number): number {
  const n = Math.max(1, retry);
  const base =
    backoff.type === 'fixed'
      ? backoff.initial_delay_ms
      : backoff.type === 'linear'
        ? backoff.initial_delay_ms * n
        : backoff.initial_delay_ms * backoff.multiplier ** (n - 1);
  const capped = Math.min(backoff.max_delay_ms, base);
  return Math.round(backoff.jitter ? capped * (0.5 + random) : capped);
}
