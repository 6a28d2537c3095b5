import { DeliverPolicy, type ConsumerInfo } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { resumeSequence } from '../src/topology.js';

const info = (ackFloor: number, config: Partial<ConsumerInfo['config']>) =>
  ({ ack_floor: { stream_seq: ackFloor, consumer_seq: 0 }, config }) as Pick<ConsumerInfo, 'ack_floor' | 'config'>;

describe('where a recreated ordered consumer resumes', () => {
  it('resumes just after the ack floor', () => {
    expect(resumeSequence(info(41, { deliver_policy: DeliverPolicy.All }))).toBe(42);
    expect(resumeSequence(info(41, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 30 }))).toBe(42);
  });

  it('never goes back before where the consumer itself started, though its ack floor reads 0 until the first ack', () => {
    // A poison message at 500 is never acknowledged: without this, the next takeover replays from 1.
    expect(resumeSequence(info(0, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 500 }))).toBe(500);
  });

  it('starts at the beginning for a consumer that has acknowledged nothing from the start', () => {
    expect(resumeSequence(info(0, { deliver_policy: DeliverPolicy.All }))).toBe(1);
  });
});
