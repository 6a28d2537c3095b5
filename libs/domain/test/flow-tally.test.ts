import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countTasks, evolve, FlowTally, queueLoads, toFlowListing, toFlowViewHeader, type FlowEvent, type FlowState } from '../src/index.js';
import { dagArbitrary, ev, simulate, stamp } from './fixtures.js';

/** The tasks an event changes, as the projector names them for a write. */
function touchedBy(event: FlowEvent): string[] | 'all' {
  if (event.type === 'flow.submitted') return 'all';
  if ('task_id' in event) return [event.task_id];
  if (event.type === 'flow.tasks_added') return event.data.tasks.map((t) => t.id);
  return [];
}

const QUEUES = ['default', 'gpu', 'io'];

describe('a flow tally', () => {
  it('equals a count of every task and queueLoads after any batch of events, across queues and throttles', () => {
    fc.assert(
      fc.property(dagArbitrary, fc.array(fc.boolean(), { maxLength: 200 }), fc.array(fc.nat(3), { maxLength: 200 }), ({ def, outcomes, choices, cancelAt, stop }, cuts, throttles) => {
        // Spread the tasks over queues, and throttle some of them once ready.
        const spread = { ...def, tasks: def.tasks.map((t, i) => ({ ...t, queue: QUEUES[i % QUEUES.length]! })) };
        const { log } = simulate(spread, outcomes, choices, cancelAt, stop);
        // Each task runs before it ends, and some wait on their queue's limit once ready.
        const events = log.flatMap((event, i): FlowEvent[] => {
          if (event.type === 'task.ready' && throttles[i] === 0) return [event, stamp({ type: 'task.throttled', flow_id: event.flow_id, task_id: event.task_id, data: { queue: event.data.queue, reason: 'concurrency' } })];
          if (event.type === 'task.succeeded' || event.type === 'task.failed') return [ev.taskStarted(event.task_id, event.attempt), event];
          return [event];
        });

        const tally = new FlowTally();
        let state: FlowState | null = null;
        let touched: Set<string> | 'all' = new Set();
        events.forEach((event, i) => {
          state = evolve(state, event, i + 1);
          const names = touchedBy(event);
          touched = touched === 'all' || names === 'all' ? 'all' : new Set([...touched, ...names]);
          // Batches end anywhere, as the projector's writes do.
          if (!(cuts[i] ?? true) && i < events.length - 1) return;
          tally.update(state!, touched);
          touched = new Set();
          expect(tally.counts()).toEqual(countTasks(Object.values(state!.tasks).map((t) => t.status)));
          expect(tally.loads()).toEqual(queueLoads(state!));
          expect(toFlowListing(state!, tally)).toEqual(toFlowListing(state!));
          expect(toFlowViewHeader(state!, tally)).toEqual(toFlowViewHeader(state!));
        });
      }),
    );
  });

  it('starts over from every task on its first update, whatever it is told was touched', () => {
    const { log } = simulate(dagArbitrarySample(), new Map(), [0]);
    let state: FlowState | null = null;
    log.forEach((event, i) => (state = evolve(state, event, i + 1)));
    const tally = new FlowTally();
    tally.update(state!, []);
    expect(tally.counts()).toEqual(countTasks(Object.values(state!.tasks).map((t) => t.status)));
    expect(tally.loads()).toEqual(queueLoads(state!));
  });
});

function dagArbitrarySample() {
  return fc.sample(dagArbitrary, { numRuns: 1, seed: 7 })[0]!.def;
}
