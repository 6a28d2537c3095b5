import { describe, expect, it } from 'vitest';
import {
  artifactInputsOf,
  artifactNameProblem,
  artifactObjectName,
  findReferences,
  fold,
  lineageFrom,
  prepareTask,
  resolveForAttempt,
  validateFlow,
  type FlowDefinition,
  type TaskSpec,
} from '../src/index.js';
import { ev, FLOW, stamp } from './fixtures.js';

const SHA = 'b'.repeat(64);
const stored = (task: string, name: string, attempt = 1) =>
  stamp({ type: 'task.artifact_stored', flow_id: FLOW, task_id: task, attempt, data: { name, bytes: 7, sha256: SHA, object: artifactObjectName(FLOW, task, attempt, name) } });

function flow(tasks: unknown[]): FlowDefinition {
  const result = validateFlow({ tasks });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.flow;
}

describe('artifact names', () => {
  it.each(['rows.csv', 'out/report 2026.pdf', 'données/été.txt', '.env', 'a-b_c+d=e@f,g~h'])('accepts %j', (name) => {
    expect(artifactNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['', 'is empty'],
    ['../etc/passwd', '".." part'],
    ['a/./b', '"." part'],
    ['/abs', 'empty part'],
    ['a//b', 'empty part'],
    ['a/', 'empty part'],
    ['back\\slash', 'character outside the rule'],
    ['new\nline', 'character outside the rule'],
    [' lead', 'starting or ending with a space'],
    ['x'.repeat(129), 'part of 129 characters'],
    [Array(17).fill('d').join('/'), '17 levels deep'],
  ])('refuses %j', (name, why) => {
    expect(artifactNameProblem(name)).toContain(why);
  });

  it('become distinct objects per attempt, the task id encoded', () => {
    expect(artifactObjectName(FLOW, 'build/linux', 2, 'out/app')).toBe(`${FLOW}/build%2Flinux/2/out/app`);
  });
});

describe('${tasks.<id>.artifacts.<name>} references', () => {
  it('are written bare or quoted', () => {
    const { references, problems } = findReferences('cat ${tasks.extract.artifacts.out/rows.csv} ${tasks["a.b"].artifacts["my report.pdf"]}');
    expect(problems).toEqual([]);
    expect(references.map((r) => [r.root, r.taskId, r.path])).toEqual([
      ['artifacts', 'extract', ['out/rows.csv']],
      ['artifacts', 'a.b', ['my report.pdf']],
    ]);
  });

  it.each([
    ['${tasks.a.artifacts}', 'name the file'],
    ['${tasks.a.artifacts.my report.pdf}', 'written in quotes'],
    ['${tasks.a.artifacts["../x"]}', '".." part'],
    ['${tasks.a.artifacts["x"].y}', 'nothing may follow'],
  ])('refuse %s, saying how to write it', (text, why) => {
    expect(findReferences(text).problems.join()).toContain(why);
  });

  it('may name an upstream task, in shell tasks only', () => {
    const result = validateFlow({
      tasks: [
        { id: 'a', executor: 'shell', config: { command: 'true' } },
        { id: 'b', executor: 'shell', config: { command: 'wc -l "${tasks.a.artifacts.rows.csv}"' }, depends_on: ['a'] },
        { id: 'c', executor: 'shell', config: { command: 'cat "${tasks.b.artifacts.x}"' }, depends_on: ['a'] },
        { id: 'd', executor: 'http', config: { url: 'https://example.com/${tasks.a.artifacts.x}' }, depends_on: ['a'] },
      ],
    });
    expect(result.ok).toBe(false);
    const problems = (result as { problems: Array<{ path: string; message: string }> }).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]!.message).toContain('which is not upstream of "c"');
    expect(problems[1]!.message).toContain('only shell steps can read');
  });
});

describe('resolving artifact references', () => {
  const def = flow([
    { id: 'extract', executor: 'shell', config: { command: 'true' } },
    { id: 'load', executor: 'shell', config: { command: 'wc -l < "${tasks.extract.artifacts.rows.csv}" && echo ${tasks.extract.output.ok}' }, depends_on: ['extract'] },
  ]);
  const start = [ev.submitted(def), ev.started(), ev.ready('extract', def), ev.taskStarted('extract')];

  it('the planner checks the file was stored and binds its object; the executor substitutes the local path', () => {
    const state = fold([...start, stored('extract', 'rows.csv'), ev.succeeded('extract')])!;
    const prepared = prepareTask(state, state.tasks.load!);
    expect(prepared.kind).toBe('ready');
    const spec = (prepared as { spec: TaskSpec }).spec;
    expect(spec.run_time_strings).toEqual([['config', 'command']]);
    expect(spec.bindings!.tasks.extract).toEqual({ output: { ok: 'extract' }, artifacts: { 'rows.csv': { object: `${FLOW}/extract/1/rows.csv`, bytes: 7, sha256: SHA } } });
    expect(artifactInputsOf(spec)).toEqual([{ task: 'extract', name: 'rows.csv', object: `${FLOW}/extract/1/rows.csv`, bytes: 7, sha256: SHA }]);

    const paths = new Map([['extract\0rows.csv', '/tmp/in/extract/rows.csv']]);
    const resolved = resolveForAttempt(spec, 'load', 1, () => undefined, (task, name) => paths.get(`${task}\0${name}`));
    expect(resolved.ok).toBe(true);
    const config = (resolved as { spec: TaskSpec }).spec.config;
    expect(config.command).toBe('wc -l < "${TS_REF_1}" && echo ${TS_REF_2}');
    expect(config.env).toEqual({ TS_REF_1: '/tmp/in/extract/rows.csv', TS_REF_2: 'extract' });
  });

  it('a later attempt replaces a file of the same name', () => {
    const state = fold([...start, stored('extract', 'rows.csv'), stored('extract', 'rows.csv', 2), ev.succeeded('extract', 2)])!;
    const spec = (prepareTask(state, state.tasks.load!) as { spec: TaskSpec }).spec;
    expect(spec.bindings!.tasks.extract!.artifacts!['rows.csv']!.object).toBe(`${FLOW}/extract/2/rows.csv`);
  });

  it('a file the task did not store fails the task, listing what it stored', () => {
    const state = fold([...start, stored('extract', 'other.csv'), stored('extract', 'a.txt'), ev.succeeded('extract')])!;
    const prepared = prepareTask(state, state.tasks.load!);
    expect(prepared).toMatchObject({ kind: 'fail', error: { code: 'REFERENCE_ERROR', retryable: false } });
    const message = (prepared as { error: { message: string } }).error.message;
    expect(message).toContain('task "extract" stored no artifact "rows.csv"; it stored a.txt, other.csv');
    const none = fold([...start, ev.succeeded('extract')])!;
    expect((prepareTask(none, none.tasks.load!) as { error: { message: string } }).error.message).toContain('stored no artifacts');
  });

  it("a rerun reuses a task's artifacts with its output, so the tasks it runs again still read them", () => {
    const parent = fold([...start, stored('extract', 'rows.csv'), ev.succeeded('extract'), ev.ready('load', def), ev.taskStarted('load'), ev.failed('load')])!;
    const lineage = lineageFrom(parent, 'rerun', 9);
    expect(lineage.reused.extract!.artifacts).toEqual({ 'rows.csv': { name: 'rows.csv', bytes: 7, sha256: SHA, object: `${FLOW}/extract/1/rows.csv`, attempt: 1 } });
    const CHILD = '01JCCCCCCCCCCCCCCCCCCCCCCC';
    const child = fold([stamp({ type: 'flow.submitted', flow_id: CHILD, data: { definition: def, lineage } }), ev.started(CHILD)])!;
    const spec = (prepareTask(child, child.tasks.load!) as { spec: TaskSpec }).spec;
    // The file stays the parent's object.
    expect(spec.bindings!.tasks.extract!.artifacts!['rows.csv']!.object).toBe(`${FLOW}/extract/1/rows.csv`);
  });
});
