import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decide,
  decideAll,
  fold,
  lineageFrom,
  submittedDefinition,
  toDot,
  toFlowView,
  validateFlow,
  type FlowDefinition,
  type FlowEvent,
  type FlowState,
} from '../src/index.js';
import { ev, FLOW, fromDraft, given, runDecider, stamp, summary, validFlow as flow } from './fixtures.js';

function problems(input: Record<string, unknown>) {
  const result = validateFlow(input);
  if (result.ok) throw new Error('expected problems');
  return result.problems;
}

const listed = (task: string, output: unknown) => stamp({ type: 'task.succeeded', flow_id: FLOW, task_id: task, attempt: 1, data: { output, duration_ms: 1 } });
const okWith = (task: string, output: unknown) => stamp({ type: 'task.succeeded', flow_id: FLOW, task_id: task, attempt: 1, data: { output, duration_ms: 1 } });

/** Runs decisions to quiescence, appending them as the planner would (de-duplicated by key); `finish` ends each ready task. */
function run(def: FlowDefinition, finish: (id: string, state: FlowState) => FlowEvent | undefined, pick: (ready: string[]) => number = () => 0) {
  const maxActive = new Map<string, number>();
  const { log, state } = runDecider(def, {
    finish,
    pick: (ready) => pick([...ready]),
    settledCheck: 'new',
    maxSteps: 100_000,
    observe: (state) => {
      for (const [id, task] of Object.entries(state.tasks)) {
        if (task.map === undefined) continue;
        let active = 0;
        for (let i = 0; i < task.map.instances; i++) {
          const s = state.tasks[`${id}[${i}]`]?.status;
          if (s === 'ready' || s === 'dispatched' || s === 'running') active++;
        }
        maxActive.set(id, Math.max(maxActive.get(id) ?? 0, active));
      }
    },
  });
  return { log, state: state as FlowState, maxActive };
}

describe('a map task', () => {
  const def = flow({
    params: { prefix: 'job' },
    tasks: [
      { id: 'list', executor: 'noop' },
      {
        id: 'each',
        executor: 'noop',
        depends_on: ['list'],
        map: { items: 'tasks.list.output.items', as: 'it', concurrency: 2 },
        config: { output: { name: '${it.name}', whole: '${it}', text: '${params.prefix}-${it.name}' } },
      },
      { id: 'fan_in', executor: 'transform', depends_on: ['each'], config: { expr: 'tasks.each.output.map(r, r.output.name)' } },
    ],
  });
  const items = [{ name: 'a' }, { name: 'b' }, { name: 'c' }];

  it('adds one instance per item, then waits for them with its concurrency', () => {
    const { drafts, state } = given([ev.submitted(def), ev.started()]).when(listed('list', { items })).then(['flow.tasks_added', 'task.waiting:each']);
    const added = drafts[0]!;
    if (added.type !== 'flow.tasks_added') throw new Error('expected tasks_added');
    expect(added.key).toBe(`${FLOW}:each:flow.tasks_added:0`);
    expect(added.data).toMatchObject({ by_task: 'each', kind: 'map', part: 0 });
    expect(added.data.tasks.map((t) => t.id)).toEqual(['each[0]', 'each[1]', 'each[2]']);
    expect(added.data.tasks[1]).toMatchObject({
      executor: 'noop',
      depends_on: ['list'],
      config: { output: { name: 'b', whole: { name: 'b' }, text: '${params.prefix}-b' } },
      instance_of: { task: 'each', index: 1, item: { name: 'b' } },
    });
    expect(added.data.tasks[1]).not.toHaveProperty('map');
    expect(drafts[1]!.data).toEqual({ map: { instances: 3, concurrency: 2 } });
    expect(state.tasks.each!.status).toBe('pending');
  });

  it('readies at most `concurrency` instances, the next as one ends, and ends with the outputs in item order', () => {
    const history = [ev.submitted(def), ev.started(), listed('list', { items })];
    const [added, waiting] = decide(fold(history), history[2]!).map(fromDraft);
    given([...history, added!]).when(waiting!).then(['task.ready:each[0]', 'task.ready:each[1]']);
    const ready = given([...history, added!, waiting!]).when(ev.succeeded('each[1]')).then(['task.ready:each[2]']);
    expect(ready.drafts[0]!.data).toMatchObject({ spec: { config: { output: { text: 'job-c' } } } });
    const rest = [...history, added!, waiting!, ev.succeeded('each[1]'), fromDraft(ready.drafts[0]!), okWith('each[2]', { name: 'c' })];
    const end = given(rest).when(okWith('each[0]', { name: 'a' })).then(['task.succeeded:each']);
    expect(end.drafts[0]!.data).toMatchObject({
      output: [
        { item: { name: 'a' }, status: 'succeeded', output: { name: 'a' } },
        { item: { name: 'b' }, status: 'succeeded', output: { ok: 'each[1]' } },
        { item: { name: 'c' }, status: 'succeeded', output: { name: 'c' } },
      ],
    });
    given([...rest, okWith('each[0]', { name: 'a' })]).when(fromDraft(end.drafts[0]!)).then(['task.ready:fan_in']);
  });

  it('succeeds at once with an empty list, and its dependents run', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(listed('list', { items: [] })).then(['task.succeeded:each', 'task.ready:fan_in']);
    expect(drafts[0]!.data).toEqual({ output: [], duration_ms: 0 });
    // The fan-in, readied in the same round, reads the map's output.
    expect(drafts[1]!.data).toMatchObject({ spec: { bindings: { tasks: { each: { output: [] } } } } });
  });

  it('fails when any instance fails, still listing every instance, and its dependents do not run', () => {
    const { state, log } = run(def, (id, s) => (id === 'list' ? listed('list', { items }) : id === 'each[1]' ? ev.failed(id) : okWith(id, s.tasks[id]!.spec.config.output)));
    expect(state.status).toBe('failed');
    expect(state.tasks.each!.status).toBe('failed');
    expect(state.tasks.each!.error).toMatchObject({ code: 'MAP_INSTANCE_FAILED', message: '1 of 3 instances did not succeed: each[1] failed' });
    expect((state.tasks.each!.output as Array<{ status: string }>).map((r) => r.status)).toEqual(['succeeded', 'failed', 'succeeded']);
    expect(state.tasks.fan_in!.status).toBe('upstream_failed');
    expect(log.filter((e) => e.type === 'flow.failed')).toHaveLength(1);
  });

  it('fails before adding anything when items are not a list, fail to evaluate, or are too many for the flow', () => {
    const notList = given([ev.submitted(def), ev.started()]).when(listed('list', { items: 'x' })).then(['task.failed:each', 'task.upstream_failed:fan_in', 'flow.failed']);
    expect(notList.drafts[0]!.data).toMatchObject({ error: { code: 'MAP_ITEMS', message: 'map items must be a list, got a string', retryable: false } });
    const missing = given([ev.submitted(def), ev.started()]).when(listed('list', {})).then(['task.failed:each', 'task.upstream_failed:fan_in', 'flow.failed']);
    expect(missing.drafts[0]!.data).toMatchObject({ error: { code: 'MAP_ITEMS' } });
    const many = given([ev.submitted(def), ev.started()]).when(listed('list', { items: Array.from({ length: 9_998 }, (_, i) => ({ name: `n${i}` })) })).then(['task.failed:each', 'task.upstream_failed:fan_in', 'flow.failed']);
    expect(many.drafts[0]!.data).toMatchObject({ error: { code: 'MAP_TOO_LARGE', message: expect.stringContaining('at most 10000 tasks') } });
  });

  it('fails when an item lacks a field the config names, listing which items', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(listed('list', { items: [{ name: 'a' }, { other: 1 }] })).then(['task.failed:each', 'task.upstream_failed:fan_in', 'flow.failed']);
    expect(drafts[0]!.data).toMatchObject({ error: { code: 'MAP_INSTANCE_INVALID', message: expect.stringContaining('item [1]: config.output.name: ${it.name}: it has no field "name"') } });
  });

  it('never reads text of an item as references: an item naming a secret fails the map', () => {
    const { drafts } = given([ev.submitted(def), ev.started()]).when(listed('list', { items: [{ name: '${secrets.DB}' }] })).then(['task.failed:each', 'task.upstream_failed:fan_in', 'flow.failed']);
    expect(drafts[0]!.data).toMatchObject({ error: { code: 'MAP_INSTANCE_INVALID', message: expect.stringContaining('items are data') } });
  });

  it('passes items to a shell command through the environment, never as shell text', () => {
    const d = flow({ tasks: [{ id: 'each', executor: 'shell', map: { items: '["a; rm -rf ~", "b"]' }, config: { command: 'echo "${item}"' } }] });
    const { drafts } = given([ev.submitted(d)]).when(ev.started()).then(['flow.tasks_added', 'task.waiting:each']);
    const added = drafts[0]!;
    if (added.type !== 'flow.tasks_added') throw new Error('expected tasks_added');
    expect(added.data.tasks[0]!.config).toEqual({ command: 'echo "${TS_ITEM_1}"', env: { TS_ITEM_1: 'a; rm -rf ~' } });
  });

  it('checks an item against the executor\'s config once it is put in', () => {
    const d = flow({ tasks: [{ id: 'wait', executor: 'delay', map: { items: '[5, "soon"]' }, config: { ms: '${item}' } }] });
    const { drafts } = given([ev.submitted(d)]).when(ev.started()).then(['task.failed:wait', 'flow.failed']);
    expect(drafts[0]!.data).toMatchObject({ error: { code: 'MAP_INSTANCE_INVALID', message: expect.stringContaining('item [1]: config.ms') } });
  });

  it('splits many instances over several flow.tasks_added events that each fit a message', () => {
    const d = flow({ tasks: [{ id: 'big', executor: 'noop', map: { items: 'params.xs', concurrency: 1000 }, config: { output: '${item}' } }], params: { xs: Array.from({ length: 600 }, (_, i) => 'x'.repeat(2000) + i) } });
    const started = ev.started();
    const drafts = decide(fold([ev.submitted(d), started]), started);
    const parts = drafts.filter((x) => x.type === 'flow.tasks_added');
    expect(parts.length).toBeGreaterThan(2);
    expect(summary(drafts.slice(parts.length))).toEqual(['task.waiting:big']);
    expect(parts.map((x) => x.key)).toEqual(parts.map((_, p) => `${FLOW}:big:flow.tasks_added:${p}`));
    for (const draft of parts) expect(JSON.stringify(draft.data).length).toBeLessThan(600 * 1024);
    const grown = fold([ev.submitted(d), started, ...drafts.map(fromDraft)])!;
    expect(grown.order.slice(1)).toEqual(Array.from({ length: 600 }, (_, i) => `big[${i}]`));
  });

  it('is cancelled with its flow, its instances too', () => {
    const history = [ev.submitted(def), ev.started(), listed('list', { items })];
    const decided = decide(fold(history), history[2]!).map(fromDraft);
    const { drafts } = given([...history, ...decided]).when(ev.cancelRequested()).then([
      'task.cancelled:each',
      'task.cancelled:fan_in',
      'task.cancelled:each[0]',
      'task.cancelled:each[1]',
      'task.cancelled:each[2]',
      'flow.cancelled',
    ]);
    expect(drafts).toHaveLength(6);
  });

  it('cancels instances added after a cancel that came between the parts of its expansion', () => {
    const history = [ev.submitted(def), ev.started(), listed('list', { items })];
    const [added, waiting] = decide(fold(history), history[2]!).map(fromDraft);
    const cancel = ev.cancelRequested();
    const stopped = given(history).when(cancel).then(['task.cancelled:each', 'task.cancelled:fan_in', 'flow.cancelled']).drafts.map(fromDraft);
    // The cancel is folded before the expansion is stored: the late instances are cancelled as they come.
    given([...history, cancel, stopped[0]!, stopped[1]!]).when(added!).then(['task.cancelled:each[0]', 'task.cancelled:each[1]', 'task.cancelled:each[2]', 'flow.cancelled']);
    given([...history, cancel, stopped[0]!, stopped[1]!, added!]).when(waiting!).then([]);
  });

  it('decides again the same after a crash between its parts: the same keys, nothing added twice', () => {
    const history = [ev.submitted(def), ev.started(), listed('list', { items })];
    const first = decide(fold(history), history[2]!);
    const [added] = first.map(fromDraft);
    const again = decideAll(fold([...history, added!]));
    expect(again.map((d) => d.key)).toEqual(first.map((d) => d.key));
    const twice = fold([...history, added!, added!, fromDraft(first[1]!)])!;
    expect(twice.order.filter((id) => id.startsWith('each['))).toEqual(['each[0]', 'each[1]', 'each[2]']);
    expect(twice.definition.tasks).toHaveLength(6);
  });

  it('shows the grown flow in views and graphs, and the flow as it was at an earlier point', () => {
    const { log, state } = run(def, (id, s) => (id === 'list' ? listed('list', { items }) : okWith(id, s.tasks[id]!.spec.config.output ?? null)));
    expect(state.status).toBe('succeeded');
    expect((state.tasks.each!.output as Array<{ output: { name: string } }>).map((r) => r.output.name)).toEqual(['a', 'b', 'c']);
    const fanIn = log.find((e) => e.type === 'task.ready' && e.task_id === 'fan_in');
    expect(fanIn).toMatchObject({ data: { spec: { bindings: { tasks: { each: { output: [{ item: { name: 'a' } }, { item: { name: 'b' } }, { item: { name: 'c' } }] } } } } } });
    const view = toFlowView(state);
    expect(view.total).toBe(6);
    expect(view.tasks.find((t) => t.id === 'each[2]')).toMatchObject({ instance_of: 'each', status: 'succeeded' });
    expect(toDot(view)).toContain('"each[2]" -> "each" [style=dashed];');
    const before = fold(log.slice(0, log.findIndex((e) => e.type === 'flow.tasks_added')))!;
    expect(before.order).toEqual(['list', 'each', 'fan_in']);
    expect(toFlowView(before).total).toBe(3);
  });

  it('is rerun from its submitted definition: instances are not reused and the map expands again', () => {
    const { state } = run(def, (id, s) => (id === 'list' ? listed('list', { items }) : okWith(id, s.tasks[id]!.spec.config.output ?? null)));
    const original = submittedDefinition(state);
    expect(original.tasks.map((t) => t.id)).toEqual(['list', 'each', 'fan_in']);
    expect(state.definition.tasks).toHaveLength(6);
    const lineage = lineageFrom(state, 'rerun', state.last_seq, ['each']);
    expect(Object.keys(lineage.reused)).toEqual(['list']);
    expect(lineageFrom(state, 'rerun', state.last_seq, ['each[1]']).reused).toEqual(lineage.reused);
    const child = stamp({ type: 'flow.submitted', flow_id: FLOW, data: { definition: original, lineage } });
    const { drafts } = given([child]).when(ev.started()).then(['flow.tasks_added', 'task.waiting:each']);
    expect(summary(drafts)).toHaveLength(2);
    // A fork reusing the map task keeps its output and never expands it.
    const fork = stamp({ type: 'flow.submitted', flow_id: FLOW, data: { definition: original, lineage: lineageFrom(state, 'fork', state.last_seq, ['fan_in']) } });
    given([fork]).when(ev.started()).then(['task.ready:fan_in']);
  });
});

describe('map at submission', () => {
  it('normalises its defaults', () => {
    const d = flow({ tasks: [{ id: 'm', executor: 'noop', map: { items: '[1, 2]' } }] });
    expect(d.tasks[0]!.map).toEqual({ items: '[1, 2]', as: 'item', concurrency: 10 });
  });

  it('refuses bad fields, reserved names, items reading tasks not upstream, bad item references and waiting executors', () => {
    const found = problems({
      tasks: [
        { id: 'a', executor: 'noop' },
        { id: 'm1', executor: 'noop', map: { items: '[1]', as: 'params', concurrency: 0 } },
        { id: 'm4', executor: 'noop', map: { items: '[1]' }, config: { output: '${item.}' } },
        { id: 'm5', executor: 'approval', map: { items: '[1]' } },
        { id: 'm6', executor: 'noop', map: { items: '[1]', extra: true } },
      ],
    });
    expect(found.map((p) => p.path)).toEqual(
      expect.arrayContaining(['tasks[1].map.as', 'tasks[1].map.concurrency', 'tasks[2].config.output', 'tasks[3].map', 'tasks[4].map.extra']),
    );
    const items = problems({ tasks: [{ id: 'a', executor: 'noop' }, { id: 'm2', executor: 'noop', map: { items: 'tasks.a.output' } }, { id: 'm3', executor: 'noop', map: { items: '[1' } }] });
    expect(items.map((p) => p.path)).toEqual(['tasks[1].map.items', 'tasks[2].map.items']);
    expect(items[0]!.message).toContain('map items refers to "a", which is not upstream of "m2"; add "a" to its depends_on');
  });

  it('accepts an item where the executor wants another type, to be checked per item', () => {
    const d = flow({ tasks: [{ id: 'm', executor: 'delay', map: { items: '[1]', as: 'ms' }, config: { ms: '${ms}' } }] });
    expect(d.tasks[0]!.config).toEqual({ ms: '${ms}' });
  });
});

describe('map properties over random items, concurrency and completion orders', () => {
  const scenario = fc.record({
    n: fc.integer({ min: 0, max: 25 }),
    concurrency: fc.integer({ min: 1, max: 6 }),
    fails: fc.array(fc.nat(24), { maxLength: 3 }),
    picks: fc.array(fc.nat(), { minLength: 50, maxLength: 50 }),
  });
  const mapFlow = (n: number, concurrency: number) =>
    flow({
      params: { xs: Array.from({ length: n }, (_, i) => ({ i })) },
      tasks: [
        { id: 'm', executor: 'noop', map: { items: 'params.xs', concurrency }, config: { output: '${item.i}' } },
        { id: 'after', executor: 'noop', depends_on: ['m'] },
      ],
    });

  it('never has more than `concurrency` instances ready or running, lists outputs in item order, and ends the flow once', () => {
    fc.assert(
      fc.property(scenario, ({ n, concurrency, fails, picks }) => {
        let step = 0;
        const failing = new Set(fails.filter((f) => f < n).map((f) => `m[${f}]`));
        const { log, state, maxActive } = run(
          mapFlow(n, concurrency),
          (id, s) => (failing.has(id) ? ev.failed(id) : okWith(id, s.tasks[id]!.spec.config.output ?? null)),
          () => picks[step++ % picks.length]!,
        );
        expect(maxActive.get('m') ?? 0).toBeLessThanOrEqual(concurrency);
        const output = state.tasks.m!.output as Array<{ item: { i: number }; status: string; output: unknown }>;
        expect(output.map((r) => r.item.i)).toEqual(Array.from({ length: n }, (_, i) => i));
        for (const r of output) expect(r.status).toBe(failing.has(`m[${r.item.i}]`) ? 'failed' : 'succeeded');
        expect(state.tasks.m!.status).toBe(failing.size > 0 ? 'failed' : 'succeeded');
        expect(log.filter((e) => e.type === 'flow.succeeded' || e.type === 'flow.failed')).toHaveLength(1);
        expect(state.terminal_count).toBe(state.order.length);
        expect(state.order).toHaveLength(2 + n);
      }),
    );
  });

  it('folds a grown flow to the same state with any events duplicated, and a rebuild decides only keys already decided', () => {
    fc.assert(
      fc.property(scenario, fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 10 }), fc.nat(), ({ n, concurrency, picks }, dupes, cut) => {
        let step = 0;
        const { log } = run(mapFlow(n, concurrency), (id, s) => okWith(id, s.tasks[id]!.spec.config.output ?? null), () => picks[step++ % picks.length]!);
        const noisy = [...log];
        for (const [pick, offset] of dupes) {
          const original = log[pick % log.length]!;
          const from = noisy.indexOf(original);
          noisy.splice(from + 1 + (offset % (noisy.length - from)), 0, original);
        }
        expect(fold(noisy)).toEqual(fold(log));
        const keys = new Set(log.map((e) => (e.type === 'flow.tasks_added' ? `${FLOW}:${e.data.by_task}:flow.tasks_added:${e.data.part}` : 'task_id' in e ? `${FLOW}:${e.task_id}:${e.type}` : `${FLOW}:${e.type}`)));
        for (const draft of decideAll(fold(log.slice(0, 1 + (cut % log.length))))) expect(keys.has(draft.key)).toBe(true);
      }),
    );
  });
});
