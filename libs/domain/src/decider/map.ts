import type { EventDraft, FlowEvent, TaskError } from '../events/catalogue.js';
import { TERMINAL_TASK_EVENTS } from '../events/catalogue.js';
import type { TaskSpec } from '../flow/definition.js';
import { EXECUTOR_CONFIGS, isExecutorName } from '../flow/executors.js';
import { checkExpression, collectReferences, evaluateExpression, findNamedReferences, followPath, referenceText, type PathSegment } from '../expressions/index.js';
import { jsonBytes, MAX_FLOW_DEFINITION_BYTES, MAX_TASK_SPEC_BYTES, MAX_TASKS_PER_FLOW } from '../limits/flow-size.js';
import { sparedByFailFast, TERMINAL_TASK_STATUSES, type FlowState, type TaskState } from './state.js';
import type { Start } from './waits.js';

/*
 * Map tasks. A task with `map: {items, as, concurrency}` whose dependencies, trigger rule and
 * condition let it run evaluates `items` and, instead of becoming ready, adds one instance per item
 * (`<id>[0]`, `<id>[1]`, … in item order; flow.tasks_added, in parts that fit a message) and waits
 * (task.waiting with `map`). An instance is the task with the item put in its config and input
 * (`${<as>}`, `${<as>.field}`), the same dependencies and trigger rule, and no condition. At most
 * `concurrency` instances are past pending and not yet ended: instance i may start once
 * i < concurrency + (instances ended). When every instance has ended the map task ends: succeeded
 * when all succeeded, else failed (MAP_INSTANCE_FAILED), its output `[{item, status, output}]` in
 * item order either way.
 */

/** Items one map task may expand to. */
export const MAX_MAP_ITEMS = 10_000;
/** A map task's output (one entry per instance) travels in one event: beyond this it fails with OUTPUT_TOO_LARGE. */
export const MAX_MAP_OUTPUT_BYTES = 768 * 1024;
/** Instance specs per flow.tasks_added event, as JSON: several events when there are more. */
export const TASKS_ADDED_PART_BYTES = 512 * 1024;
/** Problems a failed expansion names; the rest are counted. */
const NAMED_PROBLEMS = 5;
/** Failed instances a map task's error names. */
const NAMED_FAILURES = 10;

export const instanceId = (taskId: string, index: number): string => `${taskId}[${index}]`;

/**
 * How a map task or one of its instances begins: a map task expands (or ends at once for an empty
 * list, or fails); an instance stays pending while its map task's concurrency is used up.
 * Undefined for other tasks. `spec` is the task's resolved spec.
 */
export function mapStart(state: FlowState, spec: TaskSpec, decidedOutputs: ReadonlyMap<string, unknown>): Start | undefined {
  if (spec.instance_of !== undefined) return instanceGate(state, spec.instance_of.task, spec.instance_of.index);
  if (spec.map !== undefined) return expand(state, spec, decidedOutputs);
  return undefined;
}

const STAY_PENDING: Start = { status: 'pending', drafts: [] };

function instanceGate(state: FlowState, mapTaskId: string, index: number): Start | undefined {
  const map = state.tasks[mapTaskId];
  if (map?.status !== 'waiting' || map.map === undefined) return STAY_PENDING;
  return index < map.map.concurrency + map.map.ended ? undefined : STAY_PENDING;
}

function expand(state: FlowState, spec: TaskSpec, decidedOutputs: ReadonlyMap<string, unknown>): Start {
  const map = spec.map!;
  const items = evaluateItems(state, map.items, decidedOutputs);
  if (!items.ok) return failed(state, spec.id, 'MAP_ITEMS', items.message);
  const list = items.value;
  if (list.length === 0) return succeeded(state, spec.id, [], 0);
  if (list.length > MAX_MAP_ITEMS) return failed(state, spec.id, 'MAP_TOO_LARGE', `map items gave ${list.length} items; a map task may run at most ${MAX_MAP_ITEMS} instances: split the list across several map tasks or flows`);
  const total = state.order.length + list.length;
  if (total > MAX_TASKS_PER_FLOW) {
    return failed(state, spec.id, 'MAP_TOO_LARGE', `map items gave ${list.length} items, which would make the flow ${total} tasks; a flow may have at most ${MAX_TASKS_PER_FLOW} tasks, counting those added while it runs`);
  }

  const template = state.tasks[spec.id]!.spec;
  const templateRefs = referenceCount(template);
  const instances: TaskSpec[] = [];
  const problems: string[] = [];
  let bytes = 0;
  for (let index = 0; index < list.length; index++) {
    const built = instanceOf(template, index, list[index], templateRefs);
    if (!built.ok) {
      problems.push(...built.problems.map((p) => `item [${index}]: ${p}`));
      if (problems.length > NAMED_PROBLEMS) break;
      continue;
    }
    const instance = built.spec;
    const existing = state.tasks[instance.id];
    // A repeated decision (after a crash between its parts) finds its own instances already added.
    if (existing !== undefined && existing.spec.instance_of?.task !== spec.id) problems.push(`item [${index}]: the flow already has a task "${instance.id}"; rename it or the map task`);
    const size = jsonBytes(instance);
    if (size > MAX_TASK_SPEC_BYTES) problems.push(`item [${index}]: the instance is ${size} bytes, over the limit of ${MAX_TASK_SPEC_BYTES} for a task; put less in each item or read large values through references`);
    bytes += size;
    instances.push(instance);
    if (problems.length > NAMED_PROBLEMS) break;
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, NAMED_PROBLEMS).join('; ');
    return failed(state, spec.id, 'MAP_INSTANCE_INVALID', `map instances could not be made: ${shown}${problems.length > NAMED_PROBLEMS ? '; and more' : ''}`);
  }
  const definitionBytes = jsonBytes(state.definition);
  if (definitionBytes + bytes > MAX_FLOW_DEFINITION_BYTES) {
    return failed(state, spec.id, 'MAP_TOO_LARGE', `the ${list.length} instances take ${bytes} bytes, which would make the flow's definition larger than ${MAX_FLOW_DEFINITION_BYTES} bytes; put less in each item`);
  }

  const drafts = tasksAddedDrafts(state, spec.id, 'map', instances);
  drafts.push({
    key: `${state.flow_id}:${spec.id}:task.waiting`,
    type: 'task.waiting',
    flow_id: state.flow_id,
    task_id: spec.id,
    data: { map: { instances: instances.length, concurrency: map.concurrency } },
  });
  return { status: 'waiting', drafts };
}

/** `specs` added by `byTask`, in flow.tasks_added events of at most TASKS_ADDED_PART_BYTES each, keyed by part. */
export function tasksAddedDrafts(state: FlowState, byTask: string, kind: 'map' | 'spawn', specs: readonly TaskSpec[]): EventDraft[] {
  const drafts: EventDraft[] = [];
  let part: TaskSpec[] = [];
  let partBytes = 0;
  const flush = () => {
    drafts.push({ key: `${state.flow_id}:${byTask}:flow.tasks_added:${drafts.length}`, type: 'flow.tasks_added', flow_id: state.flow_id, data: { by_task: byTask, kind, part: drafts.length, tasks: part } });
    part = [];
    partBytes = 0;
  };
  for (const spec of specs) {
    const size = jsonBytes(spec);
    if (part.length > 0 && partBytes + size > TASKS_ADDED_PART_BYTES) flush();
    part.push(spec);
    partBytes += size;
  }
  if (part.length > 0) flush();
  return drafts;
}

type Items = { ok: true; value: unknown[] } | { ok: false; message: string };

function evaluateItems(state: FlowState, source: string, decidedOutputs: ReadonlyMap<string, unknown>): Items {
  const checked = checkExpression(source, 'transform');
  const tasks: Record<string, { output: unknown }> = {};
  if (checked.ok) {
    for (const id of checked.taskRefs) {
      if (decidedOutputs.has(id)) tasks[id] = { output: decidedOutputs.get(id) ?? null };
      else if (state.tasks[id] !== undefined) tasks[id] = { output: state.tasks[id]!.output ?? null };
    }
  }
  const result = evaluateExpression(source, { tasks, params: state.definition.params ?? {}, flow: { id: state.flow_id } });
  if (!result.ok) return { ok: false, message: `map items could not be evaluated: ${result.message}` };
  if (!Array.isArray(result.value)) {
    const got = result.value === null ? 'null' : typeof result.value === 'object' ? 'an object' : `a ${typeof result.value}`;
    return { ok: false, message: `map items must be a list, got ${got}` };
  }
  return { ok: true, value: result.value };
}

type Built = { ok: true; spec: TaskSpec } | { ok: false; problems: string[] };

/** The references (tasks, params, secrets, …) a spec's config and input hold, found or malformed. */
function referenceCount(spec: Pick<TaskSpec, 'config' | 'input'>): number {
  let count = 0;
  for (const value of [spec.config, spec.input]) {
    if (value === undefined) continue;
    const found = collectReferences(value);
    count += found.found.length + found.problems.length;
  }
  return count;
}

/** One instance of `template` for `item`: the item put where `${<as>…}` names it. */
export function instanceOf(template: TaskSpec, index: number, item: unknown, templateRefs = referenceCount(template)): Built {
  const as = template.map!.as;
  const problems: string[] = [];
  const env: Record<string, string> = {};
  const put = (value: unknown, at: PathSegment[]): unknown => substitute(value, at, as, item, problems, template.executor === 'shell' ? env : undefined);
  let config = put(template.config, ['config']) as Record<string, unknown>;
  const input = template.input === undefined ? undefined : put(template.input, ['input']);
  if (Object.keys(env).length > 0) config = { ...config, env: { ...(config.env as Record<string, unknown> | undefined), ...env } };
  if (problems.length > 0) return { ok: false, problems };
  // Items are data: text in them that reads as a reference is never resolved (it could name a secret).
  if (referenceCount({ config, ...(input !== undefined && { input }) }) !== templateRefs) {
    return { ok: false, problems: ['the item holds text that reads as a reference (${tasks.…}, ${params.…}, ${secrets.…}, …); items are data and are never read for references'] };
  }
  if (collectReferences(config).found.length === 0 && isExecutorName(template.executor)) {
    const checked = EXECUTOR_CONFIGS[template.executor].safeParse(config);
    if (!checked.success) return { ok: false, problems: checked.error.issues.slice(0, 2).map((i) => `config${i.path.length > 0 ? `.${i.path.join('.')}` : ''}: ${i.message}`) };
    config = checked.data as Record<string, unknown>;
  }
  const { map: _map, condition: _condition, bindings: _bindings, run_time_strings: _rts, ...rest } = template;
  return {
    ok: true,
    spec: { ...rest, id: instanceId(template.id, index), config, ...(input !== undefined ? { input } : {}), instance_of: { task: template.id, index, item } },
  };
}

/**
 * Puts the item in every string of `value`: a string that is exactly one `${<as>…}` takes the
 * value with its type, others its text. In a shell `command` the text is never spliced: it goes
 * through an environment variable (TS_ITEM_n), as references do.
 */
function substitute(value: unknown, at: PathSegment[], as: string, item: unknown, problems: string[], shellEnv: Record<string, string> | undefined): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    const found = findNamedReferences(value, as);
    for (const problem of found.problems) problems.push(`${at.join('.')}: ${problem}`);
    if (found.references.length === 0) return value;
    const values: unknown[] = [];
    for (const reference of found.references) {
      const looked = followPath(item, reference.path, as);
      if (!looked.ok) {
        problems.push(`${at.join('.')}: ${reference.text}: ${looked.message}`);
        return value;
      }
      values.push(looked.value);
    }
    const isCommand = shellEnv !== undefined && at.length === 2 && at[0] === 'config' && at[1] === 'command';
    if (!isCommand && found.references.length === 1 && found.references[0]!.start === 0 && found.references[0]!.end === value.length) return values[0];
    let out = '';
    let last = 0;
    found.references.forEach((reference, i) => {
      const text = referenceText(values[i]);
      if (!text.ok) problems.push(`${at.join('.')}: ${reference.text}: ${text.message}`);
      let piece = text.ok ? text.text : '';
      if (isCommand) {
        const name = `TS_ITEM_${i + 1}`;
        shellEnv[name] = piece;
        piece = `\${${name}}`;
      }
      out += value.slice(last, reference.start) + piece;
      last = reference.end;
    });
    return out + value.slice(last);
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, [...at, i], as, item, problems, shellEnv));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(out, key, { value: substitute((value as Record<string, unknown>)[key], [...at, key], as, item, problems, shellEnv), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

/**
 * Tasks an event makes worth examining again, for map tasks: the instances a map task's wait or an
 * instance's end lets start. Undefined: the event is none of these.
 */
export function mapAffected(state: FlowState, event: FlowEvent): readonly string[] | undefined {
  // A map's instances start once it waits; a spawn's tasks may start at once.
  // (Tasks added to a flow winding down, a cancel having come between two parts, are cancelled at once.)
  if (event.type === 'flow.tasks_added') return event.data.kind === 'map' && state.status !== 'cancelling' ? [] : event.data.tasks.map((t) => t.id);
  if (!('task_id' in event)) return undefined;
  const task = state.tasks[event.task_id];
  if (task === undefined) return undefined;
  if (event.type === 'task.waiting' && task.map !== undefined) {
    return [...(state.status === 'cancelling' ? [task.id] : []), ...startable(state, task)];
  }
  const of = task.spec.instance_of;
  if (of !== undefined && TERMINAL_TASK_EVENTS.has(event.type)) {
    const parent = state.tasks[of.task];
    return [...(state.dependents[task.id] ?? []), ...(parent === undefined ? [] : startable(state, parent))];
  }
  return undefined;
}

/** Pending instances of `mapTask` its concurrency now lets start. */
function startable(state: FlowState, mapTask: TaskState): string[] {
  const map = mapTask.map;
  if (map === undefined) return [];
  const out: string[] = [];
  const end = Math.min(map.instances, map.concurrency + map.ended);
  for (let i = Math.min(map.ended, end); i < end; i++) {
    const id = instanceId(mapTask.id, i);
    if (state.tasks[id]?.status === 'pending') out.push(id);
  }
  return out;
}

/** The map task's end once every instance has ended, after `event` (an instance's end, or its own wait). */
export function mapEndAfter(state: FlowState, event: FlowEvent): EventDraft | undefined {
  if (!('task_id' in event)) return undefined;
  const task = state.tasks[event.task_id];
  if (task === undefined) return undefined;
  if (event.type === 'task.waiting') return mapEnd(state, task.id);
  const of = task.spec.instance_of;
  return of !== undefined && TERMINAL_TASK_EVENTS.has(event.type) ? mapEnd(state, of.task) : undefined;
}

/** Every map task whose instances have all ended: used after rebuilding a flow from its log. */
export function mapEnds(state: FlowState): EventDraft[] {
  const drafts: EventDraft[] = [];
  for (const id of state.order) {
    const draft = state.tasks[id]!.map !== undefined ? mapEnd(state, id) : undefined;
    if (draft !== undefined) drafts.push(draft);
  }
  return drafts;
}

function mapEnd(state: FlowState, taskId: string): EventDraft | undefined {
  const task = state.tasks[taskId];
  const map = task?.map;
  if (task?.status !== 'waiting' || map === undefined || map.ended < map.instances) return undefined;
  // A flow winding down cancels a waiting map task itself (unless fail_fast spares it).
  if (state.status === 'cancelling' && !sparedByFailFast(state, task)) return undefined;
  const output: Array<{ item: unknown; status: string; output: unknown }> = [];
  const failures: string[] = [];
  let lastEnd = task.ready_at === undefined ? 0 : Date.parse(task.ready_at);
  const began = lastEnd;
  for (let i = 0; i < map.instances; i++) {
    const instance = state.tasks[instanceId(taskId, i)];
    if (instance === undefined || !TERMINAL_TASK_STATUSES.has(instance.status)) return undefined;
    output.push({ item: instance.spec.instance_of?.item ?? null, status: instance.status, output: instance.output ?? null });
    if (instance.status !== 'succeeded') failures.push(`${instance.id} ${instance.status}`);
    if (instance.finished_at !== undefined) lastEnd = Math.max(lastEnd, Date.parse(instance.finished_at));
  }
  const duration = Math.max(0, lastEnd - began);
  const bytes = jsonBytes(output);
  if (bytes > MAX_MAP_OUTPUT_BYTES) {
    return failed(state, taskId, 'OUTPUT_TOO_LARGE', `the map's output (one entry per instance) is ${bytes} bytes, over the limit of ${MAX_MAP_OUTPUT_BYTES}; make the instances' outputs smaller`, duration).drafts[0];
  }
  if (failures.length === 0) return succeeded(state, taskId, output, duration).drafts[0];
  const named = failures.slice(0, NAMED_FAILURES).join(', ');
  const more = failures.length > NAMED_FAILURES ? ` and ${failures.length - NAMED_FAILURES} more` : '';
  return failed(state, taskId, 'MAP_INSTANCE_FAILED', `${failures.length} of ${map.instances} instances did not succeed: ${named}${more}`, duration, output).drafts[0];
}

function succeeded(state: FlowState, taskId: string, output: unknown, duration: number): Start {
  return {
    status: 'succeeded',
    drafts: [{ key: `${state.flow_id}:${taskId}:task.succeeded`, type: 'task.succeeded', flow_id: state.flow_id, task_id: taskId, attempt: 1, data: { output, duration_ms: duration } }],
  };
}

function failed(state: FlowState, taskId: string, code: string, message: string, duration = 0, output?: unknown): Start {
  const error: TaskError = { message, code, retryable: false };
  return {
    status: 'failed',
    drafts: [
      {
        key: `${state.flow_id}:${taskId}:task.failed`,
        type: 'task.failed',
        flow_id: state.flow_id,
        task_id: taskId,
        attempt: 1,
        data: { error, duration_ms: duration, ...(output !== undefined && { output }) },
      },
    ],
  };
}
