import { describe, expect, it } from 'vitest';
import {
  EVENT_VERSION,
  evolve,
  MAX_VIEW_BYTES,
  PAGED_VIEW_TASKS,
  toFlowView,
  toFlowViewHeader,
  toStoredTaskView,
  validateFlow,
  type FlowState,
} from '@taskstream/domain';
import { planViewWrite } from '../src/view-store.js';

const FLOW = '01JBBBBBBBBBBBBBBBBBBBBBBB';
const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));

function submitted(tasks: number): FlowState {
  const result = validateFlow({ tasks: Array.from({ length: tasks }, (_, i) => ({ id: `t${i}`, executor: 'noop' })) });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  const event = { id: '01JCCCCCCCCCCCCCCCCCCCCCCC', type: 'flow.submitted', version: EVENT_VERSION, flow_id: FLOW, time: '2026-01-01T00:00:00.000Z', data: { definition: result.flow } } as const;
  return evolve(null, event, 1)!;
}

/** A flow of few tasks whose whole view is too large for one value: every task failed at length. */
function fewButLarge(): FlowState {
  const state = submitted(200);
  const error = { message: 'x'.repeat(1_000), code: 'EXIT_CODE', retryable: true, stdout_tail: 'o'.repeat(2_000), stderr_tail: 'e'.repeat(2_000) };
  for (const task of Object.values(state.tasks)) task.attempts = [{ attempt: 1, outcome: 'failed', error }];
  return state;
}

describe('how the projector stores a view', () => {
  it('keeps a small flow under one key, and deletes the task keys of a flow that was paged before', () => {
    const state = submitted(3);
    const write = planViewWrite({ state, paged: false }, 'all');
    expect(write).toMatchObject({ flowId: FLOW, paged: false, tasks: [], deletes: [] });
    expect(decode(write.header)).toEqual(toFlowView(state));
    expect(planViewWrite({ state, paged: true }, new Set()).deletes).toEqual([`${FLOW}.t.t0`, `${FLOW}.t.t1`, `${FLOW}.t.t2`]);
  });

  it('pages a flow of more than PAGED_VIEW_TASKS tasks: every task at first, then only the touched ones', () => {
    const state = submitted(PAGED_VIEW_TASKS + 1);
    const first = planViewWrite({ state, paged: false }, new Set(['t7']));
    expect(first.paged).toBe(true);
    expect(first.tasks).toHaveLength(PAGED_VIEW_TASKS + 1);
    expect(first.tasks[PAGED_VIEW_TASKS]!.key).toBe(`${FLOW}.t.t${PAGED_VIEW_TASKS}`);
    expect(decode(first.tasks[PAGED_VIEW_TASKS]!.bytes)).toEqual(toStoredTaskView(state, PAGED_VIEW_TASKS));
    expect(decode(first.header)).toEqual(toFlowViewHeader(state));

    const next = planViewWrite({ state, paged: true }, new Set(['t7', 't300', 'unknown']));
    expect(next.tasks.map((t) => t.key)).toEqual([`${FLOW}.t.t7`, `${FLOW}.t.t300`]);
    expect(decode(next.tasks[1]!.bytes).index).toBe(300);
    expect(planViewWrite({ state, paged: true }, 'all').tasks).toHaveLength(PAGED_VIEW_TASKS + 1);
  });

  it('pages a flow of fewer tasks whose whole view would not fit one value, with every task', () => {
    const state = fewButLarge();
    expect(new TextEncoder().encode(JSON.stringify(toFlowView(state))).length).toBeGreaterThan(MAX_VIEW_BYTES);
    const write = planViewWrite({ state, paged: false }, new Set(['t1']));
    expect(write.paged).toBe(true);
    expect(write.tasks).toHaveLength(200);
    expect(write.deletes).toEqual([]);
    expect(decode(write.header).tasks_paged).toBe(true);
    expect(write.tasks.every((t) => t.bytes.length <= MAX_VIEW_BYTES)).toBe(true);
  });
});
