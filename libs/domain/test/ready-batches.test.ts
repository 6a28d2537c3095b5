import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batchReadyDecisions, READY_BATCH_MAX_BYTES, READY_BATCH_MIN_TASKS } from '../src/decider/ready-batches.js';
import { READY_BATCH_MAX_TASKS, readiedBy, TasksReady, type EventDraft, type FlowEvent } from '../src/events/catalogue.js';
import { evolve } from '../src/decider/evolve.js';

const FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';
const ready = (id: string, bytes = 10): EventDraft => ({ type: 'task.ready', flow_id: FLOW, task_id: id, key: `${FLOW}:${id}:task.ready`, data: { queue: 'default', priority: 0, spec: { id, executor: 'noop', config: { pad: 'x'.repeat(bytes) }, depends_on: [], queue: 'default', priority: 0 } } }) as unknown as EventDraft;
const skipped = (id: string): EventDraft => ({ type: 'task.skipped', flow_id: FLOW, task_id: id, key: `${FLOW}:${id}:task.skipped`, data: { reason: 'condition false' } });
const readies = (n: number, bytes?: number) => Array.from({ length: n }, (_, i) => ready(`t${i}`, bytes));
const stamp = (draft: EventDraft): FlowEvent => {
  const { key: _key, ...rest } = draft;
  return { ...rest, id: '01JAAAAAAAAAAAAAAAAAAAAAAB', version: 1, time: '2026-12-03T00:00:00.000Z' } as FlowEvent;
};
/** Every task a list of drafts readies, in order, as each task's own task.ready (id and time aside). */
const readiedTasks = (drafts: EventDraft[]) => drafts.flatMap((d) => readiedBy(stamp(d))).map((e) => ({ task_id: e.task_id, data: e.data }));

describe('tasks readied together', () => {
  it('leaves a decision readying fewer tasks than the minimum as it is', () => {
    const drafts = [skipped('s'), ...readies(READY_BATCH_MIN_TASKS - 1)];
    expect(batchReadyDecisions(drafts)).toEqual(drafts);
  });

  it('stores many readies in events of at most the batch size, in order, where the first ready was', () => {
    const drafts = [skipped('before'), ...readies(250), skipped('after')];
    const out = batchReadyDecisions(drafts);
    expect(out.map((d) => d.type)).toEqual(['task.skipped', 'tasks.ready', 'tasks.ready', 'tasks.ready', 'task.skipped']);
    expect(out.slice(1, 4).map((d) => (d.type === 'tasks.ready' ? d.data.tasks.length : 0))).toEqual([READY_BATCH_MAX_TASKS, READY_BATCH_MAX_TASKS, 50]);
    expect(out[1]!.key).toBe(`${FLOW}:t0:tasks.ready:100`);
    expect(out[3]!.key).toBe(`${FLOW}:t200:tasks.ready:50`);
    expect(readiedTasks(out)).toEqual(readiedTasks(drafts));
    for (const d of out) if (d.type === 'tasks.ready') expect(TasksReady.safeParse(stamp(d)).error).toBeUndefined();
  });

  it('keeps an event under its byte bound, and a task too large for any batch on its own', () => {
    const third = Math.floor(READY_BATCH_MAX_BYTES / 3);
    const drafts = [...readies(9, third), ready('huge', READY_BATCH_MAX_BYTES + 1)];
    const out = batchReadyDecisions(drafts);
    // Two specs of a third (plus their JSON) fit; a third would pass the bound.
    expect(out.map((d) => (d.type === 'tasks.ready' ? d.data.tasks.length : d.type))).toEqual([2, 2, 2, 2, 'task.ready', 'task.ready']);
    expect(out.at(-1)).toBe(drafts.at(-1));
    expect(readiedTasks(out).map((t) => t.task_id)).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7', 't8', 'huge']);
  });

  it('is the same for the same decisions, so a repeated decision is dropped by its keys', () => {
    expect(batchReadyDecisions(readies(30))).toEqual(batchReadyDecisions(readies(30)));
  });

  it('readies every task, and only those, whatever the decisions (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 200_000 })), { maxLength: 400 }), (shape) => {
        const drafts = shape.map(([isReady, bytes], i) => (isReady ? ready(`t${i}`, bytes) : skipped(`t${i}`)));
        const out = batchReadyDecisions(drafts);
        expect(readiedTasks(out)).toEqual(readiedTasks(drafts));
        expect(out.filter((d) => d.type !== 'task.ready' && d.type !== 'tasks.ready')).toEqual(drafts.filter((d) => d.type !== 'task.ready'));
        for (const d of out) {
          if (d.type !== 'tasks.ready') continue;
          expect(d.data.tasks.length).toBeGreaterThanOrEqual(2);
          expect(d.data.tasks.length).toBeLessThanOrEqual(READY_BATCH_MAX_TASKS);
          expect(d.data.tasks.reduce((sum, t) => sum + new TextEncoder().encode(JSON.stringify(t.spec)).length, 0)).toBeLessThanOrEqual(READY_BATCH_MAX_BYTES);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('folds a tasks.ready as each task\'s own task.ready', () => {
    const submitted = { id: '01JAAAAAAAAAAAAAAAAAAAAAAC', type: 'flow.submitted', version: 1, flow_id: FLOW, time: '2026-12-03T00:00:00.000Z', data: { definition: { name: 'f', queue: 'default', tasks: Array.from({ length: 10 }, (_, i) => ({ id: `t${i}`, executor: 'noop', config: {}, depends_on: [] })) } } } as unknown as FlowEvent;
    const batched = evolve(structuredClone(evolve(null, submitted, 1)), stamp(batchReadyDecisions(readies(10))[0]!), 2)!;
    let single = evolve(null, submitted, 1)!;
    for (const d of readies(10)) single = evolve(single, stamp(d), 2)!;
    expect(batched.tasks).toEqual(single.tasks);
    expect(Object.values(batched.tasks).every((t) => t.status === 'ready' && t.ready_at === '2026-12-03T00:00:00.000Z')).toBe(true);
  });
});
