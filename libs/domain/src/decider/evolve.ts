import type { EventOf, FlowEvent } from '../events/catalogue.js';
import type { TaskSpec } from '../flow/definition.js';
import { dependentsMap, topologicalOrder } from '../flow/graph.js';
import {
  TASK_STATUS_RANK,
  TERMINAL_FLOW_STATUSES,
  TERMINAL_TASK_STATUSES,
  type AttemptRecord,
  type FlowState,
  type TaskState,
  type TaskStatus,
} from './state.js';

/**
 * Folds one event into a flow's state. Deterministic and free of I/O; it takes time only from the
 * event. For speed on large flows it updates `state` in place and returns it: callers own their
 * state object (use `cloneState` to keep a copy).
 *
 * Every transition only moves forward, so a duplicated, re-delivered or out-of-date event is a
 * no-op: folding a history twice, or with duplicates, gives the same state.
 */
export function evolve(state: FlowState | null, event: FlowEvent, seq = 0): FlowState | null {
  if (event.type === 'flow.submitted') return state ?? initialState(event, seq);
  if (state === null || event.flow_id !== state.flow_id) return state;
  if (seq > state.last_seq) state.last_seq = seq;
  apply(state, event);
  return state;
}

/** The output of a skipped task, as Tasked gives it: `{skipped: true, condition}`, or the reason when a trigger rule skipped it. */
export function skippedOutput(data: { reason: string; condition?: string }): unknown {
  return data.condition !== undefined ? { skipped: true, condition: data.condition } : { skipped: true, reason: data.reason };
}

export function fold(events: Iterable<FlowEvent>): FlowState | null {
  let state: FlowState | null = null;
  for (const event of events) state = evolve(state, event);
  return state;
}

export function cloneState(state: FlowState): FlowState {
  return structuredClone(state);
}

function initialState(event: EventOf<'flow.submitted'>, seq: number): FlowState {
  const { definition } = event.data;
  // A programming error, not bad input: the shell hydrates every submission before folding it.
  if (definition === undefined) throw new Error(`flow.submitted of flow ${event.flow_id} was folded before its stored definition was loaded`);
  const deps = knownDeps(definition.tasks);
  const tasks: Record<string, TaskState> = {};
  const reused = event.data.lineage?.reused ?? {};
  let terminal = 0;
  for (const spec of definition.tasks) {
    const previous = reused[spec.id];
    if (previous) {
      terminal++;
      tasks[spec.id] = {
        id: spec.id,
        spec,
        status: 'succeeded',
        attempts: [],
        reused: true,
        ...(previous.output !== undefined && { output: previous.output }),
        ...(previous.duration_ms !== undefined && { duration_ms: previous.duration_ms }),
        ...(previous.artifacts !== undefined && { artifacts: previous.artifacts }),
      };
    } else {
      tasks[spec.id] = { id: spec.id, spec, status: 'pending', attempts: [] };
    }
  }
  const lineage = event.data.lineage;
  return {
    flow_id: event.flow_id,
    status: 'submitted',
    definition,
    order: topologicalOrder(deps),
    tasks,
    dependents: withPromises(Object.fromEntries(dependentsMap(deps)), definition.tasks),
    terminal_count: terminal,
    submitted_at: event.time,
    ...(lineage && { lineage: { kind: lineage.kind, parent_flow_id: lineage.parent_flow_id, at_seq: lineage.at_seq } }),
    ...(event.data.idempotency_key !== undefined && { idempotency_key: event.data.idempotency_key }),
    ...(event.data.origin !== undefined && { origin: event.data.origin }),
    last_seq: seq,
  };
}

function apply(state: FlowState, event: FlowEvent): void {
  switch (event.type) {
    case 'flow.submitted':
      return;
    case 'flow.started':
      if (state.status === 'submitted') {
        state.status = 'running';
        state.started_at = event.time;
      }
      return;
    case 'flow.cancel_requested':
      // A cancel during fail_fast is recorded: it also stops the `always` tasks fail_fast spares.
      if (state.status === 'cancelling' && state.fail_fast_at !== undefined && state.cancel_requested_at === undefined) {
        state.cancel_requested_at = event.time;
        return;
      }
      if (!TERMINAL_FLOW_STATUSES.has(state.status) && state.status !== 'cancelling') {
        state.status = 'cancelling';
        state.cancel_requested_at = event.time;
        if (event.data.reason !== undefined) state.cancel_reason = event.data.reason;
      }
      return;
    case 'flow.deadline_passed':
      // The timeout passing during fail_fast is recorded, as a cancel is: it stops the `always` tasks too.
      if (state.status === 'cancelling' && state.fail_fast_at !== undefined && state.deadline_passed_at === undefined) {
        state.deadline_passed_at = event.time;
        return;
      }
      if (!TERMINAL_FLOW_STATUSES.has(state.status) && state.status !== 'cancelling') {
        state.status = 'cancelling';
        state.deadline_passed_at = event.time;
        state.cancel_reason = `the flow's timeout of ${event.data.timeout_secs}s passed`;
      }
      return;
    case 'flow.fail_fast':
      if (!TERMINAL_FLOW_STATUSES.has(state.status) && state.status !== 'cancelling') {
        state.status = 'cancelling';
        state.fail_fast_at = event.time;
        state.cancel_reason = event.data.reason;
      }
      return;
    case 'flow.succeeded':
    case 'flow.failed':
    case 'flow.cancelled':
      if (!TERMINAL_FLOW_STATUSES.has(state.status)) {
        state.status = event.type === 'flow.succeeded' ? 'succeeded' : event.type === 'flow.failed' ? 'failed' : 'cancelled';
        state.finished_at = event.time;
        if (event.type !== 'flow.succeeded') state.error = event.data.reason;
      }
      return;
    case 'flow.derived':
      if (!(state.derived ?? []).some((d) => d.child_flow_id === event.data.child_flow_id)) {
        state.derived = [...(state.derived ?? []), { ...event.data }];
      }
      return;
    case 'flow.tasks_added':
      addTasks(state, event.data.tasks);
      if (event.data.kind === 'spawn') withTask(state, event.data.by_task, (task) => (task.spawned = true));
      return;
    case 'flow.webhook_attempted':
    case 'flow.webhook_delivered':
    case 'flow.webhook_abandoned':
      // Deliveries follow the flow's end and report on it: they never change what it was.
      return;
    case 'task.ready':
      withTask(state, event.task_id, (task) => {
        if (advance(state, task, 'ready')) task.ready_at = event.time;
      });
      return;
    case 'task.waiting':
      withTask(state, event.task_id, (task) => {
        if (!advance(state, task, 'waiting')) return;
        task.ready_at = event.time;
        const { output, signal, child, map } = event.data;
        if (output !== undefined) task.output = output;
        if (map !== undefined) task.map = { instances: map.instances, concurrency: map.concurrency, ended: endedInstances(state, task.id, map.instances) };
        if (signal !== undefined) task.signal = signal;
        if (child !== undefined) task.child = { flow_id: child.flow_id, queue: child.queue, wait: child.wait };
      });
      return;
    case 'task.throttled':
      withTask(state, event.task_id, (task) => {
        if (task.status === 'ready') task.waiting_reason = event.data.reason;
      });
      return;
    case 'task.dispatched':
      withTask(state, event.task_id, (task) => {
        if (advance(state, task, 'dispatched')) task.dispatched_at = event.time;
        delete task.waiting_reason;
      });
      return;
    case 'task.started':
      withTask(state, event.task_id, (task) => {
        if (TERMINAL_TASK_STATUSES.has(task.status)) return;
        advance(state, task, 'running');
        if (event.data.dispatch !== undefined) task.dispatched_at ??= event.data.dispatch.at;
        delete task.waiting_reason;
        task.started_at ??= event.time;
        const attempt = attemptOf(task, event.attempt);
        attempt.started_at ??= event.time;
        attempt.executor_id = event.data.executor_id;
      });
      return;
    case 'task.attempt_failed':
      withTask(state, event.task_id, (task) => {
        if (TERMINAL_TASK_STATUSES.has(task.status)) return;
        const attempt = attemptOf(task, event.attempt);
        attempt.outcome = event.data.error.code === 'TIMEOUT' ? 'timed_out' : 'failed';
        attempt.error = event.data.error;
        attempt.duration_ms = event.data.duration_ms;
        attempt.finished_at = event.time;
        task.error = event.data.error;
      });
      return;
    case 'task.retry_scheduled':
      withTask(state, event.task_id, (task) => {
        if (TERMINAL_TASK_STATUSES.has(task.status)) return;
        attemptOf(task, event.attempt).retry_delay_ms = event.data.delay_ms;
      });
      return;
    case 'task.artifact_stored':
      withTask(state, event.task_id, (task) => {
        if (TERMINAL_TASK_STATUSES.has(task.status)) return;
        const { name, bytes, sha256, object } = event.data;
        (task.artifacts ??= {})[name] = { name, bytes, sha256, object, attempt: event.attempt };
      });
      return;
    case 'task.succeeded':
      withTask(state, event.task_id, (task) => {
        if (!finish(state, task, 'succeeded', event.time)) return;
        const attempt = attemptOf(task, event.attempt);
        attempt.outcome = 'succeeded';
        attempt.duration_ms = event.data.duration_ms;
        attempt.finished_at = event.time;
        task.duration_ms = event.data.duration_ms;
        task.output = event.data.output;
        if (event.data.ack !== undefined) task.ack = event.data.ack;
        delete task.error;
      });
      return;
    case 'task.failed':
    case 'task.timed_out':
      withTask(state, event.task_id, (task) => {
        if (!finish(state, task, event.type === 'task.failed' ? 'failed' : 'timed_out', event.time)) return;
        const attempt = attemptOf(task, event.attempt);
        attempt.outcome = event.type === 'task.failed' ? 'failed' : 'timed_out';
        attempt.error = event.data.error;
        attempt.finished_at ??= event.time;
        task.error = event.data.error;
        if (event.type === 'task.failed') {
          task.duration_ms = event.data.duration_ms;
          if (event.data.ack !== undefined) task.ack = event.data.ack;
          if (event.data.output !== undefined) task.output = event.data.output;
        }
      });
      return;
    case 'task.skipped':
      withTask(state, event.task_id, (task) => {
        if (!finish(state, task, 'skipped', event.time)) return;
        const { condition, upstream, reason } = event.data;
        task.reason = reason;
        if (upstream !== undefined) task.upstream = upstream;
        if (condition !== undefined) task.condition = condition;
        task.output = skippedOutput(event.data);
      });
      return;
    case 'task.upstream_failed':
      withTask(state, event.task_id, (task) => {
        if (!finish(state, task, 'upstream_failed', event.time)) return;
        task.reason = event.data.reason;
        task.upstream = event.data.upstream;
      });
      return;
    case 'task.cancelled':
      withTask(state, event.task_id, (task) => {
        if (!finish(state, task, 'cancelled', event.time)) return;
        task.reason = event.data.reason;
        const last = task.attempts[task.attempts.length - 1];
        if (last && last.outcome === undefined) {
          last.outcome = 'cancelled';
          last.finished_at = event.time;
        }
      });
      return;
    default:
      return assertNever(event);
  }
}

function withTask(state: FlowState, taskId: string, update: (task: TaskState) => void): void {
  const task = state.tasks[taskId];
  if (task !== undefined) update(task);
}

/** Moves a non-terminal task forward to `status`; false when that would be a step back or sideways. */
function advance(state: FlowState, task: TaskState, status: TaskStatus): boolean {
  if (TASK_STATUS_RANK[status] <= TASK_STATUS_RANK[task.status]) return false;
  task.status = status;
  if (TERMINAL_TASK_STATUSES.has(status)) {
    state.terminal_count++;
    const map = task.spec.instance_of !== undefined ? state.tasks[task.spec.instance_of.task]?.map : undefined;
    if (map !== undefined) map.ended++;
  }
  return true;
}

/**
 * A task depending on a spawn task's promised output (`<spawn id>/<name>`, not in the flow yet) is
 * also a dependent of the spawn task, so the spawn's end examines it again.
 */
function withPromises(dependents: Record<string, string[]>, tasks: readonly TaskSpec[]): Record<string, string[]> {
  for (const task of tasks) {
    for (const dep of task.depends_on) {
      if (Object.hasOwn(dependents, dep)) continue;
      for (let slash = dep.lastIndexOf('/'); slash > 0; slash = dep.lastIndexOf('/', slash - 1)) {
        const generator = dep.slice(0, slash);
        if (!Object.hasOwn(dependents, generator)) continue;
        if (!dependents[generator]!.includes(task.id)) dependents[generator]!.push(task.id);
        break;
      }
    }
  }
  return dependents;
}

/** `id -> depends_on` over the tasks given, leaving out dependencies on tasks not (yet) in the flow. */
function knownDeps(tasks: readonly TaskSpec[]): Map<string, string[]> {
  const ids = new Set(tasks.map((t) => t.id));
  return new Map(tasks.map((t) => [t.id, t.depends_on.filter((d) => ids.has(d))]));
}

/**
 * Tasks added while the flow runs (a map's instances, a spawn's tasks) join the definition, the
 * order and the dependents as if they had been submitted; one already there is not added again.
 * The definition is replaced, not changed in place: it belongs to the flow.submitted event.
 */
function addTasks(state: FlowState, specs: readonly TaskSpec[]): void {
  if (TERMINAL_FLOW_STATUSES.has(state.status)) return;
  const addedIds = new Set<string>();
  const added: TaskSpec[] = [];
  for (const spec of specs) {
    if (Object.hasOwn(state.tasks, spec.id) || addedIds.has(spec.id)) continue;
    addedIds.add(spec.id);
    added.push(spec);
  }
  if (added.length === 0) return;
  // Tasks of the flow that were waiting for one of these (a spawn's promised outputs) now follow it.
  let waitedFor = false;
  for (const spec of state.definition.tasks) {
    for (const dep of spec.depends_on) {
      if (!addedIds.has(dep)) continue;
      (state.dependents[dep] ??= []).push(spec.id);
      waitedFor = true;
    }
  }
  state.definition = { ...state.definition, tasks: [...state.definition.tasks, ...added] };
  const known = new Set(state.order);
  let appendable = !waitedFor;
  for (const spec of added) {
    state.tasks[spec.id] = { id: spec.id, spec, status: 'pending', attempts: [] };
    state.dependents[spec.id] ??= [];
  }
  for (const spec of added) {
    for (const dep of spec.depends_on) {
      if (Object.hasOwn(state.tasks, dep)) state.dependents[dep]!.push(spec.id);
      if (!known.has(dep)) appendable = false;
    }
    known.add(spec.id);
  }
  state.order = appendable ? [...state.order, ...added.map((s) => s.id)] : topologicalOrder(knownDeps(state.definition.tasks));
}

/** Instances of map task `taskId` already ended (cancelled with the flow before the map's wait was folded). */
function endedInstances(state: FlowState, taskId: string, instances: number): number {
  let ended = 0;
  for (let i = 0; i < instances; i++) {
    const instance = state.tasks[`${taskId}[${i}]`];
    if (instance !== undefined && TERMINAL_TASK_STATUSES.has(instance.status)) ended++;
  }
  return ended;
}

function finish(state: FlowState, task: TaskState, status: TaskStatus, time: string): boolean {
  if (!advance(state, task, status)) return false;
  task.finished_at = time;
  return true;
}

function attemptOf(task: TaskState, number: number): AttemptRecord {
  let record = task.attempts.find((a) => a.attempt === number);
  if (record === undefined) {
    record = { attempt: number };
    task.attempts.push(record);
    task.attempts.sort((a, b) => a.attempt - b.attempt);
  }
  return record;
}

export function assertNever(value: never): never {
  throw new Error(`unhandled event: ${JSON.stringify(value)}`);
}
