import { describe, expect, it } from 'vitest';
import {
  checkExpression,
  collectReferences,
  evaluateCondition,
  evaluateExpression,
  findReferences,
  injectShellReferences,
  MAX_EXPRESSION_LENGTH,
  resolveReferences,
  RESERVED_ENV_PREFIXES,
  type ExpressionBindings,
  type RefRoot,
  type ReferenceScope,
} from '../src/index.js';

const ALL: ReadonlySet<RefRoot> = new Set<RefRoot>(['tasks', 'flow', 'task', 'params', 'secrets']);
const PLANNER: ReadonlySet<RefRoot> = new Set<RefRoot>(['tasks', 'flow', 'params']);

function scopeWith(outputs: Record<string, unknown>, extra: Partial<ReferenceScope> = {}): ReferenceScope {
  return {
    flowId: 'flow-1',
    taskId: 'deploy',
    attempt: 2,
    params: { region: 'eu', replicas: 3, tags: ['a', 'b'] },
    outputs: (id) => (Object.hasOwn(outputs, id) ? { found: true, output: outputs[id] } : { found: false }),
    secrets: (name) => ({ DB_PASSWORD: 's3cret', 'api.key': 'k' })[name],
    ...extra,
  };
}

const fetchOutput = { status: 200, body: { items: [{ id: 'x1' }, { id: 'x2' }], next: null, ok: true } };
const scope = scopeWith({ fetch: fetchOutput, 'build.linux': { artifact: 'app.tar' }, empty: null });

function resolveOne(text: string, roots: ReadonlySet<RefRoot> = ALL, s: ReferenceScope = scope): unknown {
  const outcome = resolveReferences(text, s, roots);
  if (!outcome.ok) throw new Error(JSON.stringify(outcome.problems));
  return outcome.value;
}

function problemsOf(value: unknown, roots: ReadonlySet<RefRoot> = ALL, s: ReferenceScope = scope): string[] {
  const outcome = resolveReferences(value, s, roots);
  if (outcome.ok) throw new Error(`expected problems, resolved to ${JSON.stringify(outcome.value)}`);
  return outcome.problems.map((p) => p.message);
}

describe('findReferences', () => {
  it('given a task reference with a dotted path, when found, then it names the task and the path after .output', () => {
    const { references, problems } = findReferences('id=${tasks.fetch.output.body.items.0.id}!');
    expect(problems).toEqual([]);
    expect(references).toEqual([
      { text: '${tasks.fetch.output.body.items.0.id}', root: 'tasks', taskId: 'fetch', path: ['body', 'items', 0, 'id'], start: 3, end: 40 },
    ]);
  });

  it('given an index written .0 or [0], when found, then both give the same numeric segment', () => {
    const dotted = findReferences('${tasks.a.output.items.0.id}').references[0]!;
    const bracketed = findReferences('${tasks.a.output.items[0].id}').references[0]!;
    expect(dotted.path).toEqual(['items', 0, 'id']);
    expect(bracketed.path).toEqual(['items', 0, 'id']);
  });

  it('given quoted bracket ids and keys, when found, then dots and dashes inside quotes belong to the id or key', () => {
    expect(findReferences('${tasks["build.linux"].output}').references[0]).toMatchObject({ taskId: 'build.linux', path: [] });
    expect(findReferences("${tasks['build.linux'].output.x}").references[0]).toMatchObject({ taskId: 'build.linux', path: ['x'] });
    expect(findReferences('${tasks.a.output["content-type"]}').references[0]!.path).toEqual(['content-type']);
    expect(findReferences('${tasks.a.output.headers["x.y z"]}').references[0]!.path).toEqual(['headers', 'x.y z']);
  });

  it('given a bare id with digits, dashes and underscores, when found, then it is the whole id', () => {
    expect(findReferences('${tasks.check-1_b.output}').references[0]).toMatchObject({ taskId: 'check-1_b', path: [] });
  });

  it('given a quoted key holding "}" and an escaped quote, when found, then the reference ends at the brace after the key', () => {
    const text = 'a ${tasks.a.output["x}y\\"z"]} b';
    const { references, problems } = findReferences(text);
    expect(problems).toEqual([]);
    expect(references[0]!.path).toEqual(['x}y"z']);
    expect(text.slice(references[0]!.start, references[0]!.end)).toBe(references[0]!.text);
    expect(text.slice(references[0]!.end)).toBe(' b');
  });

  it('given the other roots, when found, then each reads as documented', () => {
    const { references, problems } = findReferences('${flow.id} ${task.id} ${task.attempt} ${params.deploy.regions[1]} ${secrets.DB_PASSWORD} ${secrets.api.key-2}');
    expect(problems).toEqual([]);
    expect(references.map((r) => [r.root, r.path])).toEqual([
      ['flow', ['id']],
      ['task', ['id']],
      ['task', ['attempt']],
      ['params', ['deploy', 'regions', 1]],
      ['secrets', ['DB_PASSWORD']],
      ['secrets', ['api.key-2']],
    ]);
  });

  it('given shell variables and unknown roots, when scanned, then they are plain text: no reference, no problem', () => {
    expect(findReferences('echo ${HOME} ${foo.bar} ${PATH:-/bin} $tasks ${taskset.x}')).toEqual({ references: [], problems: [] });
  });

  it('given an unterminated reference, when scanned, then it is a problem that names it and says to add "}"', () => {
    const { references, problems } = findReferences('echo ${tasks.a.output.x and more');
    expect(references).toEqual([]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('${tasks.a.output.x');
    expect(problems[0]).toContain('add "}"');
  });

  it('given a task reference without .output, when scanned, then the problem says what to write instead', () => {
    expect(findReferences('${tasks.a.status}').problems[0]).toBe(
      '${tasks.a.status}: a task reference must read tasks.<id>.output…; write ${tasks.a.output.status} to read the output of "a"',
    );
    expect(findReferences('${tasks.a}').problems[0]).toContain('write ${tasks.a.output}');
    expect(findReferences('${tasks["b.c"].outputs.x}').problems[0]).toContain('write ${tasks["b.c"].output.x}');
  });

  it('given malformed references for each root, when scanned, then each is a problem naming it', () => {
    for (const text of ['${flow.name}', '${task.status}', '${secrets.A[0]}', '${secrets.A B}', '${params.x[y]}', '${params.x.}', '${tasks[0].output}', '${tasks.a.output["x]}']) {
      const { references, problems } = findReferences(text);
      expect(references, text).toEqual([]);
      expect(problems, text).toHaveLength(1);
      expect(problems[0], text).toContain(text.slice(0, 10));
    }
  });

  it('given a reference with a space after "${", when scanned, then it is a problem rather than silent text', () => {
    expect(findReferences('${ tasks.a.output }').problems[0]).toContain('no spaces');
  });

  it('given more than 100 references in one string, when scanned, then the string is a problem', () => {
    const text = Array.from({ length: 101 }, () => '${flow.id}').join(' ');
    const { references, problems } = findReferences(text);
    expect(references).toHaveLength(100);
    expect(problems).toEqual([expect.stringContaining('more than 100 references')]);
  });

  it('given a path of more than 32 segments, when scanned, then it is a problem', () => {
    const ok = `\${params${'.a'.repeat(32)}}`;
    const tooLong = `\${params${'.a'.repeat(33)}}`;
    expect(findReferences(ok).problems).toEqual([]);
    expect(findReferences(tooLong).problems[0]).toContain('more than 32');
  });
});

describe('collectReferences', () => {
  it('given a nested value, when collected, then each reference comes with the JSON path of its string and keys are not read', () => {
    const value = { url: 'https://x/${params.region}', list: [1, { '${tasks.a.output}': '${tasks.b.output.n}' }], n: 3, nothing: null };
    const { found, problems } = collectReferences(value);
    expect(problems).toEqual([]);
    expect(found.map((f) => [f.at, f.reference.text])).toEqual([
      [['url'], '${params.region}'],
      [['list', 1, '${tasks.a.output}'], '${tasks.b.output.n}'],
    ]);
  });

  it('given malformed references, when collected, then problems carry their paths', () => {
    const { problems } = collectReferences({ a: ['ok', '${tasks.x.y}'] });
    expect(problems).toEqual([{ at: ['a', 1], message: expect.stringContaining('${tasks.x.y}') }]);
  });
});

describe('resolveReferences', () => {
  it('given a string that is exactly one reference, when resolved, then it becomes the value with its JSON type', () => {
    expect(resolveOne('${tasks.fetch.output.body}')).toEqual(fetchOutput.body);
    expect(resolveOne('${tasks.fetch.output.status}')).toBe(200);
    expect(resolveOne('${tasks.fetch.output.body.items}')).toEqual(fetchOutput.body.items);
    expect(resolveOne('${tasks.fetch.output.body.next}')).toBeNull();
    expect(resolveOne('${tasks.fetch.output.body.ok}')).toBe(true);
    expect(resolveOne('${tasks.empty.output}')).toBeNull();
    expect(resolveOne('${task.attempt}')).toBe(2);
    expect(resolveOne('${params.tags}')).toEqual(['a', 'b']);
  });

  it('given references inside other text, when resolved, then strings go in raw and everything else as compact JSON', () => {
    expect(resolveOne('s=${tasks.fetch.output.body.items.1.id} n=${tasks.fetch.output.status} o=${tasks.fetch.output.body.items[0]} z=${tasks.fetch.output.body.next} b=${tasks.fetch.output.body.ok}')).toBe(
      's=x2 n=200 o={"id":"x1"} z=null b=true',
    );
    expect(resolveOne('${flow.id}/${task.id}#${task.attempt} ${params.region}')).toBe('flow-1/deploy#2 eu');
  });

  it('given a bracket id with dots, when resolved, then it reads that task', () => {
    expect(resolveOne('${tasks["build.linux"].output.artifact}')).toBe('app.tar');
  });

  it('given a misspelled field, when resolved, then the error names the reference and the fields that exist', () => {
    expect(problemsOf('${tasks.fetch.output.stauts}')).toEqual(['${tasks.fetch.output.stauts}: output of "fetch" has no field "stauts" (fields: status, body)']);
    expect(problemsOf('${tasks.fetch.output.body.items[0].name}')).toEqual([
      '${tasks.fetch.output.body.items[0].name}: output of "fetch" at body.items[0] has no field "name" (fields: id)',
    ]);
  });

  it('given an index out of range, when resolved, then the error says how many items there are', () => {
    expect(problemsOf('${tasks.fetch.output.body.items[5].id}')).toEqual([
      '${tasks.fetch.output.body.items[5].id}: output of "fetch" at body.items has 2 items (indexes 0 to 1); index 5 is out of range',
    ]);
  });

  it('given a path through a string or into a list by name, when resolved, then the error says what is there', () => {
    expect(problemsOf('${tasks.fetch.output.status.code}')[0]).toContain('at status is a number, so it has no field "code"');
    expect(problemsOf('${tasks.fetch.output.body.items.first}')[0]).toContain('is a list of 2 items, not an object');
  });

  it('given a task that is not in scope, an unknown param or an unknown secret, when resolved, then each is an error, never empty text', () => {
    expect(problemsOf('x ${tasks.nope.output} y')[0]).toContain('no output of task "nope" is available here');
    expect(problemsOf('${params.zone}')).toEqual(['${params.zone}: params has no field "zone" (fields: region, replicas, tags)']);
    expect(problemsOf('${secrets.MISSING}')[0]).toContain('no secret named "MISSING"');
  });

  it('given roots without secrets and task, when resolved, then those references stay verbatim', () => {
    const value = { cmd: 'login ${secrets.DB_PASSWORD} try ${task.attempt} in ${params.region}', token: '${secrets.DB_PASSWORD}' };
    const outcome = resolveReferences(value, scope, PLANNER);
    expect(outcome).toEqual({ ok: true, value: { cmd: 'login ${secrets.DB_PASSWORD} try ${task.attempt} in eu', token: '${secrets.DB_PASSWORD}' }, resolved: 1 });
  });

  it('given a malformed reference whose root is not resolved now, when resolved, then it is left alone; with its root, it is an error', () => {
    expect(resolveReferences('${secrets.A B}', scope, PLANNER)).toEqual({ ok: true, value: '${secrets.A B}', resolved: 0 });
    expect(problemsOf('${secrets.A B}')[0]).toContain('secrets.<NAME>');
  });

  it('given shell variables, when resolved, then they are untouched', () => {
    expect(resolveOne('echo ${HOME} ${foo.bar} ${params.region}')).toBe('echo ${HOME} ${foo.bar} eu');
  });

  it('given a value, when resolved, then unchanged parts are shared, changed ones copied, and the input is not modified', () => {
    const untouched = { deep: [1, 2, 3] };
    const input = { a: untouched, b: ['${params.replicas}', 'plain'] };
    const outcome = resolveReferences(input, scope, ALL);
    expect(outcome.ok && outcome.value).toEqual({ a: { deep: [1, 2, 3] }, b: [3, 'plain'] });
    expect(outcome.ok && (outcome.value as typeof input).a).toBe(untouched);
    expect(input.b[0]).toBe('${params.replicas}');
  });

  it('given a "__proto__" key in a value, when resolved, then it stays an own field and no prototype changes', () => {
    const input = JSON.parse('{"__proto__": {"polluted": true}, "x": "${params.region}"}') as Record<string, unknown>;
    const outcome = resolveReferences(input, scope, ALL);
    const value = (outcome.ok ? outcome.value : undefined) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.hasOwn(value, '__proto__')).toBe(true);
    expect(value.x).toBe('eu');
  });

  it('given an output that itself holds reference text, when resolved, then that text is not expanded again', () => {
    const s = scopeWith({ evil: { text: '${secrets.DB_PASSWORD}' } });
    expect(resolveOne('${tasks.evil.output.text}', ALL, s)).toBe('${secrets.DB_PASSWORD}');
    expect(resolveOne('say ${tasks.evil.output.text}', ALL, s)).toBe('say ${secrets.DB_PASSWORD}');
  });

  it('given many references to a large output in one string, when resolved, then it renders each once and in linear time', () => {
    const big = { rows: Array.from({ length: 20_000 }, (_, i) => ({ i, name: `row-${i}` })) };
    let lookups = 0;
    const s: ReferenceScope = { outputs: () => (lookups++, { found: true, output: big }) };
    const text = Array.from({ length: 100 }, () => '${tasks.big.output}').join(',');
    const started = performance.now();
    const value = resolveOne(text, ALL, s) as string;
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(value.length).toBe(100 * JSON.stringify(big).length + 99);
    expect(lookups).toBe(1);
  });

  it('given several failures, when resolved, then each carries the JSON path of its string', () => {
    const outcome = resolveReferences({ a: ['${params.nope}'], b: '${tasks.fetch.output.x}' }, scope, ALL);
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.problems.map((p) => [p.at, p.reference])).toEqual([[['a', 0], '${params.nope}'], [['b'], '${tasks.fetch.output.x}']]);
  });
});

describe('injectShellReferences', () => {
  const hostile = scopeWith({ h: { semi: '; rm -rf ~', sub: '$(id)', tick: '`whoami`', and: 'a && b', obj: { k: "it's" } } });

  it('given hostile values, when injected, then the command holds only ${TS_REF_n} and the values travel in env', () => {
    const command = 'echo ${tasks.h.output.semi} ${tasks.h.output.sub} "${tasks.h.output.tick}" ${tasks.h.output.and} ${tasks.h.output.obj}';
    const result = injectShellReferences(command, hostile, PLANNER);
    expect(result).toEqual({
      ok: true,
      command: 'echo ${TS_REF_1} ${TS_REF_2} "${TS_REF_3}" ${TS_REF_4} ${TS_REF_5}',
      env: { TS_REF_1: '; rm -rf ~', TS_REF_2: '$(id)', TS_REF_3: '`whoami`', TS_REF_4: 'a && b', TS_REF_5: '{"k":"it\'s"}' },
    });
    if (result.ok) for (const bad of [';', 'rm', '$(', '`', '&&']) expect(result.command).not.toContain(bad);
  });

  it('given the same reference twice, when injected, then both use the same variable', () => {
    expect(injectShellReferences('a ${params.region} b ${params.region} c ${flow.id}', scope, PLANNER)).toEqual({
      ok: true,
      command: 'a ${TS_REF_1} b ${TS_REF_1} c ${TS_REF_2}',
      env: { TS_REF_1: 'eu', TS_REF_2: 'flow-1' },
    });
  });

  it('given secrets, when injected, then they use TS_SECRET_ and numbering continues from startAt', () => {
    expect(injectShellReferences('curl -u ${secrets.DB_PASSWORD} -H try:${task.attempt} ${params.region}', scope, new Set<RefRoot>(['secrets', 'task']), 3)).toEqual({
      ok: true,
      command: 'curl -u ${TS_SECRET_3} -H try:${TS_REF_4} ${params.region}',
      env: { TS_SECRET_3: 's3cret', TS_REF_4: '2' },
    });
    expect(RESERVED_ENV_PREFIXES).toEqual(['TS_REF_', 'TS_SECRET_', 'TS_ITEM_']);
  });

  it('given shell variables and other roots, when injected, then they stay as written', () => {
    expect(injectShellReferences('echo ${HOME} $PATH ${secrets.DB_PASSWORD}', scope, PLANNER)).toEqual({ ok: true, command: 'echo ${HOME} $PATH ${secrets.DB_PASSWORD}', env: {} });
  });

  it('given an unresolvable or malformed reference, when injected, then it is a problem', () => {
    const missing = injectShellReferences('echo ${params.nope}', scope, PLANNER);
    expect(missing.ok === false && missing.problems[0]!.message).toContain('params has no field "nope"');
    const broken = injectShellReferences('echo ${params.x', scope, PLANNER);
    expect(broken.ok === false && broken.problems[0]!.message).toContain('not closed');
  });

  it('given a value holding a NUL character, when injected, then it is a problem, as no environment variable can carry it', () => {
    const result = injectShellReferences('echo ${params.x}', { params: { x: 'a\u0000b' } }, PLANNER);
    expect(result.ok === false && result.problems[0]!.message).toContain('NUL');
  });
});

const bindings: ExpressionBindings = {
  tasks: {
    check: { output: { exit_code: 0, ratio: 2.5, two: 2, status: 'ok', stdout: 'Build succeeded', items: [1, 2, 3], meta: { a: 1, b: 2 } } },
    'check-1': { output: { status: 'ok' } },
    none: { output: null },
  },
  params: { env: 'prod', limit: 10 },
  flow: { id: 'flow-42' },
};

function condition(source: string, b: ExpressionBindings = bindings): boolean {
  const result = evaluateCondition(source, b);
  if (!result.ok) throw new Error(result.message);
  return result.value;
}

function transform(source: string, b: ExpressionBindings = bindings): unknown {
  const result = evaluateExpression(source, b);
  if (!result.ok) throw new Error(result.message);
  return result.value;
}

describe('CEL conditions', () => {
  it('given Tasked-style conditions, when evaluated, then field access, brackets, comparisons and logic work unchanged', () => {
    expect(condition('tasks.check.output.exit_code == 0')).toBe(true);
    expect(condition('tasks["check-1"].output.status == "ok"')).toBe(true);
    expect(condition('tasks.check.output.exit_code != 0 || params.env == "prod"')).toBe(true);
    expect(condition('tasks.check.output.exit_code == 0 && !(params.limit < 5)')).toBe(true);
    expect(condition('tasks.check.output.status == "failed"')).toBe(false);
    expect(condition('params.limit >= 10 && flow.id == "flow-42"')).toBe(true);
  });

  it('given Rhai string and length methods, when evaluated, then contains, starts_with, ends_with and len work beside the CEL names', () => {
    expect(condition('tasks.check.output.stdout.contains("succeeded")')).toBe(true);
    expect(condition('tasks.check.output.stdout.starts_with("Build")')).toBe(true);
    expect(condition('tasks.check.output.stdout.ends_with("ed")')).toBe(true);
    expect(condition('tasks.check.output.stdout.len() == 15')).toBe(true);
    expect(condition('tasks.check.output.items.len() == 3 && tasks.check.output.meta.len() == 2')).toBe(true);
    expect(condition('tasks.check.output.stdout.startsWith("Build") && tasks.check.output.stdout.endsWith("ed") && size(tasks.check.output.items) == 3')).toBe(true);
    expect(condition('"héllo😀".len() == 6')).toBe(true);
  });

  it('given JSON numbers, when compared, then whole ones equal int literals and all compare with doubles', () => {
    expect(condition('tasks.check.output.exit_code == 0')).toBe(true);
    expect(condition('tasks.check.output.ratio > 1.5')).toBe(true);
    expect(condition('tasks.check.output.two == 2.0')).toBe(true);
    expect(condition('tasks.check.output.two == 2')).toBe(true);
    expect(condition('tasks.check.output.ratio < 3')).toBe(true);
    expect(condition('tasks.check.output.exit_code < 0.5')).toBe(true);
  });

  it('given a condition that is not true or false, when evaluated, then it is an error naming the type', () => {
    expect(evaluateCondition('tasks.check.output.exit_code', bindings)).toEqual({ ok: false, message: 'condition must evaluate to true or false, got int' });
    expect(evaluateCondition('tasks.check.output.status', bindings)).toEqual({ ok: false, message: 'condition must evaluate to true or false, got string' });
    expect(checkExpression('1 + 2', 'condition')).toMatchObject({ ok: false, message: 'condition must evaluate to true or false, got int' });
  });

  it('given a syntax error, when checked, then the problem carries its line and column', () => {
    expect(checkExpression('tasks.a.output.x == ', 'condition')).toMatchObject({ ok: false, line: 1, column: 21 });
    const multi = checkExpression('tasks.a.output.x == 1 &&\n  tasks.b.output.y ==', 'condition');
    expect(multi).toMatchObject({ ok: false, line: 2, column: 22 });
    expect(evaluateCondition('tasks.a.output.x == ', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('(column 21)') });
  });

  it('given an unknown name, when checked, then the problem says what a condition can read', () => {
    const result = checkExpression('input.x == 1', 'condition');
    expect(result).toMatchObject({ ok: false, column: 1, message: expect.stringContaining('a condition can read tasks, params and flow') });
    expect(checkExpression('input.x == 1', 'transform').ok).toBe(true);
  });

  it('given runtime errors, when evaluated, then each is a clear message and nothing throws', () => {
    expect(evaluateCondition('tasks.check.output.nope == 1', bindings)).toEqual({ ok: false, message: 'tasks.check.output has no field "nope" (column 20)' });
    expect(evaluateCondition('tasks.missing.output.x == 1', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('no output of task "missing" is available') });
    expect(evaluateCondition('tasks["gone"].output.x == 1', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('no output of task "gone"') });
    expect(evaluateCondition('params.limit / 0 == 1', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('division by zero') });
    expect(evaluateCondition('tasks.check.output.items[7] == 1', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('index out of bounds') });
    expect(evaluateCondition('tasks.check.output.status + 1 == 2', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('no such overload') });
    expect(evaluateCondition('tasks.check.output.constructor == 1', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('no field "constructor"') });
  });

  it('given a short-circuit, when the other side is decided, then its error does not matter', () => {
    expect(condition('params.env == "prod" || tasks.check.output.nope == 1')).toBe(true);
    expect(condition('has(tasks.check.output.nope)')).toBe(false);
  });
});

describe('CEL checks', () => {
  it('given reads of tasks, when checked, then taskRefs lists each id once, from dots, brackets, has() and macros', () => {
    expect(checkExpression('tasks.a.output.x == 1 && tasks["b.c"].output.ok && has(tasks.d.output.y) && params.l.exists(v, v == tasks.e.output.z) && tasks.a.output.y', 'condition')).toEqual({
      ok: true,
      taskRefs: ['a', 'b.c', 'd', 'e'],
    });
    expect(checkExpression('params.x == 1', 'condition')).toEqual({ ok: true, taskRefs: [] });
  });

  it('given a computed task id or the whole tasks map, when checked, then it is refused so taskRefs stays complete', () => {
    expect(checkExpression('tasks[params.id].output == 1', 'condition')).toMatchObject({ ok: false, message: expect.stringContaining('tasks.<id>') });
    expect(checkExpression('size(tasks) > 0', 'condition')).toMatchObject({ ok: false, column: 6 });
    expect(checkExpression('"a" in tasks', 'condition').ok).toBe(false);
  });

  it('given a task read without .output, when checked, then it says how to read a task', () => {
    expect(checkExpression('tasks.a.status == "ok"', 'condition')).toMatchObject({ ok: false, column: 1, message: expect.stringContaining('tasks.<id>.output') });
    expect(checkExpression('tasks["a"]["exit"] == 0', 'condition').ok).toBe(false);
    expect(checkExpression('tasks["a"]["output"].exit == 0 && has(tasks.b)', 'condition')).toEqual({ ok: true, taskRefs: ['a', 'b'] });
  });

  it('given matches(), when checked, then it is refused', () => {
    expect(checkExpression('params.s.matches("(a+)+$")', 'condition')).toMatchObject({ ok: false, message: expect.stringContaining('matches() is not available') });
    expect(checkExpression('matches(params.s, "a")', 'condition').ok).toBe(false);
  });

  it('given a macro variable named like a root, when checked, then it is refused', () => {
    expect(checkExpression('params.l.exists(tasks, tasks.x == 1)', 'condition')).toMatchObject({ ok: false, message: expect.stringContaining('must not name its variable tasks') });
    expect(checkExpression('cel.bind(params, 1, params == 1)', 'condition').ok).toBe(false);
  });

  it('given list macros nested three deep, when checked, then they are refused; two deep is fine', () => {
    expect(checkExpression('params.a.all(x, params.b.exists(y, x == y))', 'condition').ok).toBe(true);
    expect(checkExpression('params.a.all(x, params.b.exists(y, params.c.exists(z, x == z)))', 'condition')).toMatchObject({ ok: false, message: expect.stringContaining('at most 2') });
  });

  it('given sources beyond the bounds, when checked, then they are refused with a reason', () => {
    expect(checkExpression('1 == 1 '.repeat(1000), 'condition')).toMatchObject({ ok: false, message: expect.stringContaining(`more than ${MAX_EXPRESSION_LENGTH}`) });
    expect(checkExpression(`${'('.repeat(70)}true${')'.repeat(70)}`, 'condition')).toMatchObject({ ok: false, message: expect.stringContaining('deeper than the limit of 64') });
    expect(checkExpression(`${Array.from({ length: 1001 }, () => '1').join('+')} > 0`, 'condition')).toMatchObject({ ok: false, message: expect.stringContaining('more parts (names, operators, literals) than the limit of 1000') });
    expect(checkExpression('   ', 'condition')).toMatchObject({ ok: false, message: 'the expression is empty' });
  });

  it('given the same source twice, when checked, then the answers are equal and independent', () => {
    const first = checkExpression('tasks.a.output == 1', 'condition');
    if (first.ok) first.taskRefs.push('mutated');
    expect(checkExpression('tasks.a.output == 1', 'condition')).toEqual({ ok: true, taskRefs: ['a'] });
  });
});

describe('CEL transforms', () => {
  it('given integer results, when evaluated, then BigInts come back as numbers, also inside lists and maps', () => {
    expect(transform('1 + 2')).toBe(3);
    expect(transform('tasks.check.output.items.map(x, x * 10)')).toEqual([10, 20, 30]);
    expect(transform('{"n": params.limit + 1, "ok": tasks.check.output.exit_code == 0, "r": tasks.check.output.ratio * 2.0, "l": [1, "a", null]}')).toEqual({
      n: 11,
      ok: true,
      r: 5,
      l: [1, 'a', null],
    });
    expect(typeof transform('params.limit')).toBe('number');
  });

  it('given an integer beyond 2^53, when returned, then it is an error that says how to convert it', () => {
    const result = evaluateExpression('9007199254740992 * 2', bindings);
    expect(result).toMatchObject({ ok: false, message: expect.stringContaining('double(...) or string(...)') });
    expect(transform('double(9007199254740992 * 2)')).toBe(18014398509481984);
    expect(transform('string(9007199254740993)')).toBe('9007199254740993');
  });

  it('given the input, when evaluated, then a transform reads it; without one it says so', () => {
    expect(transform('input.name + "!"', { ...bindings, input: { name: 'x' } })).toBe('x!');
    expect(evaluateExpression('input.name', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('no input') });
  });

  it('given values without a plain JSON form, when returned, then they convert as CEL\'s JSON mapping does', () => {
    expect(transform('b"hi!"')).toBe('aGkh');
    expect(transform('timestamp("2024-01-02T03:04:05Z")')).toBe('2024-01-02T03:04:05.000Z');
    expect(transform('duration("90s")')).toBe('90s');
    expect(transform('{1: "a", true: "b"}')).toEqual({ 1: 'a', true: 'b' });
    expect(transform('3u')).toBe(3);
    expect(evaluateExpression('type(1)', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('no JSON form') });
  });

  it('given a "__proto__" key in an output, when read and returned, then it is plain data', () => {
    const b: ExpressionBindings = { ...bindings, tasks: { p: { output: JSON.parse('{"__proto__": {"x": 1}, "y": 2}') } } };
    expect(transform('tasks.p.output["__proto__"].x', b)).toBe(1);
    const whole = transform('tasks.p.output', b) as Record<string, unknown>;
    expect(Object.getPrototypeOf(whole)).toBe(Object.prototype);
    expect(Object.hasOwn(whole, '__proto__')).toBe(true);
  });

  it('given data JSON cannot hold, when evaluated, then it is an error, not a throw', () => {
    expect(evaluateExpression('params.x', { ...bindings, params: { x: Number.NaN } })).toMatchObject({ ok: false, message: expect.stringContaining('NaN') });
    expect(evaluateExpression('1.0 / 0.0', bindings)).toMatchObject({ ok: false, message: expect.stringContaining('Infinity') });
  });
});
