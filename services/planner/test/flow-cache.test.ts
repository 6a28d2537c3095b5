import { describe, expect, it } from 'vitest';
import { partitionOf } from '@taskstream/domain';
import { FlowCache } from '../src/flow-cache.js';
import { definition, ev, FLOW, MemoryHistory } from './fixtures.js';

const def = definition([{ id: 'a' }, { id: 'b', depends_on: ['a'] }]);
const flowIds = ['01JAAAAAAAAAAAAAAAAAAAAAA1', '01JAAAAAAAAAAAAAAAAAAAAAA2', '01JAAAAAAAAAAAAAAAAAAAAAA3', '01JAAAAAAAAAAAAAAAAAAAAAA4'];

describe('planner flow cache', () => {
  it('starts a flow from the first delivery of its submission, without reading the log', async () => {
    const history = new MemoryHistory();
    const cache = new FlowCache(history, 10);
    const loaded = await cache.load(ev.submitted(def), 7, 1);
    expect(loaded?.rebuilt).toBe(false);
    expect(loaded?.flow.state.last_seq).toBe(7);
    expect(loaded?.flow.emitted.size).toBe(0);
    expect(history.reads).toEqual([`submitted ${FLOW}`]);
  });

  it('rebuilds a flow not in memory from its whole log, also for a submission delivered again', async () => {
    const history = new MemoryHistory();
    const submitted = ev.submitted(def);
    history.append(submitted, ev.started(), ev.succeeded('a'));
    const cache = new FlowCache(history, 10);
    const loaded = await cache.load(submitted, 1, 2);
    expect(loaded?.rebuilt).toBe(true);
    // The whole log, not only up to the event delivered: later events are already in the state.
    expect(loaded?.flow.state.last_seq).toBe(3);
    expect(loaded?.flow.state.tasks['a']?.status).toBe('succeeded');
    expect(history.reads).toEqual([`fold ${FLOW}`]);
  });

  it('answers from memory once loaded, and knows nothing of a flow never submitted', async () => {
    const history = new MemoryHistory();
    history.append(ev.submitted(def));
    const cache = new FlowCache(history, 10);
    const first = await cache.load(ev.started(), 2, 1);
    const second = await cache.load(ev.succeeded('a'), 3, 1);
    expect(second).toEqual({ flow: first!.flow, rebuilt: false });
    expect(history.reads).toHaveLength(1);
    expect(await cache.load(ev.started(flowIds[0]), 4, 1)).toBeUndefined();
    expect(cache.has(flowIds[0]!)).toBe(false);
  });

  it('drops the least recently used flow beyond its size', async () => {
    const history = new MemoryHistory();
    const cache = new FlowCache(history, 2);
    await cache.load(ev.submitted(def, flowIds[0]), 1, 1);
    await cache.load(ev.submitted(def, flowIds[1]), 2, 1);
    await cache.load(ev.started(flowIds[0]), 3, 1); // touches the first
    await cache.load(ev.submitted(def, flowIds[2]), 4, 1);
    expect(cache.size).toBe(2);
    expect([flowIds[0], flowIds[1], flowIds[2]].map((id) => cache.has(id!))).toEqual([true, false, true]);
  });

  it('forgets one flow, or every flow of a partition', async () => {
    const history = new MemoryHistory();
    const cache = new FlowCache(history, 10);
    for (const [i, id] of flowIds.entries()) await cache.load(ev.submitted(def, id), i + 1, 1);
    cache.forget(flowIds[3]!);
    expect(cache.has(flowIds[3]!)).toBe(false);
    const partition = partitionOf(flowIds[0]!, 2);
    cache.forgetPartition(partition, 2);
    for (const id of flowIds.slice(0, 3)) expect(cache.has(id)).toBe(partitionOf(id, 2) !== partition);
    // Each flow no longer held is released to the history (its definition need not stay parsed).
    expect(history.released).toEqual([flowIds[3], ...flowIds.slice(0, 3).filter((id) => partitionOf(id!, 2) === partition)]);
  });

  it('releases a flow it drops beyond its size', async () => {
    const history = new MemoryHistory();
    const cache = new FlowCache(history, 1);
    await cache.load(ev.submitted(def, flowIds[0]), 1, 1);
    expect(history.released).toEqual([]);
    await cache.load(ev.submitted(def, flowIds[1]), 2, 1);
    expect(history.released).toEqual([flowIds[0]]);
  });
});
