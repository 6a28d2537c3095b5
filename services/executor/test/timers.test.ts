import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, setLongTimeout, sleep } from '../src/timers.js';

const DAY = 24 * 3600 * 1000;

afterEach(() => {
  vi.useRealTimers();
});

describe('timers longer than Node holds', () => {
  it('fires a 365-day timeout after 365 days, not at once (a plain setTimeout overflows past 24.8 days)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const fired = vi.fn();
    setLongTimeout(fired, 365 * DAY);
    vi.advanceTimersByTime(1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(364 * DAY);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(DAY);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('fires a 30-day timeout (a queue timeout of 2,592,000 s) when due', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const fired = vi.fn();
    setLongTimeout(fired, 30 * DAY);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(30 * DAY - MAX_TIMER_MS);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('re-arms in chunks until the deadline, with real timers', async () => {
    const started = performance.now();
    const firedAt = await new Promise<number>((resolve) => setLongTimeout(() => resolve(performance.now()), 60, 7));
    expect(firedAt - started).toBeGreaterThanOrEqual(59);
  });

  it('can be cleared between chunks', async () => {
    const fired = vi.fn();
    const timer = setLongTimeout(fired, 40, 5);
    await new Promise((r) => setTimeout(r, 12));
    timer.clear();
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).not.toHaveBeenCalled();
  });

  it('sleep waits out a long delay and ends at once on abort, with the abort reason', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const done = vi.fn();
    void sleep(40 * DAY).then(done);
    await vi.advanceTimersByTimeAsync(39 * DAY);
    expect(done).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(DAY);
    expect(done).toHaveBeenCalledTimes(1);

    const controller = new AbortController();
    const aborted = sleep(40 * DAY, controller.signal);
    controller.abort(new Error('flow cancelled'));
    await expect(aborted).rejects.toThrow('flow cancelled');
    expect(vi.getTimerCount()).toBe(0);
  });
});
