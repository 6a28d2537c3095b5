import type { EventDraft, FlowEvent } from '../events/catalogue.js';
import type { TaskSpec } from '../flow/definition.js';
import { validateFlow } from '../flow/validate.js';
import { jsonBytes, MAX_FLOW_DEFINITION_BYTES, MAX_TASK_SPEC_BYTES, MAX_TASKS_PER_FLOW } from '../limits/flow-size.js';
import { tasksAddedDrafts } from './map.js';
import { TERMINAL_TASK_STATUSES, type FlowState, type TaskStatus } from './state.js';

/*
 * Tasked's spawn. A spawn task's step runs an inner step whose output text (`stdout`, else `body`)
 * is a JSON array of task definitions; the step succeeds with Tasked's output
 * `{generated_count, inner_output}`. The tasks are `<spawn id>/<id>`, their dependencies on each
 * other rewritten, those on tasks of the flow kept, and the ones depending on no generated task
 * depend on the spawn task. The executor checks them against the flow before the task succeeds (a
 * problem fails it, listing every one); the planner then adds them (flow.tasks_added, kind spawn),
 * reading them again from `inner_output`: the specs travel once, inside the output Tasked defines.
 */

/** How deep spawn tasks may generate spawn tasks (Tasked's max_spawn_depth). */
export const MAX_SPAWN_DEPTH = 8;

export type Spawned = { ok: true; specs: TaskSpec[] } | { ok: false; problems: string[] };

/** The text a spawn's inner step produced: its `stdout` (shell), else its `body` (http), else nothing. */
export function spawnText(innerOutput: unknown): string {
  if (innerOutput === null || typeof innerOutput !== 'object') return '';
  const { stdout, body } = innerOutput as { stdout?: unknown; body?: unknown };
  if (typeof stdout === 'string') return stdout;
  return typeof body === 'string' ? body : '';
}

/**
 * The tasks spawn task `spawn` generates from its inner step's output, validated like a
 * submission and against `state`, the flow as it stands (its ids, its size, its params); every
 * problem is listed. Pure: the executor and the planner get the same answer from the same state.
 */
export function spawnedTasks(state: FlowState, spawn: TaskSpec, innerOutput: unknown): Spawned {
  let raw: unknown;
  try {
    raw = JSON.parse(spawnText(innerOutput).trim());
  } catch (error) {
    return { ok: false, problems: [`failed to parse spawn output as tasks: ${(error as Error).message}`] };
  }
  if (!Array.isArray(raw)) return { ok: false, problems: ['the spawn output must be a JSON array of task definitions'] };
  const problems: string[] = [];
  const depth = spawn.id.split('/').length;
  if (depth > MAX_SPAWN_DEPTH) problems.push(`spawn task "${spawn.id}" is ${depth} spawns deep; spawn tasks nest at most ${MAX_SPAWN_DEPTH} deep`);
  const prefix = `${spawn.id}/`;
  const generated = new Set(raw.map((t) => (t !== null && typeof t === 'object' ? (t as { id?: unknown }).id : undefined)).filter((id): id is string => typeof id === 'string'));
  const external = new Set<string>();
  const tasks = raw.map((t) => {
    if (t === null || typeof t !== 'object' || Array.isArray(t)) return t;
    const task = t as Record<string, unknown>;
    const deps = Array.isArray(task.depends_on) ? task.depends_on : [];
    const rewritten = deps.map((d) => (typeof d === 'string' && generated.has(d) ? `${prefix}${d}` : d));
    for (const d of rewritten) if (typeof d === 'string' && !d.startsWith(prefix)) external.add(d);
    const internal = deps.some((d) => typeof d === 'string' && generated.has(d));
    return { ...task, ...(typeof task.id === 'string' && { id: `${prefix}${task.id}` }), depends_on: internal ? rewritten : [...rewritten, spawn.id] };
  });
  // The flow's tasks they name stand in as placeholders, so references to them check as upstream.
  const known = [spawn.id, ...[...external].filter((id) => id !== spawn.id)];
  for (const id of known) {
    if (id.startsWith(prefix)) problems.push(`a generated task depends on "${id}", which this spawn does not generate`);
    else if (id !== spawn.id && state.tasks[id] === undefined) problems.push(`a generated task depends on "${id}", which is not a task of the flow`);
    else if (id !== spawn.id && waitsFor(state, id, prefix)) problems.push(`a generated task depends on "${id}", which waits for this spawn's outputs: that would be a cycle`);
  }
  for (const name of spawn.spawn_output ?? []) {
    if (!generated.has(name)) problems.push(`spawn_output promises "${name}", which the spawn output does not generate`);
  }
  const placeholders = known.map((id) => ({ id, executor: 'noop' }));
  const validated = validateFlow({ tasks: [...tasks, ...placeholders], queue: spawn.queue, ...(state.definition.params !== undefined && { params: state.definition.params }) });
  if (!validated.ok) {
    for (const p of validated.problems) problems.push(`${p.path.replace(/^tasks\[/, 'spawned[')}: ${p.message}`);
    return { ok: false, problems };
  }
  const specs = validated.flow.tasks.slice(0, raw.length).map((spec) => ({ ...spec, spawned_by: spawn.id }));
  for (const spec of specs) {
    if (state.tasks[spec.id] !== undefined && state.tasks[spec.id]!.spec.spawned_by !== spawn.id) problems.push(`the flow already has a task "${spec.id}"`);
    const bytes = jsonBytes(spec);
    if (bytes > MAX_TASK_SPEC_BYTES) problems.push(`task "${spec.id}" is ${bytes} bytes, over the limit of ${MAX_TASK_SPEC_BYTES} for a task`);
  }
  const added = specs.filter((s) => state.tasks[s.id] === undefined).length;
  if (state.order.length + added > MAX_TASKS_PER_FLOW) problems.push(`the ${specs.length} tasks would make the flow ${state.order.length + added} tasks; a flow may have at most ${MAX_TASKS_PER_FLOW}, counting those added while it runs`);
  else if (jsonBytes(state.definition) + jsonBytes(specs) > MAX_FLOW_DEFINITION_BYTES) problems.push(`the tasks would make the flow's definition larger than ${MAX_FLOW_DEFINITION_BYTES} bytes`);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, specs };
}

/** Whether task `id` depends, directly or through other tasks, on an id under `prefix` (a promised output). */
function waitsFor(state: FlowState, id: string, prefix: string): boolean {
  const seen = new Set<string>();
  const stack = [id];
  while (stack.length > 0) {
    const task = state.tasks[stack.pop()!];
    if (task === undefined) continue;
    for (const dep of task.spec.depends_on) {
      if (dep.startsWith(prefix)) return true;
      if (!seen.has(dep)) {
        seen.add(dep);
        stack.push(dep);
      }
    }
  }
  return false;
}

/** The spawn task (and its status) whose promised output `id` is, for a task not in the flow yet. */
export function promisedStatus(state: FlowState, id: string): TaskStatus {
  for (let slash = id.lastIndexOf('/'); slash > 0; slash = id.lastIndexOf('/', slash - 1)) {
    const generator = state.tasks[id.slice(0, slash)];
    if (generator === undefined) continue;
    // Ended without adding it: it never will (a failed spawn's promised outputs fail with it).
    if (TERMINAL_TASK_STATUSES.has(generator.status) && generator.status !== 'succeeded') return generator.status;
    return 'pending';
  }
  return 'pending';
}

/**
 * After a spawn task succeeded: the tasks it generated, added to the flow. Should they no longer
 * fit the flow (another spawn added tasks in between), they are not added and the tasks waiting
 * for its promised outputs end upstream_failed, saying why.
 */
export function spawnAddsAfter(state: FlowState, event: FlowEvent): EventDraft[] {
  // A rerun or fork reusing a spawn task adds its tasks again, from its recorded output, once started.
  if (event.type === 'flow.started') return spawnAddsAll(state);
  if (event.type !== 'task.succeeded') return [];
  return spawnAdds(state, event.task_id);
}

/** Every succeeded spawn task whose tasks are not in the flow yet: used after rebuilding a flow from its log. */
export function spawnAddsAll(state: FlowState): EventDraft[] {
  return state.order.flatMap((id) => spawnAdds(state, id));
}

/** Whether a spawn task succeeded and the tasks it generated are not yet in the flow: the flow is not done. */
export function spawnPending(state: FlowState): boolean {
  return state.order.some((id) => {
    const task = state.tasks[id]!;
    return task.spec.executor === 'spawn' && task.status === 'succeeded' && !task.spawned && spawnAdds(state, id).some((d) => d.type === 'flow.tasks_added');
  });
}

function spawnAdds(state: FlowState, taskId: string): EventDraft[] {
  const task = state.tasks[taskId];
  if (task?.spec.executor !== 'spawn' || task.status !== 'succeeded' || task.spawned) return [];
  const output = task.output as { generated_count?: unknown; inner_output?: unknown } | undefined;
  if (output === undefined || output === null || typeof output !== 'object' || output.generated_count === 0) return [];
  const spawned = spawnedTasks(state, task.spec, output.inner_output);
  if (spawned.ok) {
    if (spawned.specs.every((s) => state.tasks[s.id] !== undefined)) return [];
    return tasksAddedDrafts(state, taskId, 'spawn', spawned.specs);
  }
  const reason = `spawn injection failed: ${spawned.problems.slice(0, 5).join('; ')}`;
  const prefix = `${taskId}/`;
  return state.order
    .filter((id) => state.tasks[id]!.status === 'pending' && state.tasks[id]!.spec.depends_on.some((d) => d.startsWith(prefix) && state.tasks[d] === undefined))
    .map((id) => ({ key: `${state.flow_id}:${id}:task.upstream_failed`, type: 'task.upstream_failed' as const, flow_id: state.flow_id, task_id: id, data: { reason, upstream: [taskId] } }));
}

