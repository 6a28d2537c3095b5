/**
 * Token-bucket math, pure: the state is the token count at a moment; time comes in as `now`.
 * `rate` tokens are added per second up to `burst`. Fractional tokens accumulate, so a rate of
 * 0.5/s admits one task every two seconds.
 */
export interface BucketConfig {
  /** Tokens added per second (> 0). */
  rate: number;
  /** Capacity (>= 1): the most that can start at once after a quiet period. */
  burst: number;
}

export interface BucketState {
  tokens: number;
  /** Epoch milliseconds at which `tokens` was true. */
  at_ms: number;
}

export function fullBucket(config: BucketConfig, now: number): BucketState {
  return { tokens: config.burst, at_ms: now };
}

/** The bucket at `now`; a clock that went backwards adds nothing. */
export function refill(state: BucketState, config: BucketConfig, now: number): BucketState {
  const elapsed = Math.max(0, now - state.at_ms);
  return { tokens: Math.min(config.burst, state.tokens + (elapsed * config.rate) / 1000), at_ms: Math.max(now, state.at_ms) };
}

/** Takes up to `wanted` whole tokens at `now`; returns how many were granted and the new state. */
export function take(state: BucketState, config: BucketConfig, now: number, wanted: number): { granted: number; state: BucketState } {
  const current = refill(state, config, now);
  const granted = Math.max(0, Math.min(Math.floor(current.tokens + 1e-9), Math.floor(wanted)));
  return { granted, state: { tokens: current.tokens - granted, at_ms: current.at_ms } };
}

/** Milliseconds from `now` until `wanted` whole tokens are available (0 if they are now). */
export function timeUntil(state: BucketState, config: BucketConfig, now: number, wanted = 1): number {
  const current = refill(state, config, now);
  const missing = Math.min(wanted, config.burst) - current.tokens;
  return missing <= 1e-9 ? 0 : Math.ceil((missing * 1000) / config.rate);
}
