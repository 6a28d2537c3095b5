import { describe, expect, it } from 'vitest';
import { decide, evolve } from '@taskstream/domain';
import { deadlineApplies, deadlineOnStart, untilDue } from '../src/deadlines.js';
import { definition, ev, FLOW, folded, fromDraft } from './fixtures.js';

const timed = definition([{ id: 'a' }], { timeout_secs: 30 });
const untimed = definition([{ id: 'a' }]);

function finished() {
  const succeeded = ev.succeeded('a');
  const state = folded([ev.submitted(timed), ev.started(), succeeded]);
  for (const draft of decide(state, succeeded)) evolve(state, fromDraft(draft), state.last_seq + 1);
  return state;
}

describe('planner deadlines', () => {
  it("a flow's start sets its deadline, timeout_secs after the start", () => {
    const started = ev.started();
    const state = folded([ev.submitted(timed), started]);
    expect(deadlineOnStart(started, state)).toEqual({ version: 1, flow_id: FLOW, timeout_secs: 30, due_at: new Date(Date.parse(started.time) + 30_000).toISOString() });
  });

  it('sets none for another event, a flow without a timeout, or a flow that ended', () => {
    const started = ev.started();
    expect(deadlineOnStart(ev.succeeded('a'), folded([ev.submitted(timed), started]))).toBeUndefined();
    expect(deadlineOnStart(started, folded([ev.submitted(untimed), started]))).toBeUndefined();
    expect(deadlineOnStart(started, finished())).toBeUndefined();
  });

  it('is due once its time has come', () => {
    const deadline = { version: 1 as const, flow_id: FLOW, timeout_secs: 30, due_at: '2026-01-01T00:00:30.000Z' };
    expect(untilDue(deadline, Date.parse('2026-01-01T00:00:10.000Z'))).toBe(20_000);
    expect(untilDue(deadline, Date.parse('2026-01-01T00:00:30.000Z'))).toBe(0);
  });

  it('is recorded only for a flow that exists, has not ended, and has no deadline recorded', () => {
    expect(deadlineApplies(folded([ev.submitted(timed), ev.started()]))).toBe(true);
    expect(deadlineApplies(null)).toBe(false);
    expect(deadlineApplies(finished())).toBe(false);
    expect(deadlineApplies(folded([ev.submitted(timed), ev.started(), ev.deadlinePassed()]))).toBe(false);
  });
});
