import { describe, expect, it } from 'vitest';
import { decide, decideAll, evolve, fold, MAX_LISTED_IDS, type EventDraft, type FlowEvent } from '../src/index.js';
import { definition, ev, FLOW, given } from './fixtures.js';


const ci = definition([
  { id: 'build' },
  { id: 'test-unit', depends_on: ['build'] },
  { id: 'test-integ', depends_on: ['build'] },
  { id: 'deploy', depends_on: ['test-unit', 'test-integ'] },
]);

describe('decide', () => {
  it('starts the flow and readies the roots on submission', () => {
    given([]).when(ev.submitted(ci)).then(['flow.started', 'task.ready:build']);
  });

  it('readies a task only when all its dependencies succeeded', () => {
    const history = [ev.submitted(ci), ev.started(), ev.ready('build', ci), ev.succeeded('build')];
    given(history.slice(0, 3)).when(ev.succeeded('build')).then(['task.ready:test-unit', 'task.ready:test-integ']);
    const later = [...history, ev.ready('test-unit', ci), ev.ready('test-integ', ci)];
    given(later).when(ev.succeeded('test-unit')).then([]);
    given([...later, ev.succeeded('test-unit')]).when(ev.succeeded('test-integ')).then(['task.ready:deploy']);
  });

  it('finishes the flow when the last task succeeds', () => {
    const history = [ev.submitted(ci), ev.started(), ...['build', 'test-unit', 'test-integ'].map((t) => ev.succeeded(t))];
    const { drafts } = given(history).when(ev.succeeded('deploy')).then(['flow.succeeded']);
    expect(drafts[0]!.data).toEqual({ succeeded: 4, total: 4 });
  });

  it('names at most a bounded number of tasks in an event, however many failed', () => {
    const wide = definition([...Array.from({ length: 250 }, (_, i) => ({ id: `t${i}` })), { id: 'join', depends_on: Array.from({ length: 250 }, (_, i) => `t${i}`) }]);
    const failedAll = Array.from({ length: 249 }, (_, i) => ev.failed(`t${i}`));
    const { drafts } = given([ev.submitted(wide), ev.started(), ...failedAll]).when(ev.failed('t249')).then(['task.upstream_failed:join', 'flow.failed']);
    const skipped = drafts[0]!.data as { reason: string; upstream: string[] };
    expect(skipped.upstream).toHaveLength(MAX_LISTED_IDS);
    expect(skipped.reason).toMatch(/and 240 more$/);
    const failed = drafts[1]!.data as { failed_tasks: string[]; reason: string };
    expect(failed.failed_tasks).toHaveLength(MAX_LISTED_IDS);
    expect(failed.reason).toMatch(/^250 tasks failed: t0, t1, .* and 240 more$/);
  });

  it('marks every descendant of a failed task upstream_failed, not its siblings, and fails the flow at the end', () => {
    const history = [ev.submitted(ci), ev.started(), ev.succeeded('build')];
    const { drafts } = given(history).when(ev.failed('test-unit')).then(['task.upstream_failed:deploy']);
    expect(drafts[0]!.data).toEqual({ reason: 'upstream "test-unit" failed', upstream: ['test-unit'] });
    const skipped = { ...ev.started(), type: 'task.upstream_failed', task_id: 'deploy', data: { reason: 'upstream', upstream: ['test-unit'] } } as FlowEvent;
    const { drafts: end } = given([...history, ev.failed('test-unit'), skipped]).when(ev.succeeded('test-integ')).then(['flow.failed']);
    expect(end[0]!.data).toMatchObject({ failed_tasks: ['test-unit'], skipped_tasks: [], upstream_failed_tasks: ['deploy'], succeeded: 2, total: 4 });
  });

  it('fails the flow once the upstream_failed tasks are recorded and siblings settle', () => {
    const chain = definition([{ id: 'a' }, { id: 'b', depends_on: ['a'] }, { id: 'c', depends_on: ['b'] }, { id: 'x' }]);
    const history = [ev.submitted(chain), ev.started(), ev.succeeded('x')];
    const { drafts } = given(history).when(ev.failed('a')).then(['task.upstream_failed:b', 'task.upstream_failed:c', 'flow.failed']);
    expect(drafts[2]!.data).toMatchObject({ failed_tasks: ['a'], skipped_tasks: [], upstream_failed_tasks: ['b', 'c'], succeeded: 1, total: 4 });
  });

  it('treats a timeout like a failure', () => {
    const chain = definition([{ id: 'a' }, { id: 'b', depends_on: ['a'] }]);
    given([ev.submitted(chain), ev.started()]).when(ev.timedOut('a')).then(['task.upstream_failed:b', 'flow.failed']);
  });

  it('cancels everything not yet running on cancel, and finishes once running tasks end', () => {
    const history = [ev.submitted(ci), ev.started(), ev.ready('build', ci), ev.taskStarted('build')];
    given(history)
      .when(ev.cancelRequested())
      .then(['task.cancelled:test-unit', 'task.cancelled:test-integ', 'task.cancelled:deploy']);
    const cancelled = (task: string) => ({ ...ev.started(), type: 'task.cancelled', task_id: task, data: { reason: 'user asked' } }) as FlowEvent;
    const cancelling = [...history, ev.cancelRequested(), cancelled('test-unit'), cancelled('test-integ'), cancelled('deploy')];
    given(cancelling).when(ev.succeeded('build')).then(['flow.cancelled']);
  });

  it('winds a flow down when its deadline passes, then fails it with FLOW_TIMEOUT', () => {
    const history = [ev.submitted(ci), ev.started(), ev.ready('build', ci), ev.taskStarted('build')];
    given(history)
      .when(ev.deadlinePassed())
      .then(['task.cancelled:test-unit', 'task.cancelled:test-integ', 'task.cancelled:deploy']);
    const cancelled = (task: string) => ({ ...ev.started(), type: 'task.cancelled', task_id: task, data: { reason: 'timeout' } }) as FlowEvent;
    const windingDown = [...history, ev.deadlinePassed(), cancelled('test-unit'), cancelled('test-integ'), cancelled('deploy')];
    expect(fold(windingDown)!.status).toBe('cancelling');
    const { drafts } = given(windingDown).when(cancelled('build')).then(['flow.failed']);
    expect(drafts[0]!.data).toMatchObject({
      code: 'FLOW_TIMEOUT',
      failed_tasks: ['build', 'test-unit', 'test-integ', 'deploy'],
      reason: "the flow's timeout of 30s passed: 4 of 4 tasks did not finish",
    });
  });

  it('ignores a deadline that passes after the flow ended, and a cancel already under way keeps its reason', () => {
    const one = definition([{ id: 'a' }]);
    const done = [ev.submitted(one), ev.started(), ev.succeeded('a'), { ...ev.started(), type: 'flow.succeeded', data: { succeeded: 1, total: 1 } } as FlowEvent];
    expect(fold([...done, ev.deadlinePassed()])).toEqual(fold(done));
    const cancelling = fold([ev.submitted(one), ev.started(), ev.taskStarted('a'), ev.cancelRequested(), ev.deadlinePassed()]);
    expect(cancelling).toMatchObject({ status: 'cancelling', cancel_reason: 'user asked' });
    expect(cancelling!.deadline_passed_at).toBeUndefined();
  });

  it('cancels a task that became ready after the cancel request', () => {
    const chain = definition([{ id: 'a' }, { id: 'b' }]);
    const history = [ev.submitted(chain), ev.started(), ev.taskStarted('a'), ev.cancelRequested()];
    given(history).when(ev.ready('b', chain)).then(['task.cancelled:b']);
  });

  it('gives every decision a deterministic key', () => {
    const first = given([]).when(ev.submitted(ci)).then(['flow.started', 'task.ready:build']).drafts;
    const again = given([]).when(ev.submitted(ci)).then(['flow.started', 'task.ready:build']).drafts;
    expect(first.map((d: EventDraft) => d.key)).toEqual([`${FLOW}:flow.started`, `${FLOW}:build:task.ready`]);
    expect(again.map((d: EventDraft) => d.key)).toEqual(first.map((d: EventDraft) => d.key));
  });

  it('decides nothing for an unknown or finished flow', () => {
    expect(decide(null, ev.succeeded('a'))).toEqual([]);
    const done = fold([ev.submitted(definition([{ id: 'a' }])), ev.succeeded('a'), { ...ev.started(), type: 'flow.succeeded', data: { succeeded: 1, total: 1 } } as FlowEvent]);
    expect(done!.status).toBe('succeeded');
    expect(decideAll(done)).toEqual([]);
  });
});

describe('evolve', () => {
  it('ignores events for unknown flows, unknown tasks and steps backwards', () => {
    expect(evolve(null, ev.succeeded('a'))).toBeNull();
    const state = fold([ev.submitted(ci), ev.started(), ev.succeeded('build')])!;
    evolve(state, ev.ready('build', ci));
    evolve(state, ev.taskStarted('build', 2));
    evolve(state, ev.failed('build'));
    evolve(state, ev.succeeded('nope'));
    expect(state.tasks.build!.status).toBe('succeeded');
    expect(state.terminal_count).toBe(1);
  });

  it('records attempts, their errors and the final output', () => {
    const chain = definition([{ id: 'a' }]);
    const state = fold([
      ev.submitted(chain),
      ev.taskStarted('a', 1),
      ev.attemptFailed('a', 1),
      ev.taskStarted('a', 2),
      ev.attemptFailed('a', 2),
      ev.taskStarted('a', 3),
      ev.succeeded('a', 3),
    ])!;
    const task = state.tasks.a!;
    expect(task.status).toBe('succeeded');
    expect(task.attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'succeeded'],
    ]);
    expect(task.output).toEqual({ ok: 'a' });
    expect(task.error).toBeUndefined();
  });

  it('keeps the first submission when a flow is submitted twice', () => {
    const first = ev.submitted(definition([{ id: 'a' }]));
    const state = evolve(evolve(null, first), ev.submitted(definition([{ id: 'b' }])));
    expect(Object.keys(state!.tasks)).toEqual(['a']);
  });
});
