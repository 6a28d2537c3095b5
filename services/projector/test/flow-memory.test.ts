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

  it('forgets a partition\'s stored sequences with its flows', () => {
    const memory = new FlowMemory(10, 2);
    for (const id of flowIds) memory.rememberStored(id, 5);
    const partition = partitionOf(flowIds[0]!, 2);
    memory.forgetPartition(partition);
    for (const id of flowIds) expect(memory.storedAt(id, 5)).toBe(partitionOf(id, 2) !== partition);
  });
});
