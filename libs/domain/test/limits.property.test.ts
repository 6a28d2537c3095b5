import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admit, fullBucket, QueuePolicyInput, release, take, timeUntil, type BucketConfig, type QueueLimitsRecord } from '../src/index.js';

const configArb = fc.record({ rate: fc.double({ min: 0.5, max: 200, noNaN: true }), burst: fc.integer({ min: 1, max: 50 }) });
/** Random take() calls at non-decreasing times over ~10 s. */
const scheduleArb = fc.array(fc.record({ gap: fc.integer({ min: 0, max: 400 }), wanted: fc.integer({ min: 1, max: 20 }) }), { maxLength: 200 });

describe('token bucket', () => {
  it('never admits more than burst + rate x window in any window', () => {
    fc.assert(
      fc.property(configArb, scheduleArb, fc.integer({ min: 100, max: 3000 }), (config: BucketConfig, schedule, window) => {
        let state = fullBucket(config, 0);
        let now = 0;
        const grants: Array<{ at: number; n: number }> = [];
        for (const { gap, wanted } of schedule) {
          now += gap;
          const result = take(state, config, now, wanted);
          expect(result.granted).toBeLessThanOrEqual(wanted);
          expect(result.state.tokens).toBeGreaterThanOrEqual(-1e-9);
          expect(result.state.tokens).toBeLessThanOrEqual(config.burst + 1e-9);
          state = result.state;
          if (result.granted > 0) grants.push({ at: now, n: result.granted });
        }
        for (const start of grants) {
          const inWindow = grants.filter((g) => g.at >= start.at && g.at < start.at + window).reduce((sum, g) => sum + g.n, 0);
          expect(inWindow).toBeLessThanOrEqual(config.burst + (config.rate * window) / 1000 + 1e-6);
        }
      }),
    );
  });

  it('has the tokens it promised once timeUntil has passed', () => {
    fc.assert(
      fc.property(configArb, fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 1, max: 50 }), (config, drained, wanted) => {
        const empty = take(fullBucket(config, 0), config, 0, config.burst).state;
        const want = Math.min(wanted, config.burst);
        const wait = timeUntil(empty, config, drained % 1000, want);
        expect(take(empty, config, (drained % 1000) + wait, want).granted).toBe(want);
      }),
    );
  });

  it('ignores a clock that goes backwards', () => {
    const config = { rate: 10, burst: 5 };
    const state = take(fullBucket(config, 1000), config, 1000, 5).state;
    expect(take(state, config, 0, 1).granted).toBe(0);
  });
});

const candidatesArb = fc.array(fc.record({ key: fc.uuid(), concurrencyKey: fc.option(fc.constantFrom('t1', 't2', 't3'), { nil: undefined }) }), { maxLength: 40 });
const policyArb = fc.record(
  { concurrency: fc.integer({ min: 1, max: 10 }), per_key_concurrency: fc.integer({ min: 1, max: 4 }), rate_limit: fc.record({ per_second: fc.integer({ min: 1, max: 50 }), max_burst: fc.integer({ min: 1, max: 10 }) }) },
  { requiredKeys: [] },
);

describe('admission', () => {
  it('never exceeds queue or per-key concurrency, however rounds and releases interleave', () => {
    fc.assert(
      fc.property(policyArb, fc.array(candidatesArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 40 }), (policy, rounds, releases) => {
        let record: QueueLimitsRecord = { holders: {} };
        let now = 0;
        for (const [i, round] of rounds.entries()) {
          now += 150;
          const result = admit(policy, record, round, now);
          record = result.record;
          const holders = Object.values(record.holders);
          if (policy.concurrency !== undefined) expect(holders.length).toBeLessThanOrEqual(policy.concurrency);
          if (policy.per_key_concurrency !== undefined) {
            for (const key of ['t1', 't2', 't3']) expect(holders.filter((h) => h === key).length).toBeLessThanOrEqual(policy.per_key_concurrency);
          }
          for (const c of round) expect(result.admitted.some((a) => a.key === c.key) || result.held.has(c.key)).toBe(true);
          const keys = Object.keys(record.holders);
          for (const pick of releases.slice(i * 2, i * 2 + 2)) if (keys.length > 0) record = release(record, keys[pick % keys.length]!);
        }
      }),
    );
  });

  it('a round that admits nothing new need not be stored: later rounds admit the same either way', () => {
    fc.assert(
      fc.property(policyArb, fc.array(candidatesArb, { maxLength: 8 }), fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 8, maxLength: 8 }), (policy, rounds, gaps) => {
        let stored: QueueLimitsRecord = { holders: {} };
        let storedOnlyChanges: QueueLimitsRecord = { holders: {} };
        let now = 0;
        for (const [i, round] of rounds.entries()) {
          now += gaps[i]!;
          const always = admit(policy, stored, round, now);
          const sometimes = admit(policy, storedOnlyChanges, round, now);
          expect(sometimes.admitted.map((c) => c.key)).toEqual(always.admitted.map((c) => c.key));
          expect(sometimes.changed).toBe(always.changed);
          if (!always.changed) expect(always.admitted.every((c) => Object.hasOwn(stored.holders, c.key))).toBe(true);
          stored = always.record;
          if (sometimes.changed) storedOnlyChanges = sometimes.record;
        }
      }),
    );
  });

  it('admits in order: a queue-wide limit holds everyone behind it; a key limit holds only that key', () => {
    const policy = QueuePolicyInput.parse({ concurrency: 3, per_key_concurrency: 1 });
    const result = admit(policy, { holders: {} }, [
      { key: 'a1', concurrencyKey: 'A' },
      { key: 'a2', concurrencyKey: 'A' },
      { key: 'b1', concurrencyKey: 'B' },
      { key: 'c1', concurrencyKey: 'C' },
      { key: 'd1', concurrencyKey: 'D' },
    ], 0);
    expect(result.admitted.map((c) => c.key)).toEqual(['a1', 'b1', 'c1']);
    expect(Object.fromEntries(result.held)).toEqual({ a2: 'key_concurrency', d1: 'concurrency' });
  });

  it('re-admits a task that already holds its slot without taking another', () => {
    const policy = QueuePolicyInput.parse({ concurrency: 1, rate_limit: { per_second: 1, max_burst: 1 } });
    const first = admit(policy, { holders: {} }, [{ key: 'x' }], 0);
    const again = admit(policy, first.record, [{ key: 'x' }, { key: 'y' }], 10);
    expect(again.admitted.map((c) => c.key)).toEqual(['x']);
    expect(again.held.get('y')).toBe('concurrency');
    expect(Object.keys(again.record.holders)).toEqual(['x']);
  });

  it('says when to look again for rate-limited tasks', () => {
    const policy = QueuePolicyInput.parse({ rate_limit: { per_second: 10, max_burst: 2 } });
    const result = admit(policy, { holders: {} }, [{ key: '1' }, { key: '2' }, { key: '3' }], 0);
    expect(result.admitted).toHaveLength(2);
    expect(result.held.get('3')).toBe('rate');
    expect(result.retryInMs).toBe(100);
  });

  it('releases a slot exactly once', () => {
    const record = { holders: { x: '', y: 'k' } };
    const once = release(record, 'x');
    expect(release(once, 'x')).toBe(once);
    expect(Object.keys(once.holders)).toEqual(['y']);
  });
});

describe('queue policy', () => {
  it('rejects what cannot be a limit, naming the field', () => {
    const result = QueuePolicyInput.safeParse({ concurrency: 0, rate_limit: { per_second: -1 }, colour: 'red' });
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['concurrency', 'rate_limit.per_second', '']));
  });
});
