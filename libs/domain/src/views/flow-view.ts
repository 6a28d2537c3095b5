import type { AttemptRecord, FlowState, FlowStatus, TaskStatus } from '../decider/state.js';
import type { TaskError } from '../events/catalogue.js';

/** The read model served by the gateway: what a person wants to see about one flow. */
export interface FlowView {
  flow_id: string;
  name?: string;
  status: FlowStatus;
  queue: string;
  labels?: Record<string, string>;
  submitted_at: string;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  error?: string;
  counts: Record<TaskStatus, number>;
  total: number;
  tasks: TaskView[];
  last_seq: number;
}

export interface TaskView {
  id: string;
  name?: string;
  executor: string;
  queue: string;
  depends_on: string[];
  status: TaskStatus;
  attempts: AttemptRecord[];
  ready_at?: string;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  error?: TaskError;
  output?: unknown;
  skipped_because?: string[];
  reason?: string;
  /** Set while a ready task waits for its queue: rate, concurrency or key_concurrency. */
  waiting_reason?: string;
}

const EMPTY_COUNTS: Record<TaskStatus, number> = {
  pending: 0,
  ready: 0,
  dispatched: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  timed_out: 0,
  skipped: 0,
  cancelled: 0,
};

export function toFlowView(state: FlowState): FlowView {
  const counts = { ...EMPTY_COUNTS };
  const tasks = state.definition.tasks.map((spec): TaskView => {
    const task = state.tasks[spec.id]!;
    counts[task.status]++;
    return {
      id: task.id,
      ...(spec.name !== undefined && { name: spec.name }),
      executor: spec.executor,
      queue: spec.queue,
      depends_on: spec.depends_on,
      status: task.status,
      attempts: task.attempts,
      ...(task.ready_at !== undefined && { ready_at: task.ready_at }),
      ...(task.started_at !== undefined && { started_at: task.started_at }),
      ...(task.finished_at !== undefined && { finished_at: task.finished_at }),
      ...(task.duration_ms !== undefined && { duration_ms: task.duration_ms }),
      ...(task.error !== undefined && { error: task.error }),
      ...(task.output !== undefined && { output: task.output }),
      ...(task.skipped_because !== undefined && { skipped_because: task.skipped_because }),
      ...(task.reason !== undefined && { reason: task.reason }),
      ...(task.waiting_reason !== undefined && { waiting_reason: task.waiting_reason }),
    };
  });
  const { definition } = state;
  return {
    flow_id: state.flow_id,
    ...(definition.name !== undefined && { name: definition.name }),
    status: state.status,
    queue: definition.queue,
    ...(definition.labels !== undefined && { labels: definition.labels }),
    submitted_at: state.submitted_at,
    ...(state.started_at !== undefined && { started_at: state.started_at }),
    ...(state.finished_at !== undefined && { finished_at: state.finished_at }),
    ...(state.finished_at !== undefined && {
      duration_ms: Date.parse(state.finished_at) - Date.parse(state.submitted_at),
    }),
    ...(state.error !== undefined && { error: state.error }),
    counts,
    total: state.order.length,
    tasks,
    last_seq: state.last_seq,
  };
}
