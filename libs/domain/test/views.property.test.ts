import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evolve, fold, queueLoads, sumQueueLoads, toFlowListing, toFlowView, type FlowEvent, type FlowState, type QueueLoad } from '../src/index.js';
import { dagArbitrary, simulate } from './fixtures.js';

/** The projector's fold, as the service runs it: skip what the state already reflects. */
function project(deliveries: Array<{ seq: number; event: FlowEvent }>): FlowState | null {
  let state: FlowState | null = null;
  for (const { seq, event } of deliveries) {
    if (state !== null && seq <= state.last_seq) continue;
    state = evolve(state, event, seq);
  }
  return state;
}

const NOW = new Date(Date.UTC(2026, 0, 1, 0, 30));

describe('projections over random histories', () => {
  it('give the same views and queue statistics live, rebuilt, and under redelivery', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.array(fc.nat(), { maxLength: 30 }), ({ def, outcomes, choices, cancelAt }, redeliver) => {
        const { log } = simulate(def, outcomes, choices, cancelAt);
        const delivered = log.map((event, i) => ({ seq: i + 1, event }));
        const live = project(delivered)!;

        // Redelivery: some events arrive again right after themselves.
        const again = project(delivered.flatMap((d, i) => (redeliver.includes(i) ? [d, d] : [d])))!;
        expect(toFlowListing(again)).toEqual(toFlowListing(live));
        expect(toFlowView(again)).toEqual(toFlowView(live));

        // The view and the listing equal a plain fold of the log.
        expect({ ...toFlowView(live), last_seq: 0 }).toEqual(toFlowView(fold(log)!));
        expect(toFlowListing(live)).toEqual(toFlowListing(fold(log)!));
      }),
    );
  });

  it('count what the fold says, whatever prefix of the log it reflects', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.nat(), ({ def, outcomes, choices, cancelAt }, cut) => {
        const { log } = simulate(def, outcomes, choices, cancelAt);
        const state = fold(log.slice(0, 1 + (cut % log.length)))!;
        const stats = sumQueueLoads('default', Object.values(queueLoads(state)), NOW);
        const tasks = Object.values(state.tasks);
        expect(stats.waiting).toBe(tasks.filter((t) => t.status === 'ready').length);
        expect(stats.running).toBe(tasks.filter((t) => t.status === 'dispatched' || t.status === 'running').length);
        expect(stats.throttled).toBe(tasks.filter((t) => t.status === 'ready' && t.waiting_reason !== undefined).length);
        const finished = Object.values(stats.minutes).reduce((n, m) => n + m.succeeded + m.failed, 0);
        expect(finished).toBe(tasks.filter((t) => t.status === 'succeeded' || t.status === 'failed' || t.status === 'timed_out').length);
      }),
    );
  });

  it('add up flows by queue, and leave finishes older than an hour out', () => {
    const load = (waiting: number, minutes: QueueLoad['minutes'] = {}): QueueLoad => ({ waiting, running: 1, throttled: 0, minutes });
    const stats = sumQueueLoads('q', [load(2, { '2026-01-01T00:29': { succeeded: 3, failed: 1 }, '2025-12-31T23:29': { succeeded: 9, failed: 9 } }), load(1, { '2026-01-01T00:29': { succeeded: 1, failed: 0 } })], NOW);
    expect(stats).toEqual({ queue: 'q', waiting: 3, running: 2, throttled: 0, minutes: { '2026-01-01T00:29': { succeeded: 4, failed: 1 } } });
  });
});
