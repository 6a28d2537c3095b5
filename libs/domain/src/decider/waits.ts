import type { EventDraft, TaskError } from '../events/catalogue.js';
import type { TaskSpec } from '../flow/definition.js';
import { DEFAULT_APPROVAL_MESSAGE, DEFAULT_SIGNAL_LOOKBACK_SECS, MAX_TRIGGER_DEPTH, TriggerConfig, WaitConfig } from '../flow/executors.js';
import { validateFlow } from '../flow/validate.js';
import type { FlowState, TaskStatus } from './state.js';

/** How a task that may run begins when no executor runs it: the status it moves to and its events. */
export interface Start {
  status: TaskStatus;
  drafts: EventDraft[];
}

/** Problems of a child flow named in a failure message; the rest are counted. */
const NAMED_PROBLEMS = 5;

/**
 * Tasks that wait rather than run, once their dependencies, trigger rule and condition let them:
 * an approval waits for an ack, a wait task for a signal, a trigger task for the child flow it
 * starts. Undefined for tasks an executor runs. `spec` is the task's resolved spec.
 */
export function waitStart(state: FlowState, spec: TaskSpec): Start | undefined {
  switch (spec.executor) {
    case 'approval':
      return waiting(state, spec, { output: { awaiting_approval: true, message: typeof spec.config.message === 'string' ? spec.config.message : DEFAULT_APPROVAL_MESSAGE, code: '' } });
    case 'wait': {
      const config = WaitConfig.safeParse(spec.config);
      if (!config.success) return failed(state, spec, 'CONFIG_INVALID', `the wait task's config is not valid: ${config.error.issues[0]?.message ?? 'unknown problem'}`);
      const { signal, match, lookback_secs } = config.data;
      return waiting(state, spec, { signal: { name: signal, ...(match !== undefined && { match }), lookback_secs: lookback_secs ?? DEFAULT_SIGNAL_LOOKBACK_SECS } });
    }
    case 'trigger':
      return triggerStart(state, spec);
    default:
      return undefined;
  }
}

/**
 * A trigger task: its child flow, validated like a submission (its definition given, or a template
 * its shell resolves), at most MAX_TRIGGER_DEPTH flows deep. The decision leaves the child's id
 * empty: the planner's shell derives it from the parent and the task and submits the child once.
 */
function triggerStart(state: FlowState, spec: TaskSpec): Start {
  const parsed = TriggerConfig.safeParse(spec.config);
  if (!parsed.success) return failed(state, spec, 'CONFIG_INVALID', `the trigger task's config is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ')}`);
  const config = parsed.data;
  const depth = (state.origin?.parent?.depth ?? 0) + 1;
  if (depth > MAX_TRIGGER_DEPTH) {
    return failed(state, spec, 'TRIGGER_DEPTH_EXCEEDED', `flow "${state.flow_id}" is ${depth - 1} flows deep; a trigger task may start flows at most ${MAX_TRIGGER_DEPTH} deep, so its child would be too deep`);
  }
  const child = { flow_id: '', queue: '', wait: config.wait, depth };
  if (config.template !== undefined) {
    return waiting(state, spec, { child: { ...child, template: { name: config.template, ...(config.version !== undefined && { version: config.version }) }, ...(config.params !== undefined && { params: config.params }) } });
  }
  const given = config.flow;
  if (given === null || typeof given !== 'object' || Array.isArray(given)) return failed(state, spec, 'CONFIG_INVALID', 'the trigger task\'s "flow" must be a flow definition (an object with "tasks")');
  const body = given as Record<string, unknown>;
  const queue = config.queue ?? (typeof body.queue === 'string' ? body.queue : spec.queue);
  const validated = validateFlow({ ...body, queue, ...(config.params !== undefined && { params: { ...(body.params as object | undefined), ...config.params } }) });
  if (!validated.ok) {
    const shown = validated.problems.slice(0, NAMED_PROBLEMS).map((p) => `${p.path}: ${p.message}`);
    const more = validated.problems.length > NAMED_PROBLEMS ? `; and ${validated.problems.length - NAMED_PROBLEMS} more` : '';
    return failed(state, spec, 'CHILD_FLOW_INVALID', `the child flow is not valid (${validated.problems.length} problem${validated.problems.length === 1 ? '' : 's'}): ${shown.join('; ')}${more}`);
  }
  return waiting(state, spec, { child: { ...child, queue: validated.flow.queue, definition: validated.flow } });
}

type WaitingData = Extract<EventDraft, { type: 'task.waiting' }>['data'];

function waiting(state: FlowState, spec: TaskSpec, data: Omit<WaitingData, 'timeout_secs'>): Start {
  return {
    status: 'waiting',
    drafts: [
      {
        key: `${state.flow_id}:${spec.id}:task.waiting`,
        type: 'task.waiting',
        flow_id: state.flow_id,
        task_id: spec.id,
        data: { ...data, ...(spec.timeout_secs !== undefined && { timeout_secs: spec.timeout_secs }) },
      },
    ],
  };
}

function failed(state: FlowState, spec: TaskSpec, code: string, message: string): Start {
  const error: TaskError = { message, code, retryable: false };
  return {
    status: 'failed',
    drafts: [{ key: `${state.flow_id}:${spec.id}:task.failed`, type: 'task.failed', flow_id: state.flow_id, task_id: spec.id, attempt: 1, data: { error, duration_ms: 0 } }],
  };
}

/**
 * A trigger task that does not wait succeeds once its child is submitted (its task.waiting stored
 * with the child's id), with Tasked's output.
 */
export function asyncChildSucceeded(state: FlowState, taskId: string): EventDraft | undefined {
  const task = state.tasks[taskId];
  if (task?.status !== 'waiting' || task.child === undefined || task.child.wait || task.child.flow_id === '') return undefined;
  return {
    key: `${state.flow_id}:${taskId}:task.succeeded`,
    type: 'task.succeeded',
    flow_id: state.flow_id,
    task_id: taskId,
    attempt: 1,
    data: { output: { flow_id: task.child.flow_id, queue_id: task.child.queue, async: true }, duration_ms: 0 },
  };
}

/**
 * When a flow winds down and cancels a waiting trigger task, its child is cancelled too: the
 * request goes to the child's own log.
 */
export function childCancel(state: FlowState, taskId: string): EventDraft | undefined {
  const child = state.tasks[taskId]?.child;
  if (child === undefined || child.flow_id === '' || !child.wait) return undefined;
  return {
    key: `${child.flow_id}:flow.cancel_requested:parent`,
    type: 'flow.cancel_requested',
    flow_id: child.flow_id,
    data: { reason: `its parent flow ${state.flow_id} cancelled task "${taskId}": ${state.cancel_reason ?? 'flow cancelled'}`, requested_by: `flow:${state.flow_id}` },
  };
}
