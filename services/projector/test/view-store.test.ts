import { describe, expect, it } from 'vitest';
import {
  assemblePagedView,
  EVENT_VERSION,
  evolve,
  MAX_VIEW_BYTES,
  PAGED_VIEW_TASKS,
  pageCount,
  pageOf,
  TASK_PAGE_SIZE,
  tasksFromPages,
  toFlowView,
  toFlowViewHeader,
  toStoredTaskView,
  toTaskView,
  validateFlow,
  type FlowState,
  type StoredTaskPage,
  type StoredTaskView,
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
  it('keeps a small flow under one key, and deletes the pages and task keys of a flow that was paged before', () => {
    const state = submitted(3);
    const write = planViewWrite({ state, paged: false }, 'all');
    expect(write).toMatchObject({ flowId: FLOW, paged: false, ownTasks: [], pages: [], deletes: [] });
    expect(decode(write.header)).toEqual(toFlowView(state));
    expect(planViewWrite({ state, paged: true }, new Set()).deletes).toEqual([`${FLOW}.t.t0`, `${FLOW}.t.t1`, `${FLOW}.t.t2`, `${FLOW}.p.0`]);
  });

  it('pages a flow of more than PAGED_VIEW_TASKS tasks: every page at first, then only the pages of touched tasks', () => {
    const total = PAGED_VIEW_TASKS + 1;
    const state = submitted(total);
    const first = planViewWrite({ state, paged: false }, new Set(['t7']));
    expect(first.paged).toBe(true);
    expect(first.ownTasks).toEqual([]);
    expect(first.pages.map((p) => p.key)).toEqual(Array.from({ length: pageCount(total) }, (_, page) => `${FLOW}.p.${page}`));
    const last = decode(first.pages.at(-1)!.bytes) as StoredTaskPage;
    expect(last.first).toBe((pageCount(total) - 1) * TASK_PAGE_SIZE);
    expect(last.tasks.at(-1)).toEqual(toTaskView(state.tasks[`t${PAGED_VIEW_TASKS}`]!));
    expect(decode(first.header)).toEqual(toFlowViewHeader(state));
    expect(decode(first.header).task_page_size).toBe(TASK_PAGE_SIZE);

    // t7 and t8 share a page; t300 has its own; an unknown task touches none.
    const next = planViewWrite({ state, paged: true }, new Set(['t300', 't7', 't8', 'unknown']));
    expect(next.pages.map((p) => p.key)).toEqual([`${FLOW}.p.${pageOf(7)}`, `${FLOW}.p.${pageOf(300)}`]);
    expect((decode(next.pages[1]!.bytes) as StoredTaskPage).tasks[300 - pageOf(300) * TASK_PAGE_SIZE]!.id).toBe('t300');
    expect(planViewWrite({ state, paged: true }, 'all').pages).toHaveLength(pageCount(total));
  });

  it('pages a flow of fewer tasks whose whole view would not fit one value, each page under the bound', () => {
    const state = fewButLarge();
    expect(new TextEncoder().encode(JSON.stringify(toFlowView(state))).length).toBeGreaterThan(MAX_VIEW_BYTES);
    const write = planViewWrite({ state, paged: false }, new Set(['t1']));
    expect(write.paged).toBe(true);
    expect(write.pages).toHaveLength(pageCount(200));
    expect(write.deletes).toEqual([]);
    expect(decode(write.header).tasks_paged).toBe(true);
    expect(write.pages.every((p) => p.bytes.length <= MAX_VIEW_BYTES)).toBe(true);
  });

  it('deletes the key of each task of a view stored before pages, but for tasks stored on their own', () => {
    const state = submitted(PAGED_VIEW_TASKS + 5);
    state.tasks.t33!.attempts = Array.from({ length: 10 }, (_, i) => ({ attempt: i + 1, outcome: 'failed' as const, error: { message: 'm'.repeat(1_000), code: 'EXIT_CODE', retryable: true, stderr_tail: 'e'.repeat(2_000) } }));
    const write = planViewWrite({ state, paged: false, keyPerTask: true }, new Set(['t1']));
    expect(write.pages).toHaveLength(pageCount(PAGED_VIEW_TASKS + 5));
    expect(write.deletes).toHaveLength(PAGED_VIEW_TASKS + 4);
    expect(write.deletes).not.toContain(`${FLOW}.t.t33`);
    expect(write.deletes).toContain(`${FLOW}.t.t0`);
    expect(planViewWrite({ state: submitted(3), paged: false, keyPerTask: true }, 'all').deletes).toEqual([`${FLOW}.t.t0`, `${FLOW}.t.t1`, `${FLOW}.t.t2`]);
  });

  it('stores a task too large to share its page under its own key, leaving null in its place, and the pages make up the view', () => {
    const state = submitted(PAGED_VIEW_TASKS + 5);
    const large = state.tasks.t33!;
    large.attempts = Array.from({ length: 10 }, (_, i) => ({ attempt: i + 1, outcome: 'failed' as const, error: { message: 'm'.repeat(1_000), code: 'EXIT_CODE', retryable: true, stderr_tail: 'e'.repeat(2_000) } }));
    const write = planViewWrite({ state, paged: false }, 'all');
    expect(write.ownTasks.map((t) => t.key)).toEqual([`${FLOW}.t.t33`]);
    expect(decode(write.ownTasks[0]!.bytes)).toEqual(toStoredTaskView(state, 33));
    const pages = write.pages.map((p) => decode(p.bytes) as StoredTaskPage);
    expect(pages[1]!.tasks[1]).toBeNull();
    const tasks = tasksFromPages(pages, write.ownTasks.map((t) => decode(t.bytes) as StoredTaskView));
    expect(assemblePagedView(decode(write.header), tasks!)).toEqual(toFlowView(state));
  });
});
