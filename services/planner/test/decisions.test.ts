import { describe, expect, it } from 'vitest';
import { decide, type EventDraft } from '@taskstream/domain';
import { endedHere, freshDecisions, startOf, stepOf, unemitted, type Step } from '../src/decisions.js';
import { definition, ev, FLOW, folded, summary } from './fixtures.js';

const def = definition([{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['a'] }]);

function drafts(step: Step): string[] {
  if (step.kind !== 'decide') throw new Error(`expected decisions, got ${step.kind}`);
  return summary(step.drafts);
}

describe('planner decisions: what an event means for its flow in memory', () => {
  it('a submission starts its flow and readies the roots', () => {
    const submitted = ev.submitted(def);
    const state = folded([submitted]);
    expect(drafts(stepOf(state, submitted, { seq: 1, deliveryCount: 1, rebuilt: false, completeThrough: 0 }))).toEqual(['flow.started', 'task.ready:a']);
  });

  it('folds a new event into the state and decides on what it affects', () => {
    const state = folded([ev.submitted(def), ev.started()]);
    const step = stepOf(state, ev.succeeded('a'), { seq: 3, deliveryCount: 1, rebuilt: false, completeThrough: 0 });
    expect(drafts(step)).toEqual(['task.ready:b', 'task.ready:c']);
    expect(state.last_seq).toBe(3);
    expect(state.tasks['a']?.status).toBe('succeeded');
  });

  it('re-decides everything for a flow just rebuilt from its log, without folding the event again', () => {
    const succeeded = ev.succeeded('a');
    const state = folded([ev.submitted(def), ev.started(), succeeded]);
    expect(drafts(stepOf(state, succeeded, { seq: 3, deliveryCount: 1, rebuilt: true, completeThrough: 3 }))).toEqual(['task.ready:b', 'task.ready:c']);
    expect(state.last_seq).toBe(3);
  });

  it('does nothing for an event folded from the log, and refolds for one delivered behind newer events, whatever its delivery count', () => {
    const started = ev.started();
    const state = folded([ev.submitted(def), started, ev.succeeded('a')]);
    expect(stepOf(state, started, { seq: 2, deliveryCount: 1, rebuilt: false, completeThrough: 2 })).toEqual({ kind: 'seen' });
    expect(stepOf(state, started, { seq: 2, deliveryCount: 2, rebuilt: false, completeThrough: 3 })).toEqual({ kind: 'seen' });
    // Memory folded events 1 and 3 as they came; 2's first delivery was lost and comes now.
    expect(stepOf(state, started, { seq: 2, deliveryCount: 1, rebuilt: false, completeThrough: 1 })).toEqual({ kind: 'refold' });
    expect(stepOf(state, started, { seq: 2, deliveryCount: 2, rebuilt: false, completeThrough: 1 })).toEqual({ kind: 'refold' });
    expect(state.last_seq).toBe(3);
  });
});

describe('planner decisions: what to append', () => {
  const succeeded = ev.succeeded('a');
  const ready = decide(folded([ev.submitted(def), ev.started(), succeeded]), succeeded);

  it('drops decisions already appended by this process', () => {
    const emitted = new Set([`${FLOW}:b:task.ready`]);
    expect(summary(freshDecisions(ready, emitted))).toEqual(['task.ready:c']);
    expect(summary(unemitted(ready, emitted))).toEqual(['task.ready:c']);
  });

  it('never readies a task this process already ended', () => {
    for (const terminal of ['task.failed', 'task.skipped', 'task.upstream_failed', 'task.cancelled']) {
      const emitted = new Set([`${FLOW}:b:${terminal}`]);
      expect(endedHere(emitted, ready[0]!)).toBe(true);
      expect(summary(freshDecisions(ready, emitted))).toEqual(['task.ready:c']);
      // After a start that was already stored, the flow's refolded decisions are only de-duplicated.
      expect(summary(unemitted(ready, emitted))).toEqual(['task.ready:b', 'task.ready:c']);
    }
    expect(endedHere(new Set([`${FLOW}:b:task.succeeded`]), ready[0]!)).toBe(false);
  });

  it('finds the start among the decisions', () => {
    const submitted = ev.submitted(def);
    const start = startOf(decide(folded([submitted]), submitted));
    expect(start).toMatchObject({ key: `${FLOW}:flow.started`, type: 'flow.started' } satisfies Partial<EventDraft>);
    expect(startOf(ready)).toBeUndefined();
  });
});
