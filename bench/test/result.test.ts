import { describe, expect, it } from 'vitest';
import { percentile } from '../src/procs.js';
import { flowMakespans, lostAndDuplicates, manyFlowsFigures, manyFlowsMarkdown, messagesPer, type ManyFlowsResult } from '../src/result.js';

describe('result figures', () => {
  it('takes a percentile as the value at that rank, NaN when there are none', () => {
    expect(percentile([30, 10, 20, 40], 50)).toBe(30);
    expect(percentile([30, 10, 20, 40], 99)).toBe(40);
    expect(percentile([7], 50)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('counts lost tasks (never ran) and duplicated ones (ran more than once)', () => {
    expect(lostAndDuplicates(new Map([['a', 1], ['b', 2], ['c', 3]]), 5)).toEqual({ lost: 2, duplicates: 2 });
    expect(lostAndDuplicates(new Map(), 0)).toEqual({ lost: 0, duplicates: 0 });
  });

  it('summarises flow makespans by median, slowest, and slowest over fastest', () => {
    expect(flowMakespans([400, 100, 200, 300])).toEqual({ flow_makespan_p50_ms: 300, flow_makespan_max_ms: 400, flow_makespan_spread: 4 });
    expect(flowMakespans([250])).toEqual({ flow_makespan_p50_ms: 250, flow_makespan_max_ms: 250, flow_makespan_spread: 1 });
    const none = flowMakespans([]);
    expect([none.flow_makespan_p50_ms, none.flow_makespan_max_ms, none.flow_makespan_spread].every(Number.isNaN)).toBe(true);
  });

  it('measures each flow from the common submission time', () => {
    expect(manyFlowsFigures(500, 1000, [1600, 1300, 1400])).toEqual({ flows: 3, tasks_per_flow: 500, flow_makespan_p50_ms: 400, flow_makespan_max_ms: 600, flow_makespan_spread: 2 });
  });

  it('prints workload 6 as one row per system, and nothing when it did not run', () => {
    const row = { workload: '6-many-flows', system: 'taskstream', tasks: 2000, tasks_per_sec: 1234.4, flows: 20, tasks_per_flow: 100, flow_makespan_p50_ms: 900.2, flow_makespan_max_ms: 1500.7, flow_makespan_spread: 2.5, lost: 0, duplicates: 0 } as ManyFlowsResult;
    const lines = manyFlowsMarkdown([row]);
    expect(lines[0]).toContain('20 flows of 100');
    expect(lines).toContain('| taskstream | 2000 | 1234 | 900 | 1501 | 2.50 | 0 | 0 |');
    expect(manyFlowsMarkdown([])).toEqual([]);
  });
});

describe('messagesPer', () => {
  it("divides each connection's messages between two readings by the units, and leaves the bench's own out", () => {
    const before = { planner: { in: 100, out: 50 }, bench: { in: 7, out: 7 } };
    const after = { planner: { in: 400, out: 350 }, executor: { in: 600, out: 603 }, bench: { in: 900, out: 900 } };
    expect(messagesPer(before, after, 100)).toEqual({ planner: { in: 3, out: 3 }, executor: { in: 6, out: 6.03 } });
  });
});
