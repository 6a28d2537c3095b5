import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldedAfterEnd, isExpired, mayOutliveItsFlow, MIN_FLOW_RETENTION_SECS, retentionSweepMs, webhookDeliveryWindowMs } from '../src/index.js';

describe('flow retention', () => {
  it('expires a flow exactly once it has been kept the retention, and never with retention off', () => {
    expect(isExpired(1_000, 61_000, 60_000)).toBe(true);
    expect(isExpired(1_000, 60_999, 60_000)).toBe(false);
    expect(isExpired(0, Number.MAX_SAFE_INTEGER, 0)).toBe(false);
    fc.assert(
      fc.property(fc.nat(2 ** 45), fc.nat(2 ** 40), fc.nat(2 ** 40), (endedAt, kept, retention) => {
        expect(isExpired(endedAt, endedAt + kept, retention)).toBe(retention > 0 && kept >= retention);
      }),
    );
  });

  it('sweeps every tenth of the retention, at least every ten minutes and at most every second', () => {
    expect(retentionSweepMs(3_600_000)).toBe(360_000);
    expect(retentionSweepMs(30 * 24 * 3_600_000)).toBe(600_000);
    expect(retentionSweepMs(2_000)).toBe(1_000);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 45 }), (retention) => {
        const every = retentionSweepMs(retention);
        expect(every).toBeGreaterThanOrEqual(1_000);
        expect(every).toBeLessThanOrEqual(600_000);
        // A flow is removed no later than a tenth of its retention (or the bounds) after it expires.
        expect(every <= Math.max(1_000, retention / 10)).toBe(true);
      }),
    );
  });

  it('asks about the flow of a work item only once it is older than the shortest retention', () => {
    const hour = MIN_FLOW_RETENTION_SECS * 1_000;
    expect(mayOutliveItsFlow(0, hour - 1)).toBe(false);
    expect(mayOutliveItsFlow(0, hour)).toBe(true);
    fc.assert(
      fc.property(fc.nat(2 ** 45), fc.nat(2 ** 40), (dispatchedAt, age) => {
        expect(mayOutliveItsFlow(dispatchedAt, dispatchedAt + age)).toBe(age >= hour);
      }),
    );
  });

  it("waits for the events a flow may append after its end (its webhook's attempts) to be folded, or under a shorter retention for the retention", () => {
    const late = webhookDeliveryWindowMs() + 60_000;
    const hour = MIN_FLOW_RETENTION_SECS * 1_000;
    expect(late).toBeLessThan(hour);
    expect(foldedAfterEnd(0, late - 1, hour)).toBe(false);
    expect(foldedAfterEnd(0, late, hour)).toBe(true);
    fc.assert(
      fc.property(fc.nat(2 ** 45), fc.nat(2 ** 30), fc.integer({ min: 1, max: 2 ** 36 }), (endedAt, after, retention) => {
        expect(foldedAfterEnd(endedAt, endedAt + after, retention)).toBe(after >= Math.min(late, retention));
      }),
    );
  });
});
