import { describe, expect, it } from 'vitest';
import { decideAll, fold, lineageFrom, spawnedTasks, submittedDefinition, validateFlow, type FlowEvent } from '../src/index.js';
import { ev, FLOW, fromDraft, given, stamp, validFlow as flow } from './fixtures.js';

function problems(input: Record<string, unknown>) {
  const result = validateFlow(input);
  if (result.ok) throw new Error('expected problems');
  return result.problems;
}

/** A spawn step's success as the executor records it: Tasked's output around the inner step's. */
const spawnSucceeded = (task: string, generated: unknown[]) =>
  stamp({ type: 'task.succeeded', flow_id: FLOW, task_id: task, attempt: 1, data: { output: { generated_count: generated.length, inner_output: { exit_code: 0, stdout: `${JSON.stringify(generated)}\n`, stderr: '' } }, duration_ms: 3 } });

const subDag = [
  { id: 'fetch', executor: 'noop', config: { output: { rows: 3 } } },
  { id: 'load', executor: 'transform', depends_on: ['fetch'], config: { expr: 'tasks["gen/fetch"].output.rows + 1' } },
  { id: 'report', executor: 'noop', depends_on: ['load', 'prepare'] },
];

describe('a spawn task', () => {
  const def = flow({
    tasks: [
      { id: 'prepare', executor: 'noop' },
      { id: 'gen', executor: 'spawn', depends_on: ['prepare'], spawn_output: ['report'], config: { command: './discover.sh' } },
      { id: 'after', executor: 'noop', depends_on: ['gen/report'] },
    ],
  });

  it('is accepted with a promised output other tasks depend on, in Tasked\'s forms', () => {
    expect(def.tasks[1]).toMatchObject({ executor: 'spawn', spawn_output: ['report'], config: { command: './discover.sh' } });
    expect(flow({ tasks: [{ id: 'g', executor: 'spawn', config: { executor: 'http', config: { url: 'https://example.com/tasks', method: 'GET' } } }] }).tasks[0]!.config).toMatchObject({ executor: 'http' });
  });

  it('is refused at submission: an undeclared output, spawn_output elsewhere, a spawn inside a spawn, references in its shell command, a cycle through a promise', () => {
    const found = problems({
      tasks: [
        { id: 'g', executor: 'spawn', config: { command: 'x' } },
        { id: 'a', executor: 'noop', depends_on: ['g/nope'] },
        { id: 'n', executor: 'noop', spawn_output: ['x'] },
        { id: 's', executor: 'spawn', config: { executor: 'spawn', config: {} } },
        { id: 'r', executor: 'spawn', depends_on: ['g'], config: { command: 'echo ${tasks.g.output}' } },
        { id: 'e', executor: 'spawn', config: {} },
      ],
    });
    expect(found.map((p) => p.path)).toEqual(['tasks[2].spawn_output', 'tasks[3].config.executor', 'tasks[4].config.command', 'tasks[5].config', 'tasks[1].depends_on[0]']);
    expect(found[4]!.message).toBe('task "a" depends on "g/nope", which spawn task "g" does not promise; add "nope" to its spawn_output');
    const cycle = problems({ tasks: [{ id: 'g', executor: 'spawn', depends_on: ['a'], spawn_output: ['x'], config: { command: 'x' } }, { id: 'a', executor: 'noop', depends_on: ['g/x'] }] });
    expect(cycle[0]!.message).toContain('dependency cycle');
  });

  it('adds the tasks its step generated, under its id, the roots after it, and a promised dependent runs after its output', () => {
    const history = [ev.submitted(def), ev.started(), ev.succeeded('prepare'), fromDraft({ key: 'k', type: 'task.ready', flow_id: FLOW, task_id: 'gen', data: { queue: 'default', priority: 0, spec: def.tasks[1]! } })];
    const { drafts } = given(history).when(spawnSucceeded('gen', subDag)).then(['flow.tasks_added']);
    const added = drafts[0]!;
    if (added.type !== 'flow.tasks_added') throw new Error('expected tasks_added');
    expect(added.key).toBe(`${FLOW}:gen:flow.tasks_added:0`);
    expect(added.data.kind).toBe('spawn');
    expect(added.data.tasks.map((t) => [t.id, t.depends_on, t.spawned_by])).toEqual([
      ['gen/fetch', ['gen'], 'gen'],
      ['gen/load', ['gen/fetch'], 'gen'],
      ['gen/report', ['gen/load', 'prepare'], 'gen'],
    ]);
    const grown = [...history, spawnSucceeded('gen', subDag)];
    given(grown).when(fromDraft(added)).then(['task.ready:gen/fetch']);
    const state = fold([...grown, fromDraft(added)])!;
    expect(state.order.indexOf('gen/report')).toBeLessThan(state.order.indexOf('after'));
    const ran = [...grown, fromDraft(added), ev.succeeded('gen/fetch'), ev.succeeded('gen/load')];
    given(ran).when(ev.succeeded('gen/report')).then(['task.ready:after']);
    given([...ran, ev.succeeded('gen/report')]).when(ev.succeeded('after')).then(['flow.succeeded']);
  });

  it('does not let the flow end between its success and its tasks being added', () => {
    const last = flow({ tasks: [{ id: 'gen', executor: 'spawn', config: { command: 'x' } }] });
    given([ev.submitted(last), ev.started()]).when(spawnSucceeded('gen', [{ id: 'a', executor: 'noop' }])).then(['flow.tasks_added']);
    given([ev.submitted(last), ev.started()]).when(spawnSucceeded('gen', [])).then(['flow.succeeded']);
  });

  it('when it fails, the tasks waiting for its promised outputs end upstream_failed', () => {
    given([ev.submitted(def), ev.started(), ev.succeeded('prepare')]).when(ev.failed('gen')).then(['task.upstream_failed:after', 'flow.failed']);
  });

  it('lists every problem of what it generated, checked like a submission and against the flow', () => {
    const state = fold([ev.submitted(def), ev.started()])!;
    const spec = state.tasks.gen!.spec;
    const out = (tasks: unknown) => ({ stdout: JSON.stringify(tasks) });
    const result = spawnedTasks(state, spec, out([
      { id: 'a', executor: 'nope' },
      { id: 'a', executor: 'noop' },
      { id: 'b', executor: 'noop', depends_on: ['missing'] },
      { id: 'c', executor: 'noop', depends_on: ['after'] },
    ]));
    expect(result.ok).toBe(false);
    const listed = (result as { problems: string[] }).problems;
    expect(listed).toEqual(expect.arrayContaining([
      'a generated task depends on "missing", which is not a task of the flow',
      'a generated task depends on "after", which waits for this spawn\'s outputs: that would be a cycle',
      expect.stringMatching(/^spawned\[0\]\.executor: unknown executor "nope"/),
      expect.stringMatching(/^spawned\[1\]\.id: duplicate task id "gen\/a"/),
    ]));
    expect(spawnedTasks(state, spec, out([{ id: 'x', executor: 'noop' }]))).toEqual({ ok: false, problems: ['spawn_output promises "report", which the spawn output does not generate'] });
    expect(spawnedTasks(state, { ...spec, spawn_output: [] }, out([{ id: 'big', executor: 'noop', config: { output: 'x'.repeat(300 * 1024) } }]))).toMatchObject({ ok: false, problems: [expect.stringMatching(/^task "gen\/big" is \d+ bytes, over the limit of 262144/)] });
    expect(spawnedTasks(state, spec, { body: 'not json' })).toMatchObject({ ok: false, problems: [expect.stringMatching(/^failed to parse spawn output as tasks/)] });
    const deep = { ...spec, id: 'a/b/c/d/e/f/g/h/i', spawn_output: [] };
    expect(spawnedTasks(state, deep, out([]))).toEqual({ ok: false, problems: ['spawn task "a/b/c/d/e/f/g/h/i" is 9 spawns deep; spawn tasks nest at most 8 deep'] });
    expect(spawnedTasks(state, { ...deep, id: 'a/b/c/d/e/f/g/h' }, out([]))).toEqual({ ok: true, specs: [] });
  });

  it('is rerun from its submitted definition, and a reused spawn adds its tasks again from its output', () => {
    const history: FlowEvent[] = [ev.submitted(def), ev.started(), ev.succeeded('prepare'), spawnSucceeded('gen', subDag)];
    const added = decideAll(fold(history)).filter((d) => d.type === 'flow.tasks_added').map(fromDraft);
    const parent = fold([...history, ...added, ev.succeeded('gen/fetch'), ev.succeeded('gen/load'), ev.succeeded('gen/report'), ev.succeeded('after'), stamp({ type: 'flow.succeeded', flow_id: FLOW, data: { succeeded: 6, total: 6 } })])!;
    const original = submittedDefinition(parent);
    expect(original.tasks.map((t) => t.id)).toEqual(['prepare', 'gen', 'after']);
    const lineage = lineageFrom(parent, 'rerun', parent.last_seq, ['after']);
    expect(Object.keys(lineage.reused)).toEqual(['prepare', 'gen']);
    const child = stamp({ type: 'flow.submitted', flow_id: FLOW, data: { definition: original, lineage } });
    const started = ev.started();
    const { drafts } = given([child]).when(started).then(['flow.tasks_added']);
    expect((drafts[0]!.data as { tasks: unknown[] }).tasks).toHaveLength(3);
    given([child, started]).when(fromDraft(drafts[0]!)).then(['task.ready:gen/fetch']);
  });
});
