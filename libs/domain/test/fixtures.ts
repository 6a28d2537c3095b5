import {
  EVENT_VERSION,
  validateFlow,
  type EventDraft,
  type FlowDefinition,
  type FlowEvent,
  type TaskError,
} from '../src/index.js';

export const FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';

export function definition(tasks: Array<{ id: string; depends_on?: string[] }>): FlowDefinition {
  const result = validateFlow({ tasks: tasks.map((t) => ({ executor: 'noop', ...t })) });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.flow;
}

let counter = 0;
/** Test events get monotonically increasing ULID-shaped ids and times. */
export function stamp<E extends Omit<FlowEvent, 'id' | 'version' | 'time'>>(event: E): FlowEvent {
  counter++;
  const id = `01J${counter.toString(32).toUpperCase().replace(/[ILOU]/g, 'X').padStart(23, '0')}`;
  return { ...event, id, version: EVENT_VERSION, time: new Date(Date.UTC(2026, 0, 1) + counter * 1000).toISOString() } as FlowEvent;
}

export function fromDraft(draft: EventDraft): FlowEvent {
  const { key: _key, ...event } = draft;
  return stamp(event as Omit<FlowEvent, 'id' | 'version' | 'time'>);
}

export const error = (message = 'boom'): TaskError => ({ message, code: 'EXIT_CODE', retryable: true, exit_code: 1 });

export const ev = {
  submitted: (def: FlowDefinition, flow = FLOW) => stamp({ type: 'flow.submitted', flow_id: flow, data: { definition: def } }),
  started: (flow = FLOW) => stamp({ type: 'flow.started', flow_id: flow, data: {} }),
  ready: (task: string, def: FlowDefinition, flow = FLOW) => {
    const spec = def.tasks.find((t) => t.id === task)!;
    return stamp({ type: 'task.ready', flow_id: flow, task_id: task, data: { queue: spec.queue, priority: 0, spec } });
  },
  taskStarted: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.started', flow_id: flow, task_id: task, attempt, data: { executor_id: 'x1' } }),
  attemptFailed: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.attempt_failed', flow_id: flow, task_id: task, attempt, data: { error: error(), duration_ms: 5 } }),
  succeeded: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.succeeded', flow_id: flow, task_id: task, attempt, data: { output: { ok: task }, duration_ms: 10 } }),
  failed: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.failed', flow_id: flow, task_id: task, attempt, data: { error: error(), duration_ms: 10 } }),
  timedOut: (task: string, attempt = 1, flow = FLOW) =>
    stamp({ type: 'task.timed_out', flow_id: flow, task_id: task, attempt, data: { timeout_ms: 100, error: { message: 'timed out', code: 'TIMEOUT', retryable: true } } }),
  cancelRequested: (flow = FLOW) => stamp({ type: 'flow.cancel_requested', flow_id: flow, data: { reason: 'user asked' } }),
};

/** Shape of drafts without the payload noise: `type` or `type:task`. */
export function summary(drafts: EventDraft[]): string[] {
  return drafts.map((d) => ('task_id' in d ? `${d.type}:${d.task_id}` : d.type));
}
