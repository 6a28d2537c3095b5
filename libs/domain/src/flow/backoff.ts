import type { Backoff } from './definition.js';

/**
 * Delay before retry number `retry` (1 for the first retry). `random` in [0, 1) comes from the
 * caller; with jitter the delay lies in [d/2, d) ("equal jitter"), which spreads retries of many
 * tasks failing together while keeping a floor.
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
  return Math.round(backoff.jitter ? capped / 2 + (capped / 2) * random : capped);
}
