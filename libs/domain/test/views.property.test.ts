import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyTaskTransition,
  emptyQueueStats,
  evolve,
  fold,
  refoldTransitions,
  taskSnapshot,
  toFlowView,
  type FlowEvent,
  type FlowState,
  type QueueStatsView,
  type TaskSnapshot,
} from '../src/index.js';
import { dagArbitrary, simulate } from './fixtures.js';

/** The projector's fold, as the service runs it: flow state, then the queue's stats from each task transition. */
function project(deliveries: Array<{ seq: number; event: FlowEvent }>): { state: FlowState | null; stats: QueueStatsView } {
  let state: FlowState | null = null;
  let stats = emptyQueueStats('default');
  const snapshot = (s: FlowState, id: string): TaskSnapshot | undefined => s.tasks[id] && { status: s.tasks[id]!.status, throttled: s.tasks[id]!.waiting_reason !== undefined };
  for (const { seq, event } of deliveries) {
    if (state !== null && seq <= state.last_seq) continue;
    const taskId = 'task_id' in event ? event.task_id : undefined;
    const before = state && taskId ? snapshot(state, taskId) : undefined;
    state = evolve(state, event, seq);
    if (state && taskId && state.tasks[taskId]) stats = applyTaskTransition(stats, before, snapshot(state, taskId)!, event.time, seq);
  }
  return { state, stats };
}

describe('projections over random histories', () => {
  it('give the same views and queue statistics live, rebuilt, and under redelivery', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.array(fc.nat(), { maxLength: 30 }), ({ def, outcomes, choices, cancelAt }, redeliver) => {
        const { log } = simulate(def, outcomes, choices, cancelAt);
        const delivered = log.map((event, i) => ({ seq: i + 1, event }));
        const live = project(delivered);

        // Redelivery: some events arrive again right after themselves.
        const noisy = delivered.flatMap((d, i) => (redeliver.includes(i) ? [d, d] : [d]));
        const again = project(noisy);
        expect(again.stats).toEqual(live.stats);
        expect(toFlowView(again.state!)).toEqual(toFlowView(live.state!));

        // Rebuild from the log from scratch equals the live view, and the view equals a plain fold.
        const rebuilt = project(delivered);
        expect(rebuilt).toEqual(live);
        expect({ ...toFlowView(live.state!), last_seq: 0 }).toEqual(toFlowView(fold(log)!));

        // Counts equal what the final state says directly.
        const tasks = Object.values(live.state!.tasks);
        expect(live.stats.waiting).toBe(tasks.filter((t) => t.status === 'ready').length);
        expect(live.stats.running).toBe(tasks.filter((t) => t.status === 'dispatched' || t.status === 'running').length);
        const finished = Object.values(live.stats.minutes).reduce((n, m) => n + m.succeeded + m.failed, 0);
        expect(finished).toBe(tasks.filter((t) => t.status === 'succeeded' || t.status === 'failed').length);
      }),
    );
  });

  it('count an event delivered behind newer ones once its refold is applied, as if it came in order', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.nat(), ({ def, outcomes, choices, cancelAt }, pick) => {
        const { log } = simulate(def, outcomes, choices, cancelAt);
        const delivered = log.map((event, i) => ({ seq: i + 1, event }));
        const taskEvents = delivered.filter((d) => 'task_id' in d.event);
        if (taskEvents.length === 0) return;
        const late = taskEvents[pick % taskEvents.length]!;

        // Memory folds every other event in order, missing the late one, with the statistics
        // following memory as the projector does...
        let memory: FlowState | null = null;
        let stats = emptyQueueStats('default');
        for (const { seq, event } of delivered) {
          if (seq === late.seq) continue;
          const taskId = 'task_id' in event ? event.task_id : undefined;
          const before = memory && taskId ? taskSnapshot(memory, taskId) : undefined;
          memory = evolve(memory, event, seq);
          if (memory && taskId && memory.tasks[taskId]) stats = applyTaskTransition(stats, before, taskSnapshot(memory, taskId)!, event.time, seq);
        }
        // ...then the late event comes: refold the log and apply what changed.
        const refolded = fold(log)!;
        for (const { before, after } of refoldTransitions(memory!, refolded)) stats = applyTaskTransition(stats, before, after, late.event.time, late.seq, true);

        const tasks = Object.values(refolded.tasks);
        expect(stats.waiting).toBe(tasks.filter((t) => t.status === 'ready').length);
        expect(stats.running).toBe(tasks.filter((t) => t.status === 'dispatched' || t.status === 'running').length);
        expect(stats.throttled).toBe(tasks.filter((t) => t.status === 'ready' && t.waiting_reason !== undefined).length);
      }),
    );
  });

  it('without knownBefore, treat an event at or below the last sequence as counted already', () => {
    const stats = applyTaskTransition(emptyQueueStats('q'), undefined, { status: 'ready', throttled: false }, '2026-01-01T00:00:00Z', 10);
    expect(applyTaskTransition(stats, undefined, { status: 'ready', throttled: false }, '2026-01-01T00:00:00Z', 9)).toBe(stats);
    const known = applyTaskTransition(stats, undefined, { status: 'ready', throttled: false }, '2026-01-01T00:00:00Z', 9, true);
    expect(known.waiting).toBe(2);
    expect(known.last_seq).toBe(10);
  });
});
