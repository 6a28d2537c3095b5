/**
 * Node keeps a timer's delay in a signed 32-bit millisecond count: anything above 2^31-1 ms
 * (about 24.8 days) is replaced by 1 ms, so a long timeout would fire at once. Every timer in the
 * executor goes through these helpers, which wait in chunks no longer than that.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface LongTimer {
  clear(): void;
}

/**
 * Calls `callback` once `ms` have passed, however long that is. The deadline is kept on the
 * monotonic clock and the timer re-armed until it is reached, so lateness of one chunk does not
 * add up over many. `chunkMs` exists for tests.
 */
export function setLongTimeout(callback: () => void, ms: number, chunkMs = MAX_TIMER_MS): LongTimer {
  const deadline = performance.now() + Math.max(0, ms);
  let timer: NodeJS.Timeout;
  const arm = (delay: number) => {
    timer = setTimeout(() => {
      const left = deadline - performance.now();
      if (left > 0) arm(left);
      else callback();
    }, Math.min(Math.ceil(delay), chunkMs));
  };
  arm(Math.max(0, ms));
  return { clear: () => clearTimeout(timer) };
}

/** Waits `ms`, or rejects with the signal's reason as soon as it is aborted. */
export function sleep(ms: number, signal?: AbortSignal, chunkMs = MAX_TIMER_MS): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      timer.clear();
      reject(signal!.reason);
    };
    const timer = setLongTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms, chunkMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** An interval for keep-alives: a period too long for a timer is shortened, which only beats more often. */
export function intervalMs(ms: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(1, ms));
}
