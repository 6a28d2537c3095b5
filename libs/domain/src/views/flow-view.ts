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
  lineage?: FlowState['lineage'];
  derived?: FlowState['derived'];
  /** Set on a stored view too large to keep its tasks; readers fold the tasks from the log. */
  tasks_omitted?: boolean;
  last_seq: number;
}

/** What the flows list shows; changes only when the flow's own status does. The view extends it. */
export interface FlowSummary {
  flow_id: string;
  name?: string;
  status: FlowStatus;
  queue: string;
  labels?: Record<string, string>;
  submitted_at: string;
  finished_at?: string;
  total: number;
  lineage?: FlowState['lineage'];
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
  /** Succeeded in the parent flow of a rerun or fork; not run again. */
  reused?: boolean;
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

/** Outputs larger than this (as JSON) are summarised in views; the full output stays in the history. */
export const VIEW_OUTPUT_LIMIT = 4096;

export interface OutputSummary {
  truncated: true;
  bytes: number;
  preview: string;
  /** Where the whole output is. */
  see: 'events';
}

export function summariseOutput(output: unknown): unknown {
  if (output === undefined || output === null) return output;
  const json = JSON.stringify(output);
  if (json === undefined || json.length <= VIEW_OUTPUT_LIMIT) return output;
  return { truncated: true, bytes: json.length, preview: json.slice(0, 1024), see: 'events' } satisfies OutputSummary;
}

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
      ...(task.output !== undefined && { output: summariseOutput(task.output) }),
      ...(task.skipped_because !== undefined && { skipped_because: task.skipped_because }),
      ...(task.reason !== undefined && { reason: task.reason }),
      ...(task.waiting_reason !== undefined && { waiting_reason: task.waiting_reason }),
      ...(task.reused && { reused: true }),
    };
  });
  return {
    ...toFlowSummary(state),
    ...(state.started_at !== undefined && { started_at: state.started_at }),
    ...(state.finished_at !== undefined && {
      duration_ms: Date.parse(state.finished_at) - Date.parse(state.submitted_at),
    }),
    ...(state.error !== undefined && { error: state.error }),
    counts,
    tasks,
    ...(state.derived && { derived: state.derived }),
    last_seq: state.last_seq,
  };
}

export function toFlowSummary(state: FlowState): FlowSummary {
  const { definition } = state;
  return {
    flow_id: state.flow_id,
    ...(definition.name !== undefined && { name: definition.name }),
    status: state.status,
    queue: definition.queue,
    ...(definition.labels !== undefined && { labels: definition.labels }),
    submitted_at: state.submitted_at,
    ...(state.finished_at !== undefined && { finished_at: state.finished_at }),
    total: state.order.length,
    ...(state.lineage && { lineage: state.lineage }),
  };
}
