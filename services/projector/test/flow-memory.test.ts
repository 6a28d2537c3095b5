import { partitionOf, type FlowState } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { FlowMemory } from '../src/flow-memory.js';

const flowIds = ['01JAAAAAAAAAAAAAAAAAAAAAA1', '01JAAAAAAAAAAAAAAAAAAAAAA2', '01JAAAAAAAAAAAAAAAAAAAAAA3', '01JAAAAAAAAAAAAAAAAAAAAAA4'];
const state = (seq: number) => ({ last_seq: seq }) as unknown as FlowState;

describe('the projector\'s flow memory', () => {
  it('releases every flow it stops holding: forgotten, dropped beyond its bound, or of a partition given up', () => {
    const released: string[] = [];
    const memory = new FlowMemory(3, 2, (flowId) => released.push(flowId));
    flowIds.forEach((id, i) => memory.hold(id, state(i + 1), false));
    // The fourth pushed out the first.
    expect(released).toEqual([flowIds[0]]);
    expect(memory.get(flowIds[0]!)).toBeUndefined();
    memory.forget(flowIds[1]!);
    memory.forget(flowIds[1]!);
    expect(released).toEqual([flowIds[0], flowIds[1]]);
    const partition = partitionOf(flowIds[2]!, 2);
    memory.forgetPartition(partition);
    const gone = flowIds.slice(2).filter((id) => partitionOf(id, 2) === partition);
    expect(released).toEqual([flowIds[0], flowIds[1], ...gone]);
    for (const id of flowIds.slice(2)) expect(memory.get(id) !== undefined).toBe(!gone.includes(id));
  });

  it('keeps the sequence a flow was let go with, for a late delivery of an older event', () => {
    const memory = new FlowMemory(10, 2);
    memory.hold(flowIds[0]!, state(7), false);
    expect(memory.handedOverAt(flowIds[0]!)).toBeUndefined();
    memory.forget(flowIds[0]!);
    expect(memory.handedOverAt(flowIds[0]!)).toBe(7);
    memory.forget(flowIds[1]!);
    expect(memory.handedOverAt(flowIds[1]!)).toBeUndefined();
    // Let go with its partition too: this process may take the partition again while that state is on its way.
    memory.hold(flowIds[2]!, state(4), false);
    memory.forgetPartition(partitionOf(flowIds[2]!, 2));
    expect(memory.handedOverAt(flowIds[2]!)).toBe(4);
  });

  it('forgets a partition\'s stored sequences with its flows', () => {
    const memory = new FlowMemory(10, 2);
    for (const id of flowIds) memory.rememberStored(id, 5);
    const partition = partitionOf(flowIds[0]!, 2);
    memory.forgetPartition(partition);
    for (const id of flowIds) expect(memory.storedAt(id, 5)).toBe(partitionOf(id, 2) !== partition);
  });
});
