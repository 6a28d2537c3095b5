import { readSettings } from '@taskstream/runtime';
import { describe, expect, it } from 'vitest';
import { PLANNER_SETTINGS } from '../src/settings.js';

describe("the planner's settings", () => {
  it('handle 32 events of a partition at once by default, and as many as TASKSTREAM_PLANNER_CONCURRENCY says', () => {
    expect(readSettings(PLANNER_SETTINGS, {}).concurrency).toBe(32);
    expect(readSettings(PLANNER_SETTINGS, { TASKSTREAM_PLANNER_CONCURRENCY: '1' }).concurrency).toBe(1);
  });

  it('refuse a concurrency below 1 or above 1,000, naming the variable', () => {
    expect(() => readSettings(PLANNER_SETTINGS, { TASKSTREAM_PLANNER_CONCURRENCY: '0' })).toThrow('TASKSTREAM_PLANNER_CONCURRENCY must be at least 1, not "0"');
    expect(() => readSettings(PLANNER_SETTINGS, { TASKSTREAM_PLANNER_CONCURRENCY: '5000' })).toThrow('TASKSTREAM_PLANNER_CONCURRENCY must be at most 1000, not "5000"');
  });
});
