import { describe, expect, it } from 'vitest';
import { deterministicId, newId } from '../src/ids.js';

describe('event ids', () => {
  it('are unique, ordered and well formed across many milliseconds and pool refills', () => {
    const ids: string[] = [];
    // 600 distinct milliseconds draw 9,600 random bytes: the 4 KiB pool refills twice.
    for (let ms = 0; ms < 600; ms++) for (let i = 0; i < 3; i++) ids.push(newId(1_700_000_000_000 + ms));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it('spread their random part over the whole alphabet', () => {
    const seen = new Set<string>();
    for (let ms = 0; ms < 2_000; ms++) seen.add(newId(1_800_000_000_000 + ms * 10).slice(10, 11));
    expect(seen.size).toBe(32);
  });

  it('for decisions depend only on the key and the cause time', () => {
    expect(deterministicId('f1:t1:ready', 1_700_000_000_000)).toBe(deterministicId('f1:t1:ready', 1_700_000_000_000));
    expect(deterministicId('f1:t1:ready', 1_700_000_000_000)).not.toBe(deterministicId('f1:t2:ready', 1_700_000_000_000));
  });
});
