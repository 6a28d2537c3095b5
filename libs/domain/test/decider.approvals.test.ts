import { describe, expect, it } from 'vitest';
import {
  awaitsAck,
  countTasks,
  decideAll,
  evolve,
  fold,
  queueLoads,
  toDot,
  toFlowView,
  unknownExecutorMessage,
  validateFlow,
  type EventDraft,
  type FlowEvent,
} from '../src/index.js';
import { ev, FLOW, fromDraft, stamp, given, validFlow as flow } from './fixtures.js';


function problems(input: Record<string, unknown>) {
  const result = validateFlow(input);
  if (result.ok) throw new Error('expected problems');
  return result.problems;
}


/** The waiting event as the planner's shell stores it: with a code drawn. */
function stored(draft: EventDraft, code = '0123456789abcdef0123456789abcdef'): FlowEvent {
  if (draft.type !== 'task.waiting') throw new Error(`not a task.waiting: ${draft.type}`);
  return fromDraft({ ...draft, data: { ...draft.data, output: { ...draft.data.output!, code } } });
}

const approved = (task: string) =>
  stamp({ type: 'task.succeeded', flow_id: FLOW, task_id: task, attempt: 1, data: { output: { approved: true }, duration_ms: 5, ack: { approved_by: 'alice' } } });
const rejected = (task: string) =>
  stamp({ type: 'task.failed', flow_id: FLOW, task_id: task, attempt: 1, data: { error: { message: 'rejected by bob', code: 'REJECTED', retryable: false }, duration_ms: 5, ack: { approved_by: 'bob' } } });
const timedOut = (task: string) =>
  stamp({ type: 'task.timed_out', flow_id: FLOW, task_id: task, attempt: 1, data: { timeout_ms: 60_000, error: { message: 'no approval within 60s', code: 'APPROVAL_TIMEOUT', retryable: false } } });

describe('an approval task', () => {
  const def = flow({
    params: { build: 42 },
    tasks: [
      { id: 'build', executor: 'noop' },
      { id: 'gate', executor: 'approval', depends_on: ['build'], config: { message: 'Deploy build ${params.build} (${tasks.build.output.ok})?' }, timeout_secs: 3600 },
      { id: 'deploy', executor: 'noop', depends_on: ['gate'] },
    ],
  });
  const start = [ev.submitted(def), ev.started()];

  it('waits instead of becoming ready, with Tasked\'s output, its message resolved and no code from the decider', () => {
    const { drafts } = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']);
    expect(drafts[0]).toMatchObject({
      key: `${FLOW}:gate:task.waiting`,
      data: { output: { awaiting_approval: true, message: 'Deploy build 42 (build)?', code: '' }, timeout_secs: 3600 },
    });
  });

  it('is folded as waiting, holding its output (with the stored code), counted apart from ready and running', () => {
    const { drafts } = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']);
    const state = fold([...start, ev.succeeded('build'), stored(drafts[0]!)])!;
    expect(state.tasks.gate).toMatchObject({ status: 'waiting', output: { awaiting_approval: true, code: '0123456789abcdef0123456789abcdef' } });
    expect(awaitsAck(state, 'gate')).toBe(true);
    expect(countTasks(Object.values(state.tasks).map((t) => t.status))).toMatchObject({ waiting: 1, ready: 0, running: 0 });
    // Queue statistics count tasks that need a slot: a waiting approval needs none.
    expect(queueLoads(state).default).toMatchObject({ waiting: 0, running: 0, throttled: 0 });
    expect(toFlowView(state).tasks[1]!.status).toBe('waiting');
    expect(toDot(toFlowView(state))).toContain('gate\\nwaiting');
    // Nothing more to decide while it waits: its dependents wait too.
    expect(decideAll(state)).toEqual([]);
  });

  it('keeps the first stored code when the decision is stored twice (a re-decision past the de-duplication window)', () => {
    const { drafts } = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']);
    const state = fold([...start, ev.succeeded('build'), stored(drafts[0]!, 'a'.repeat(32)), stored(drafts[0]!, 'b'.repeat(32))])!;
    expect((state.tasks.gate!.output as { code: string }).code).toBe('a'.repeat(32));
  });

  it('lets its dependents run once acked', () => {
    const waiting = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']).drafts[0]!;
    const history = [...start, ev.succeeded('build'), stored(waiting)];
    const { state } = given(history).when(approved('gate')).then(['task.ready:deploy']);
    expect(state.tasks.gate).toMatchObject({ status: 'succeeded', ack: { approved_by: 'alice' } });
    expect(awaitsAck(state, 'gate')).toBe(false);
  });

  it('fails the flow when rejected, its dependents upstream_failed', () => {
    const waiting = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']).drafts[0]!;
    const { drafts } = given([...start, ev.succeeded('build'), stored(waiting)]).when(rejected('gate')).then(['task.upstream_failed:deploy', 'flow.failed']);
    expect(drafts[1]!.data).toMatchObject({ failed_tasks: ['gate'], upstream_failed_tasks: ['deploy'] });
  });

  it('fails the flow when it times out', () => {
    const waiting = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']).drafts[0]!;
    const { state } = given([...start, ev.succeeded('build'), stored(waiting)]).when(timedOut('gate')).then(['task.upstream_failed:deploy', 'flow.failed']);
    expect(state.tasks.gate).toMatchObject({ status: 'timed_out', error: { code: 'APPROVAL_TIMEOUT' } });
  });

  it('ends once: an ack after the timeout changes nothing', () => {
    const waiting = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']).drafts[0]!;
    const state = fold([...start, ev.succeeded('build'), stored(waiting), timedOut('gate'), approved('gate')])!;
    expect(state.tasks.gate!.status).toBe('timed_out');
    expect(state.terminal_count).toBe(2);
  });

  it('is cancelled by the planner when the flow is cancelled (no executor holds it)', () => {
    const waiting = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']).drafts[0]!;
    const { drafts } = given([...start, ev.succeeded('build'), stored(waiting)]).when(ev.cancelRequested()).then(['task.cancelled:gate', 'task.cancelled:deploy', 'flow.cancelled']);
    expect(drafts[0]!.key).toBe(`${FLOW}:gate:task.cancelled`);
  });

  it('is cancelled when its wait is stored after the cancel request', () => {
    const waiting = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']).drafts[0]!;
    const history = [...start, ev.succeeded('build'), ev.cancelRequested()];
    given(history).when(stored(waiting)).then(['task.cancelled:gate', 'task.cancelled:deploy', 'flow.cancelled']);
  });

  it('is cancelled by the flow\'s deadline', () => {
    const waiting = given(start).when(ev.succeeded('build')).then(['task.waiting:gate']).drafts[0]!;
    given([...start, ev.succeeded('build'), stored(waiting)]).when(ev.deadlinePassed()).then(['task.cancelled:gate', 'task.cancelled:deploy', 'flow.failed']);
  });

  it('goes straight to waiting as a root task, and its condition can skip it', () => {
    const root = flow({ tasks: [{ id: 'ok', executor: 'approval' }, { id: 'never', executor: 'approval', condition: 'false' }] });
    const { drafts } = given([ev.submitted(root)]).when(ev.started()).then(['task.waiting:ok', 'task.skipped:never']);
    expect(drafts[0]!.data).toEqual({ output: { awaiting_approval: true, message: 'Approval required', code: '' } });
  });
});

describe('an approval task in a fail_fast flow', () => {
  const def = flow({
    fail_fast: true,
    tasks: [
      { id: 'a', executor: 'noop' },
      { id: 'gate', executor: 'approval' },
      { id: 'sign-off', executor: 'approval', depends_on: ['a'], trigger_rule: 'always' },
    ],
  });

  it('is cancelled by fail_fast, which spares an `always` approval (it still waits for its ack)', () => {
    const start = [ev.submitted(def), ev.started()];
    const waiting = given([ev.submitted(def)]).when(ev.started()).then(['task.ready:a', 'task.waiting:gate']).drafts[1]!;
    const history = [...start, stored(waiting), ev.ready('a', def)];
    given(history).when(ev.failed('a')).then(['flow.fail_fast']);
    const failFast = stamp({ type: 'flow.fail_fast', flow_id: FLOW, data: { task_id: 'a', reason: 'fail_fast: task "a" failed' } });
    const { drafts, state } = given([...history, ev.failed('a')]).when(failFast).then(['task.cancelled:gate', 'task.waiting:sign-off']);
    const after = evolve(evolve(state, fromDraft(drafts[0]!)), stored(drafts[1]!))!;
    expect(awaitsAck(after, 'sign-off')).toBe(true);
  });
});

describe('approval validation', () => {
  it('is an executor, no longer refused as Tasked-only', () => {
    expect(flow({ tasks: [{ id: 'a', executor: 'approval', config: { message: 'Ship it?' } }] }).tasks[0]!.config).toEqual({ message: 'Ship it?' });
    expect(unknownExecutorMessage('approval')).toMatch(/^unknown executor/);
  });

  it('names each problem of its config', () => {
    expect(problems({ tasks: [{ id: 'a', executor: 'approval', config: { message: 3 } }] })).toEqual([
      { path: 'tasks[0].config.message', message: 'must be text: what the approver is asked, e.g. "Deploy build 42 to production?"' },
    ]);
    expect(problems({ tasks: [{ id: 'a', executor: 'approval', config: { message: '' } }] })[0]!.message).toBe('must not be empty; leave "message" out for "Approval required"');
    expect(problems({ tasks: [{ id: 'a', executor: 'approval', config: { message: 'x'.repeat(4001) } }] })[0]!.message).toBe('must be at most 4000 characters');
    expect(problems({ tasks: [{ id: 'a', executor: 'approval', config: { approvers: ['x'] } }] })[0]).toMatchObject({ path: 'tasks[0].config.approvers' });
  });

  it('refuses secrets and run-time references in its message, which is stored and shown', () => {
    expect(problems({ tasks: [{ id: 'a', executor: 'approval', config: { message: 'token ${secrets.TOKEN}?' } }] })).toEqual([
      {
        path: 'tasks[0].config.message',
        message: "an approval message cannot name ${secrets.…}: it is shown to approvers and stored in the task's output; name upstream outputs (${tasks.<id>.output…}) or params instead",
      },
    ]);
    expect(problems({ tasks: [{ id: 'a', executor: 'approval', config: { message: 'attempt ${task.attempt}' } }] })[0]!.message).toMatch(/cannot name \$\{task\.…\}/);
  });
});
