import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecentMap, RecentSet } from '../src/limits/recent.js';

/** The keys a bounded memory should hold: the last `max` distinct keys set, least recent first. */
function lastDistinct(keys: number[], max: number): number[] {
  const order: number[] = [];
  for (const key of keys) {
    const at = order.indexOf(key);
    if (at >= 0) order.splice(at, 1);
    order.push(key);
  }
  return order.slice(Math.max(0, order.length - max));
}

describe('RecentMap and RecentSet', () => {
  it('hold the last max distinct keys set, least recent first, with their last values', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), fc.integer({ min: 1, max: 10 }), (keys, max) => {
        const map = new RecentMap<number, number>(max);
        const set = new RecentSet<number>(max);
        keys.forEach((key, i) => {
          map.set(key, i);
          set.add(key);
          expect(map.size).toBeLessThanOrEqual(max);
          expect(set.size).toBeLessThanOrEqual(max);
        });
        const expected = lastDistinct(keys, max);
        expect([...map.keys()]).toEqual(expected);
        expect([...set]).toEqual(expected);
        for (const key of expected) expect(map.get(key)).toBe(keys.lastIndexOf(key));
      }),
    );
  });

  it('renews a key set again, so the least recently set goes first', () => {
    const map = new RecentMap<string, number>(2);
    map.set('a', 1).set('b', 2).set('a', 3).set('c', 4);
    expect([...map]).toEqual([
      ['a', 3],
      ['c', 4],
    ]);
  });
});
