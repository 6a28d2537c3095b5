import { describe, expect, it } from 'vitest';
import { decideAll, fold, MAX_TRIGGER_DEPTH, validateFlow, type EventDraft, type FlowEvent } from '../src/index.js';
import { ev, FLOW, fromDraft, given, stamp, validFlow as flow } from './fixtures.js';

const CHILD = '01JCCCCCCCCCCCCCCCCCCCCCCC';

function problems(input: Record<string, unknown>) {
  const result = validateFlow(input);
  if (result.ok) throw new Error('expected problems');
  return result.problems;
}

/** The waiting event as the planner's shell stores it: the child's id (and queue) filled in. */
function stored(draft: EventDraft, childId = CHILD): FlowEvent {
  if (draft.type !== 'task.waiting') throw new Error(`not a task.waiting: ${draft.type}`);
  const child = draft.data.child;
  return fromDraft({ ...draft, data: { ...draft.data, ...(child && { child: { ...child, flow_id: childId, queue: child.queue || 'templated' } }) } });
}

describe('a wait task', () => {
  const def = flow({
    params: { order: 'A-1' },
    tasks: [
      { id: 'charge', executor: 'noop' },
      { id: 'paid', executor: 'wait', depends_on: ['charge'], config: { signal: 'payment_captured', match: 'signal.order == params.order && signal.amount >= 10' }, timeout_secs: 600 },
      { id: 'ship', executor: 'noop', depends_on: ['paid'] },
    ],
  });

  it('waits for its signal with its match, the default look-back and its timeout, instead of becoming ready', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(ev.succeeded('charge')).then(['task.waiting:paid']);
    expect(drafts[0]!.data).toEqual({ signal: { name: 'payment_captured', match: 'signal.order == params.order && signal.amount >= 10', lookback_secs: 300 }, timeout_secs: 600 });
  });

  it('is refused at submission with a bad signal name, a match that is not an expression, or one reading a task not upstream', () => {
    const configs = problems({ tasks: [{ id: 'w1', executor: 'wait', config: { signal: 'has space' } }, { id: 'w4', executor: 'wait', config: { signal: 'ok', lookback_secs: 90_000 } }] });
    expect(configs.map((p) => p.path)).toEqual(['tasks[0].config.signal', 'tasks[1].config.lookback_secs']);
    expect(configs[1]!.message).toContain('signals are kept one day');
    const matches = problems({
      tasks: [
        { id: 'a', executor: 'noop' },
        { id: 'w2', executor: 'wait', config: { signal: 'ok', match: 'signal.x ==' } },
        { id: 'w3', executor: 'wait', config: { signal: 'ok', match: 'tasks.a.output.x == signal.x' } },
      ],
    });
    expect(matches.map((p) => p.path)).toEqual(['tasks[1].config.match', 'tasks[2].config.match']);
    expect(matches[1]!.message).toContain('add "a" to its depends_on');
  });

  it('is cancelled with its flow like an approval', () => {
    const waiting = fromDraft(given([ev.submitted(def), ev.started()]).when(ev.succeeded('charge')).then(['task.waiting:paid']).drafts[0]!);
    given([ev.submitted(def), ev.started(), ev.succeeded('charge'), waiting]).when(ev.cancelRequested()).then(['task.cancelled:paid', 'task.cancelled:ship', 'flow.cancelled']);
  });
});

describe('a trigger task', () => {
  const child = { tasks: [{ id: 'x', executor: 'noop' }, { id: 'y', executor: 'shell', depends_on: ['x'], config: { command: 'echo ${tasks.x.output}' } }] };
  const def = (config: Record<string, unknown>) =>
    flow({ params: { env: 'prod' }, tasks: [{ id: 'build', executor: 'noop' }, { id: 'deploy', executor: 'trigger', depends_on: ['build'], config }, { id: 'after', executor: 'noop', depends_on: ['deploy'] }] });

  it('waits for a child flow validated like a submission, its own references left to it, params resolved from the parent', () => {
    const d = def({ queue: 'deploys', flow: child, params: { build: '${tasks.build.output.ok}', env: '${params.env}' } });
    const { drafts } = given([ev.submitted(d), ev.started()]).when(ev.succeeded('build')).then(['task.waiting:deploy']);
    const data = drafts[0]!.data as { child: { flow_id: string; queue: string; wait: boolean; depth: number; definition: { queue: string; params: unknown; tasks: Array<{ config: unknown }> } } };
    expect(data.child).toMatchObject({ flow_id: '', queue: 'deploys', wait: true, depth: 1 });
    expect(data.child.definition.queue).toBe('deploys');
    expect(data.child.definition.params).toEqual({ build: 'build', env: 'prod' });
    expect(data.child.definition.tasks[1]!.config).toEqual({ command: 'echo ${tasks.x.output}' });
  });

  it('names a template for the shell to resolve', () => {
    const { drafts } = given([ev.submitted(def({ template: 'release', version: 3, params: { env: '${params.env}' } })), ev.started()]).when(ev.succeeded('build')).then(['task.waiting:deploy']);
    expect(drafts[0]!.data).toEqual({ child: { flow_id: '', queue: '', wait: true, depth: 1, template: { name: 'release', version: 3 }, params: { env: 'prod' } } });
  });

  it('without wait, succeeds with Tasked\'s output once its child is submitted, also after a rebuild', () => {
    const d = def({ flow: child, wait: false });
    const history = [ev.submitted(d), ev.started(), ev.succeeded('build')];
    const waiting = stored(given([ev.submitted(d), ev.started()]).when(ev.succeeded('build')).then(['task.waiting:deploy']).drafts[0]!);
    const { drafts } = given(history).when(waiting).then(['task.succeeded:deploy']);
    expect(drafts[0]!.data).toEqual({ output: { flow_id: CHILD, queue_id: 'default', async: true }, duration_ms: 0 });
    expect(decideAll(fold([...history, waiting])).map((x) => `${x.type}:${'task_id' in x ? x.task_id : ''}`)).toEqual(['task.succeeded:deploy']);
  });

  it('cancels its child when its flow is cancelled while it waits', () => {
    const d = def({ flow: child });
    const waiting = stored(given([ev.submitted(d), ev.started()]).when(ev.succeeded('build')).then(['task.waiting:deploy']).drafts[0]!);
    const { drafts } = given([ev.submitted(d), ev.started(), ev.succeeded('build'), waiting]).when(ev.cancelRequested()).then(['flow.cancel_requested', 'task.cancelled:deploy', 'task.cancelled:after', 'flow.cancelled']);
    expect(drafts[0]).toMatchObject({ flow_id: CHILD, key: `${CHILD}:flow.cancel_requested:parent`, data: { requested_by: `flow:${FLOW}` } });
  });

  it(`fails without starting a child ${MAX_TRIGGER_DEPTH} flows deep, or when a child given by reference is not valid`, () => {
    const deep = stamp({ type: 'flow.submitted', flow_id: FLOW, data: { definition: def({ flow: child }), origin: { parent: { flow_id: CHILD, task_id: 't', depth: MAX_TRIGGER_DEPTH } } } });
    const { drafts } = given([deep, ev.started()]).when(ev.succeeded('build')).then(['task.failed:deploy', 'task.upstream_failed:after', 'flow.failed']);
    expect(drafts[0]!.data).toMatchObject({ error: { code: 'TRIGGER_DEPTH_EXCEEDED', retryable: false } });

    const byReference = def({ flow: '${tasks.build.output}' });
    const bad = stamp({ type: 'task.succeeded', flow_id: FLOW, task_id: 'build', attempt: 1, data: { output: { tasks: [{ id: 'a', executor: 'nope' }] }, duration_ms: 1 } });
    const failed = given([ev.submitted(byReference), ev.started()]).when(bad).then(['task.failed:deploy', 'task.upstream_failed:after', 'flow.failed']);
    expect(failed.drafts[0]!.data).toMatchObject({ error: { code: 'CHILD_FLOW_INVALID' } });
    expect((failed.drafts[0]!.data as { error: { message: string } }).error.message).toMatch(/tasks\[0\]\.executor: unknown executor "nope"/);
  });

  it('is refused at submission when its child flow has problems, each with its path inside the parent', () => {
    const found = problems({ tasks: [{ id: 't', executor: 'trigger', config: { flow: { tasks: [{ id: 'a', executor: 'nope' }, { id: 'b', executor: 'noop', depends_on: ['zz'] }] } } }] });
    expect(found.map((p) => p.path)).toEqual(expect.arrayContaining(['tasks[0].config.flow.tasks[0].executor']));
    expect(problems({ tasks: [{ id: 't', executor: 'trigger', config: { template: 'x', flow: child } }] })[0]!.message).toContain('exactly one of "flow"');
  });
});
