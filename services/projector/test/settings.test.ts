import { readSettings } from '@taskstream/runtime';
import { describe, expect, it } from 'vitest';
import { PROJECTOR_SETTINGS } from '../src/settings.js';

describe("the projector's settings", () => {
  it('keep every flow by default, and remove flows as long after their end as TASKSTREAM_FLOW_RETENTION_SECS says', () => {
    expect(readSettings(PROJECTOR_SETTINGS, {}).flowRetentionSecs).toBe(0);
    expect(readSettings(PROJECTOR_SETTINGS, { TASKSTREAM_FLOW_RETENTION_SECS: '2592000' }).flowRetentionSecs).toBe(2_592_000);
    expect(readSettings(PROJECTOR_SETTINGS, { TASKSTREAM_FLOW_RETENTION_SECS: '3600' }).flowRetentionSecs).toBe(3_600);
  });

  it('refuse a retention under an hour or over ten years, or not a whole number of seconds, naming the variable and the bounds', () => {
    const bounds = 'TASKSTREAM_FLOW_RETENTION_SECS must be 0 (keep every flow) or between 3600 (an hour) and 315360000 (ten years) seconds';
    expect(() => readSettings(PROJECTOR_SETTINGS, { TASKSTREAM_FLOW_RETENTION_SECS: '60' })).toThrow(`${bounds}, not "60"`);
    expect(() => readSettings(PROJECTOR_SETTINGS, { TASKSTREAM_FLOW_RETENTION_SECS: '400000000' })).toThrow(`${bounds}, not "400000000"`);
    expect(() => readSettings(PROJECTOR_SETTINGS, { TASKSTREAM_FLOW_RETENTION_SECS: '30d' })).toThrow('TASKSTREAM_FLOW_RETENTION_SECS must be a whole number, not "30d"');
    expect(() => readSettings(PROJECTOR_SETTINGS, { TASKSTREAM_FLOW_RETENTION_SECS: '-1' })).toThrow('TASKSTREAM_FLOW_RETENTION_SECS must be at least 0, not "-1"');
  });
});
