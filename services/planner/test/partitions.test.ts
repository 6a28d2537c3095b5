import { describe, expect, it } from 'vitest';
import { DEFAULT_LAYOUT, eventSubject, partitionOf } from '@taskstream/domain';
import { partitionConsumer } from '../src/partitions.js';
import { FLOW } from './fixtures.js';

describe('planner partitions', () => {
  it("one durable consumer per partition, over that partition's events only", () => {
    const config = partitionConsumer('planner', DEFAULT_LAYOUT, 3, 10);
    expect(config).toEqual({ durable_name: 'planner-p3', filter_subject: 'ts.evt.3.>', max_deliver: 10, ack_wait: 30_000_000_000, max_ack_pending: 20_000 });
    const partition = partitionOf(FLOW, DEFAULT_LAYOUT.partitions);
    const subject = eventSubject(DEFAULT_LAYOUT, FLOW, 'task.ready');
    expect(subject.startsWith(partitionConsumer('planner', DEFAULT_LAYOUT, partition, 10).filter_subject.slice(0, -1))).toBe(true);
  });
});
