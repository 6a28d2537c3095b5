import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decide,
  evolve,
  resolveForAttempt,
  fold,
  sparedByFailFast,
  STOP_EVENTS,
  STOPS,
  stopReason,
  strongerStop,
  TERMINAL_FLOW_EVENTS,
  TRIGGER_RULES,
  triggerVerdict,
  type EventDraft,
  type FlowDefinition,
  type FlowEvent,
  type FlowState,
  type Stop,
  type TaskStatus,
  type TriggerRule,
} from '../src/index.js';
import { ev, FLOW, fromDraft, runDecider, stamp, given, validFlow as flow } from './fixtures.js';



const succeededWith = (task: string, output: unknown) =>
  stamp({ type: 'task.succeeded', flow_id: FLOW, task_id: task, attempt: 1, data: { output, duration_ms: 1 } });
const readySpec = (drafts: EventDraft[], task: string) => {
  const draft = drafts.find((d) => d.type === 'task.ready' && d.task_id === task);
  if (draft?.type !== 'task.ready') throw new Error(`no task.ready for ${task}`);
  return draft.data.spec;
};

describe('conditions', () => {
  const def = flow({
    tasks: [
      { id: 'fetch', executor: 'noop' },
      { id: 'notify', executor: 'noop', depends_on: ['fetch'], condition: 'tasks.fetch.output.status == "ok"' },
      { id: 'after', executor: 'noop', depends_on: ['notify'] },
    ],
  });

  it('runs the task when its condition holds', () => {
    given([ev.submitted(def), ev.started()]).when(succeededWith('fetch', { status: 'ok' })).then(['task.ready:notify']);
  });

  it('skips the task when its condition is false, with Tasked\'s output, and its dependents still run', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(succeededWith('fetch', { status: 'down' })).then(['task.skipped:notify', 'task.ready:after']);
    expect(drafts[0]!.data).toEqual({ reason: 'condition is false', condition: 'tasks.fetch.output.status == "ok"' });
    const state = fold([ev.submitted(def), ev.started(), succeededWith('fetch', { status: 'down' }), fromDraft(drafts[0]!)])!;
    expect(state.tasks.notify).toMatchObject({ status: 'skipped', output: { skipped: true, condition: 'tasks.fetch.output.status == "ok"' } });
  });

  it('fails the task, without retry, when its condition errors at run time, and its dependents are upstream_failed', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(succeededWith('fetch', 'plain text')).then(['task.failed:notify', 'task.upstream_failed:after', 'flow.failed']);
    expect(drafts[0]!.data).toMatchObject({ error: { code: 'CONDITION_ERROR', retryable: false, message: expect.stringMatching(/^condition evaluation failed: /) } });
  });
});

describe('a task after one skipped in the same decision', () => {
  it('reads the skipped task\'s output in its condition and references, so deciding again after the skip is folded gives the same', () => {
    const def = flow({
      tasks: [
        { id: 'a', executor: 'noop' },
        { id: 'b', executor: 'noop', depends_on: ['a'], condition: 'false' },
        { id: 'c', executor: 'noop', depends_on: ['b'], condition: 'tasks.b.output.skipped', input: { was: '${tasks.b.output.condition}' } },
      ],
    });
    const history = [ev.submitted(def), ev.started()];
    const { drafts } = given(history).when(ev.succeeded('a')).then(['task.skipped:b', 'task.ready:c']);
    expect(readySpec(drafts, 'c').input).toEqual({ was: 'false' });
    // Folding the skip decides c again: the same decision, so its key is already taken.
    const again = given([...history, ev.succeeded('a')]).when(fromDraft(drafts[0]!)).then(['task.ready:c']).drafts;
    expect(again[0]).toEqual(drafts[1]);
  });
});

describe('references', () => {
  const def = flow({
    params: { region: 'eu', retries: 2 },
    tasks: [
      { id: 'fetch', executor: 'noop' },
      {
        id: 'post',
        executor: 'http',
        depends_on: ['fetch'],
        config: { url: 'http://127.0.0.1:9/items/${tasks.fetch.output.items[0].id}', method: 'POST', body: '${tasks.fetch.output}' },
        input: { region: '${params.region}', flow: '${flow.id}', count: '${tasks.fetch.output.count}' },
      },
      { id: 'say', executor: 'shell', depends_on: ['post'], config: { command: 'echo "pre-${tasks.fetch.output.items[0].id}" ${secrets.TOKEN}' } },
    ],
  });
  const output = { items: [{ id: 'a; rm -rf ~' }], count: 3 };

  it('resolves references into task.ready: whole strings keep their type, text is rendered, params and flow id', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(succeededWith('fetch', output)).then(['task.ready:post']);
    const spec = readySpec(drafts, 'post');
    expect(spec.config).toMatchObject({ url: 'http://127.0.0.1:9/items/a; rm -rf ~', body: output });
    expect(spec.input).toEqual({ region: 'eu', flow: FLOW, count: 3 });
  });

  it('leaves a string naming a secret whole for the executor, with the outputs it names bound', () => {
    const history = [ev.submitted(def), ev.started(), succeededWith('fetch', output)];
    const { drafts } = given(history).when(succeededWith('post', { status: 200 })).then(['task.ready:say']);
    const spec = readySpec(drafts, 'say');
    expect(spec.config.command).toBe('echo "pre-${tasks.fetch.output.items[0].id}" ${secrets.TOKEN}');
    expect(spec.run_time_strings).toEqual([['config', 'command']]);
    expect(spec.bindings).toEqual({ tasks: { fetch: { output } }, params: { region: 'eu', retries: 2 }, flow: { id: FLOW } });
    const attempt = resolveForAttempt(spec, 'say', 1, (name) => (name === 'TOKEN' ? 's3cret' : undefined));
    expect(attempt.ok && attempt.spec.config).toEqual({ command: 'echo "pre-${TS_REF_1}" ${TS_SECRET_2}', env: { TS_REF_1: 'a; rm -rf ~', TS_SECRET_2: 's3cret' } });
  });

  it('resolves run-time references in env beside a command that has its own', () => {
    const both = flow({ tasks: [{ id: 'a', executor: 'shell', config: { command: 'use ${secrets.A}', env: { PASS: '${secrets.B}', N: 'attempt ${task.attempt}' } } }] });
    const { drafts } = given([]).when(ev.submitted(both)).then(['flow.started', 'task.ready:a']);
    const attempt = resolveForAttempt(readySpec(drafts, 'a'), 'a', 2, (name) => `value-${name}`);
    expect(attempt.ok && attempt.spec.config).toEqual({ command: 'use ${TS_SECRET_1}', env: { PASS: 'value-B', N: 'attempt 2', TS_SECRET_1: 'value-A' } });
  });

  it('passes references in a shell command through environment variables, never as shell text', () => {
    const shell = flow({ tasks: [{ id: 'a', executor: 'noop' }, { id: 'b', executor: 'shell', depends_on: ['a'], config: { command: 'echo "pre-${tasks.a.output}" && echo ${tasks.a.output}' } }] });
    for (const hostile of ['; rm -rf ~', '$(id)', '`id`', 'x && reboot']) {
      const { drafts } = given([ev.submitted(shell), ev.started()]).when(succeededWith('a', hostile)).then(['task.ready:b']);
      const config = readySpec(drafts, 'b').config as { command: string; env: Record<string, string> };
      expect(config).toEqual({ command: 'echo "pre-${TS_REF_1}" && echo ${TS_REF_1}', env: { TS_REF_1: hostile } });
    }
  });

  it('never reads an output\'s text as references: a value naming a secret stays that text', () => {
    const sneaky = flow({
      params: { p: 'param' },
      tasks: [
        { id: 'a', executor: 'noop' },
        { id: 'b', executor: 'shell', depends_on: ['a'], config: { command: 'echo ${tasks.a.output.text} ${secrets.T}', env: { X: '${tasks.a.output.text}' } } },
      ],
    });
    const text = '${secrets.T} ${params.p}';
    const { drafts } = given([ev.submitted(sneaky), ev.started()]).when(succeededWith('a', { text })).then(['task.ready:b']);
    const attempt = resolveForAttempt(readySpec(drafts, 'b'), 'b', 1, () => 'the-secret');
    expect(attempt.ok && attempt.spec.config).toEqual({ command: 'echo ${TS_REF_1} ${TS_SECRET_2}', env: { X: text, TS_REF_1: text, TS_SECRET_2: 'the-secret' } });
  });

  it('fails the task naming the reference when the path is not in the output', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(succeededWith('fetch', { items: [] })).then(['task.failed:post', 'task.upstream_failed:say', 'flow.failed']);
    expect(drafts[0]!.data).toMatchObject({ error: { code: 'REFERENCE_ERROR', retryable: false } });
    expect((drafts[0]!.data as { error: { message: string } }).error.message).toContain('tasks.fetch.output.items[0].id');
  });

  it('gives the same task.ready for the same outputs: resolution depends on the ancestors\' outputs only', () => {
    const once = given([ev.submitted(def), ev.started()]).when(succeededWith('fetch', output)).then(['task.ready:post']).drafts;
    const again = given([ev.submitted(def), ev.started()]).when(succeededWith('fetch', structuredClone(output))).then(['task.ready:post']).drafts;
    expect(again).toEqual(once);
  });
});

describe('trigger rules', () => {
  const def = flow({
    tasks: [
      { id: 'build', executor: 'noop', retries: 0 },
      { id: 'deploy', executor: 'noop', depends_on: ['build'] },
      { id: 'cleanup', executor: 'noop', depends_on: ['deploy'], trigger_rule: 'always' },
      { id: 'alert', executor: 'noop', depends_on: ['build'], trigger_rule: 'one_failed' },
    ],
  });

  it('runs cleanup (always) and alert (one_failed) after a failure, and the flow still fails', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(ev.failed('build')).then(['task.upstream_failed:deploy', 'task.ready:alert', 'task.ready:cleanup']);
    const history = [ev.submitted(def), ev.started(), ev.failed('build'), ...drafts.map(fromDraft), ev.succeeded('alert')];
    const { drafts: end } = given(history).when(ev.succeeded('cleanup')).then(['flow.failed']);
    expect(end[0]!.data).toMatchObject({ failed_tasks: ['build'], upstream_failed_tasks: ['deploy'] });
  });

  it('skips the alert when nothing failed', () => {
    const history = [ev.submitted(def), ev.started()];
    given(history).when(ev.succeeded('build')).then(['task.ready:deploy', 'task.skipped:alert']);
  });

  it('decides each rule as soon as, and only when, later statuses cannot change it', () => {
    const statuses: TaskStatus[] = ['succeeded', 'skipped', 'failed', 'upstream_failed', 'cancelled', 'timed_out'];
    fc.assert(
      fc.property(fc.constantFrom(...TRIGGER_RULES), fc.array(fc.constantFrom(...statuses, 'pending' as const, 'running' as const), { minLength: 1, maxLength: 5 }), (rule, deps) => {
        const verdict = triggerVerdict(rule, deps);
        const open = deps.map((s, i) => [s, i] as const).filter(([s]) => s === 'pending' || s === 'running');
        // Every way the unfinished dependencies could end.
        const endings = open.reduce<TaskStatus[][]>((acc) => acc.flatMap((prefix) => statuses.map((s) => [...prefix, s])), [[]]);
        const finals = endings.map((ending) => {
          const final = [...deps];
          open.forEach(([, index], k) => (final[index] = ending[k]!));
          return oracle(rule, final);
        });
        // Waiting is right when the endings disagree, or when the task is to run after its dependencies.
        if (verdict === 'wait') expect(new Set(finals).size > 1 || finals.every((f) => f === 'run')).toBe(true);
        else for (const final of finals) expect(final).toBe(verdict);
      }),
    );
  });
});

describe('fail_fast', () => {
  const def = flow({
    fail_fast: true,
    tasks: [
      { id: 'a', executor: 'noop', retries: 0 },
      { id: 'b', executor: 'noop' },
      { id: 'c', executor: 'noop', depends_on: ['b'] },
      { id: 'cleanup', executor: 'noop', depends_on: ['a', 'b'], trigger_rule: 'always' },
    ],
  });

  it('stops the flow on the first failure, sparing always tasks, and fails it', () => {
    const history = [ev.submitted(def), ev.started(), ev.ready('a', def), ev.ready('b', def), ev.taskStarted('b')];
    given(history).when(ev.failed('a')).then(['flow.fail_fast']);
    const failFast = stamp({ type: 'flow.fail_fast', flow_id: FLOW, data: { task_id: 'a', reason: 'fail_fast: task "a" failed' } });
    given([...history, ev.failed('a')]).when(failFast).then(['task.cancelled:c']);
    const cancelledB = stamp({ type: 'task.cancelled', flow_id: FLOW, task_id: 'b', data: { reason: 'fail_fast' } });
    const cancelledC = stamp({ type: 'task.cancelled', flow_id: FLOW, task_id: 'c', data: { reason: 'fail_fast' } });
    given([...history, ev.failed('a'), failFast, cancelledC]).when(cancelledB).then(['task.ready:cleanup']);
    const { drafts } = given([...history, ev.failed('a'), failFast, cancelledC, cancelledB]).when(ev.succeeded('cleanup')).then(['flow.failed']);
    expect(drafts[0]!.data).toMatchObject({ failed_tasks: ['a'], reason: expect.stringMatching(/^fail_fast: task "a" failed; 1 task failed: a$/) });
  });

  it('a cancel during fail_fast also cancels the always tasks, and the flow still fails', () => {
    const history = [ev.submitted(def), ev.started(), ev.taskStarted('b'), ev.failed('a')];
    const failFast = stamp({ type: 'flow.fail_fast', flow_id: FLOW, data: { task_id: 'a', reason: 'fail_fast: task "a" failed' } });
    given([...history, failFast]).when(ev.cancelRequested()).then(['task.cancelled:c', 'task.cancelled:cleanup']);
  });

  it("the flow's timeout passing during fail_fast also cancels the always tasks, and the flow fails by fail_fast, not FLOW_TIMEOUT", () => {
    const history = [ev.submitted(def), ev.started(), ev.taskStarted('b'), ev.failed('a')];
    const failFast = stamp({ type: 'flow.fail_fast', flow_id: FLOW, data: { task_id: 'a', reason: 'fail_fast: task "a" failed' } });
    given([...history, failFast]).when(ev.deadlinePassed()).then(['task.cancelled:c', 'task.cancelled:cleanup']);
    const cancelled = (task: string) => stamp({ type: 'task.cancelled', flow_id: FLOW, task_id: task, data: { reason: 'stopped' } });
    const before = [...history, failFast, ev.deadlinePassed(), cancelled('c'), cancelled('cleanup')];
    const { drafts } = given(before).when(cancelled('b')).then(['flow.failed']);
    expect(drafts[0]!.data).toMatchObject({ failed_tasks: ['a'], reason: expect.stringMatching(/^fail_fast: task "a" failed; /) });
    expect(drafts[0]!.data).not.toHaveProperty('code');
  });

  it('spares an always task exactly when every executor and dispatcher would (KnownStops), whatever stops arrive in whatever order', () => {
    const stopEvent = {
      'flow.cancel_requested': ev.cancelRequested,
      'flow.deadline_passed': ev.deadlinePassed,
      'flow.fail_fast': () => stamp({ type: 'flow.fail_fast', flow_id: FLOW, data: { task_id: 'a', reason: 'fail_fast: task "a" failed' } }),
    } as const;
    fc.assert(
      fc.property(fc.shuffledSubarray([...STOP_EVENTS], { minLength: 1 }), (order) => {
        const state = fold([ev.submitted(def), ev.started(), ...order.map((type) => stopEvent[type]())]) as FlowState;
        const known = order.reduce<Stop | undefined>((strongest, type) => strongerStop(strongest, STOPS[type]), undefined);
        for (const id of state.order) {
          const task = state.tasks[id]!;
          expect(sparedByFailFast(state, task)).toBe(stopReason(known, task.spec) === undefined);
        }
      }),
    );
  });
});

/** What a rule makes of dependencies that have all finished: the table of docs/flows.md, written out. */
function oracle(rule: TriggerRule, deps: TaskStatus[]): 'run' | 'skip' | 'upstream_failed' {
  if (deps.length === 0) return 'run';
  const failed = deps.filter((s) => s === 'failed' || s === 'timed_out' || s === 'upstream_failed' || s === 'cancelled').length;
  const succeeded = deps.filter((s) => s === 'succeeded').length;
  const skipped = deps.filter((s) => s === 'skipped').length;
  switch (rule) {
    case 'none_failed':
      return failed > 0 ? 'upstream_failed' : 'run';
    case 'all_success':
      return failed > 0 ? 'upstream_failed' : skipped > 0 ? 'skip' : 'run';
    case 'all_done':
    case 'always':
      return 'run';
    case 'one_success':
      return succeeded > 0 ? 'run' : failed > 0 ? 'upstream_failed' : 'skip';
    case 'one_failed':
      return failed > 0 ? 'run' : 'skip';
    case 'all_failed':
      return failed === deps.length ? 'run' : 'skip';
    case 'none_skipped':
      return skipped > 0 ? 'skip' : 'run';
  }
}

/** A random DAG with random rules, conditions (over params) and outcomes. */
const languageDag = fc
  .integer({ min: 1, max: 10 })
  .chain((n) =>
    fc.record({
      edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n * 2 }),
      rules: fc.array(fc.constantFrom(...TRIGGER_RULES), { minLength: n, maxLength: n }),
      conditions: fc.array(fc.option(fc.boolean(), { nil: undefined }), { minLength: n, maxLength: n }),
      outcomes: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      choices: fc.array(fc.nat(), { minLength: 32, maxLength: 32 }),
      duplicates: fc.array(fc.nat(), { maxLength: 10 }),
    }),
  )
  .map(({ edges, rules, conditions, outcomes, choices, duplicates }) => {
    const n = rules.length;
    const deps = Array.from({ length: n }, () => new Set<string>());
    for (const [a, b] of edges) if (a !== b) deps[Math.max(a, b)]!.add(`t${Math.min(a, b)}`);
    const params = Object.fromEntries(conditions.map((c, i) => [`c${i}`, c ?? true]));
    const def = flow({
      params,
      tasks: deps.map((ds, i) => ({
        id: `t${i}`,
        executor: 'noop',
        depends_on: [...ds],
        trigger_rule: rules[i],
        ...(conditions[i] !== undefined && { condition: `params.c${i}` }),
      })),
    });
    return { def, outcomes: new Map(def.tasks.map((t, i) => [t.id, outcomes[i]!])), conditions, choices, duplicates };
  });

describe('flow language properties over random DAGs, rules, conditions and outcomes', () => {
  it('ends every task in exactly one terminal status, as the reference oracle computes it, and runs a task only when its rule holds', () => {
    fc.assert(
      fc.property(languageDag, ({ def, outcomes, conditions, choices, duplicates }) => {
        const { log, state } = run(def, outcomes, choices, duplicates);
        expect(log.filter((e) => TERMINAL_FLOW_EVENTS.has(e.type))).toHaveLength(1);
        const expected = new Map<string, TaskStatus>();
        for (const task of def.tasks) {
          const verdict = oracle(task.trigger_rule ?? 'none_failed', task.depends_on.map((d) => expected.get(d)!));
          const index = Number(task.id.slice(1));
          expected.set(
            task.id,
            verdict === 'skip' ? 'skipped' : verdict === 'upstream_failed' ? 'upstream_failed' : conditions[index] === false ? 'skipped' : outcomes.get(task.id) ? 'succeeded' : 'failed',
          );
        }
        for (const task of def.tasks) {
          expect(state!.tasks[task.id]!.status, task.id).toBe(expected.get(task.id));
          const terminal = log.filter((e) => 'task_id' in e && e.task_id === task.id && ['task.succeeded', 'task.failed', 'task.skipped', 'task.upstream_failed'].includes(e.type));
          expect(new Set(terminal.map((e) => e.type)).size).toBe(1);
        }
        const anyFailed = [...expected.values()].some((s) => s === 'failed');
        expect(log.find((e) => TERMINAL_FLOW_EVENTS.has(e.type))!.type).toBe(anyFailed ? 'flow.failed' : 'flow.succeeded');
        expect(fold(log)).toEqual(state);
      }),
    );
  });
});

describe('resolved inputs', () => {
  const referencing = fc
    .integer({ min: 2, max: 8 })
    .chain((n) =>
      fc.record({
        edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n * 2 }),
        outputs: fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: n, maxLength: n }),
        others: fc.array(fc.jsonValue({ maxDepth: 3 }), { minLength: n, maxLength: n }),
        choices: fc.array(fc.nat(), { minLength: 16, maxLength: 16 }),
      }),
    )
    .map(({ edges, outputs, others, choices }) => {
      const n = outputs.length;
      const deps = Array.from({ length: n }, () => new Set<string>());
      for (const [a, b] of edges) if (a !== b) deps[Math.max(a, b)]!.add(`t${Math.min(a, b)}`);
      // Each task reads every dependency's whole output, and one as text.
      const def = flow({
        tasks: deps.map((ds, i) => ({
          id: `t${i}`,
          executor: 'noop',
          depends_on: [...ds],
          input: { whole: Object.fromEntries([...ds].map((d) => [d, `\${tasks.${d}.output}`])), text: [...ds].map((d) => `<\${tasks.${d}.output}>`).join('') },
        })),
      });
      return { def, outputs: (i: number) => outputs[i], others: (i: number) => others[i], choices };
    });

  it('are a function of the ancestors\' outputs only: whole references keep the value, other tasks\' outputs change nothing', () => {
    fc.assert(
      fc.property(referencing, ({ def, outputs, others, choices }) => {
        const first = readyInputs(def, (id) => outputs(Number(id.slice(1))), choices);
        for (const task of def.tasks) {
          const input = first.get(task.id) as { whole: Record<string, unknown> };
          for (const d of task.depends_on) expect(input.whole[d]).toEqual(outputs(Number(d.slice(1))) ?? null);
          // Every task that is not an ancestor gets another output: this task's input is the same.
          const ancestors = new Set<string>();
          const stack = [...task.depends_on];
          while (stack.length > 0) {
            const next = stack.pop()!;
            if (ancestors.has(next)) continue;
            ancestors.add(next);
            stack.push(...def.tasks.find((t) => t.id === next)!.depends_on);
          }
          const second = readyInputs(def, (id) => (ancestors.has(id) ? outputs(Number(id.slice(1))) : others(Number(id.slice(1)))), [...choices].reverse());
          expect(second.get(task.id)).toEqual(first.get(task.id));
        }
      }),
    );
  });
});

/** The input each task.ready records when every task succeeds with `output(id)`, finishing in an order set by `choices`. */
function readyInputs(def: FlowDefinition, output: (id: string) => unknown, choices: number[]): Map<string, unknown> {
  const inputs = new Map<string, unknown>();
  let state: FlowState | null = null;
  const pending: FlowEvent[] = [ev.submitted(def)];
  const runnable: string[] = [];
  for (let step = 0; pending.length > 0 || runnable.length > 0; step++) {
    let event = pending.shift();
    if (event === undefined) {
      const id = runnable.splice(choices[step % choices.length]! % runnable.length, 1)[0]!;
      event = succeededWith(id, output(id));
    }
    state = evolve(state, event);
    if (event.type === 'task.ready') {
      runnable.push(event.task_id);
      inputs.set(event.task_id, event.data.spec.input);
    }
    pending.push(...decide(state, event).map(fromDraft));
  }
  return inputs;
}

/** Runs a flow against the decider with JetStream-style de-duplication, some events delivered twice. */
function run(def: FlowDefinition, outcomes: Map<string, boolean>, choices: number[], duplicates: number[]) {
  return runDecider(def, {
    finish: (task) => (outcomes.get(task) ? ev.succeeded(task) : ev.failed(task)),
    pick: (_ready, step) => choices[step % choices.length]!,
    redeliver: (n) => duplicates.includes(n),
  });
}
