import { scheduleFlow } from '@taskstream/domain';
import { derivedFlowId } from '@taskstream/nats';
import { describe, expect, it } from 'vitest';
import { scheduledRunId } from '../src/runs.js';

describe("a schedule's runs", () => {
  it('have an id derived from the schedule and the scheduled time, the same in every instance', () => {
    const at = Date.parse('2026-05-01T03:00:00Z');
    expect(scheduledRunId('01JSCHEDULE', at)).toBe(derivedFlowId('schedule:01JSCHEDULE:2026-05-01T03:00:00.000Z', at));
    expect(scheduledRunId('01JSCHEDULE', at)).toBe(scheduledRunId('01JSCHEDULE', at));
    expect(scheduledRunId('01JSCHEDULE', at + 1000)).not.toBe(scheduledRunId('01JSCHEDULE', at));
    expect(scheduledRunId('01JOTHER', at)).not.toBe(scheduledRunId('01JSCHEDULE', at));
    // Time-ordered by the scheduled time.
    expect(scheduledRunId('01JSCHEDULE', at + 1000) > scheduledRunId('01JSCHEDULE', at)).toBe(true);
  });

  it("submit the schedule's flow with its queue and name where the flow has none, never over the flow's own", () => {
    const tasks = [{ id: 'a', executor: 'noop' }];
    expect(scheduleFlow({ flow: { tasks }, queue: 'nightly', name: 'report' })).toEqual({ tasks, queue: 'nightly', name: 'report' });
    expect(scheduleFlow({ flow: { tasks, queue: 'ci', name: 'mine' }, queue: 'nightly', name: 'report' })).toEqual({ tasks, queue: 'ci', name: 'mine' });
    expect(scheduleFlow({ flow: { tasks } })).toEqual({ tasks });
    expect(scheduleFlow({ flow: 'not a flow', name: 'x' })).toBe('not a flow');
  });
});
