import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchForStall } from '../src/stall.js';

describe('watchForStall: a streaming client that reads nothing of what waits for it', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('is dropped once the bytes waiting for it have not gone down for the limit', () => {
    const drop = vi.fn();
    watchForStall(() => 4096, 10_000, drop);
    vi.advanceTimersByTime(9_000);
    expect(drop).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_000);
    expect(drop).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(60_000);
    expect(drop).toHaveBeenCalledTimes(1);
  });

  it('is kept while it reads, however slowly, and while nothing waits for it', () => {
    let waiting = 1_000_000;
    const drop = vi.fn();
    watchForStall(() => waiting, 10_000, drop);
    for (let i = 0; i < 100; i++) {
      vi.advanceTimersByTime(9_000);
      waiting -= 1;
    }
    waiting = 0;
    vi.advanceTimersByTime(60_000);
    expect(drop).not.toHaveBeenCalled();
  });

  it('counts more bytes written while it reads nothing as no progress', () => {
    let waiting = 100;
    const drop = vi.fn();
    watchForStall(() => waiting, 10_000, drop);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(1_000);
      waiting += 8;
    }
    expect(drop).toHaveBeenCalledTimes(1);
  });

  it('starts counting again when it reads after a pause', () => {
    let waiting = 5_000;
    const drop = vi.fn();
    watchForStall(() => waiting, 10_000, drop);
    vi.advanceTimersByTime(8_000);
    waiting = 4_000;
    // Seen at the next check (at 9 s): the limit runs from there.
    vi.advanceTimersByTime(9_000);
    expect(drop).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2_000);
    expect(drop).toHaveBeenCalledTimes(1);
  });

  it('never drops a client once stopped', () => {
    const drop = vi.fn();
    const stop = watchForStall(() => 4096, 10_000, drop);
    vi.advanceTimersByTime(5_000);
    stop();
    vi.advanceTimersByTime(60_000);
    expect(drop).not.toHaveBeenCalled();
  });
});
