import { describe, expect, it } from 'vitest';
import { defaultRetryDelayMs, PARTITION_MAX_DELIVER, retryBudgetMs } from '../src/consumer.js';

describe('how long a failing message is retried', () => {
  it('waits 250 ms before the second delivery, doubling to at most 30 s', () => {
    expect([1, 2, 3, 7, 8, 9, 30].map(defaultRetryDelayMs)).toEqual([250, 500, 1_000, 16_000, 30_000, 30_000, 30_000]);
  });

  it("retries a partition's event for over five minutes before setting it aside: a NATS outage of minutes sets no flow aside", () => {
    expect(retryBudgetMs(PARTITION_MAX_DELIVER)).toBeGreaterThan(5 * 60_000);
    // Ten deliveries, as before, gave about a minute and a half: less than a node loss can stall.
    expect(retryBudgetMs(10)).toBeLessThan(2 * 60_000);
  });
});
