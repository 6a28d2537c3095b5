import type { Ack, FlowOrigin, SignalWait, TaskError } from '../events/catalogue.js';
import type { FlowDefinition, TaskSpec } from '../flow/definition.js';

export type TaskStatus =
  | 'pending'
  | 'ready'
  /** An approval task that may run: it waits for an ack (or its timeout), holding no slot. */
  | 'waiting'
  | 'dispatched'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'timed_out'
  | 'skipped'
  | 'upstream_failed'
  | 'cancelled';

export type FlowStatus = 'submitted' | 'running' | 'cancelling' | 'succeeded' | 'failed' | 'cancelled';
export const FLOW_STATUSES_FOR_QUERY: readonly FlowStatus[] = ['submitted', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled'];

export const TERMINAL_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set([
  'succeeded',
  'failed',
  'timed_out',
  'skipped',
  'upstream_failed',
  'cancelled',
]);
/** What trigger rules count as a failed dependency. */
export const FAILED_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set(['failed', 'timed_out', 'upstream_failed', 'cancelled']);
/** Statuses that make a flow fail: its own failures, not their consequences downstream. */
export const FAILING_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set(['failed', 'timed_out']);
export const TERMINAL_FLOW_STATUSES: ReadonlySet<FlowStatus> = new Set(['succeeded', 'failed', 'cancelled']);

/** Rank of each task status: a transition only ever moves forward, which makes old events harmless. */
export const TASK_STATUS_RANK: Record<TaskStatus, number> = {
  pending: 0,
  ready: 1,
  waiting: 1,
  dispatched: 2,
  running: 3,
  succeeded: 4,
  failed: 4,
  timed_out: 4,
  skipped: 4,
  upstream_failed: 4,
  cancelled: 4,
};

export interface AttemptRecord {
  attempt: number;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  outcome?: 'succeeded' | 'failed' | 'timed_out' | 'cancelled';
  error?: TaskError;
  retry_delay_ms?: number;
  executor_id?: string;
}

export interface TaskState {
  id: string;
  spec: TaskSpec;
  status: TaskStatus;
  attempts: AttemptRecord[];
  ready_at?: string;
  dispatched_at?: string;
  started_at?: string;
  finished_at?: string;
  duration_ms?: number;
  error?: TaskError;
  output?: unknown;
  /** Succeeded in the parent flow and reused here (reruns and forks): never runs. */
  reused?: boolean;
  /** Why a ready task is waiting for the dispatcher (set by task.throttled, cleared on dispatch). */
  waiting_reason?: 'rate' | 'concurrency' | 'key_concurrency';
  /** Upstream tasks whose failure (upstream_failed) or skip (skipped by a trigger rule) decided this one. */
  upstream?: string[];
  /** The condition that was false, for a task skipped by it. */
  condition?: string;
  reason?: string;
  /** Who ended a waiting approval through the ack route. */
  ack?: Ack;
  /** What a waiting wait task waits for. */
  signal?: SignalWait;
  /** The flow a trigger task started (its id), and whether the task waits for it. */
  child?: { flow_id: string; queue: string; wait: boolean };
  /** Files the task's attempts stored (task.artifact_stored), by name: a later attempt's file replaces an earlier one's. */
  artifacts?: Record<string, ArtifactRecord>;
  /** A map task waiting for its instances (`<id>[0]`, `<id>[1]`, …): how many, how many may run at once, how many ended. */
  map?: { instances: number; concurrency: number; ended: number };
  /** A spawn task whose generated tasks were added to the flow. */
  spawned?: boolean;
}

export interface ArtifactRecord {
  name: string;
  bytes: number;
  sha256: string;
  object: string;
  attempt: number;
}

export interface FlowState {
  flow_id: string;
  status: FlowStatus;
  definition: FlowDefinition;
  /** Task ids in a topological order (declaration order among equals). */
  order: string[];
  tasks: Record<string, TaskState>;
  dependents: Record<string, string[]>;
  /** Count of tasks in a terminal state, kept so completion checks cost O(1). */
  terminal_count: number;
  submitted_at: string;
  started_at?: string;
  finished_at?: string;
  cancel_requested_at?: string;
  cancel_reason?: string;
  /** The flow's timeout passed: once its tasks have wound down it fails with FLOW_TIMEOUT (unless fail_fast stopped it first). */
  deadline_passed_at?: string;
  /** A task failed in a fail_fast flow: everything else winds down (but `always` tasks) and the flow fails. */
  fail_fast_at?: string;
  error?: string;
  idempotency_key?: string;
  lineage?: { kind: 'rerun' | 'fork'; parent_flow_id: string; at_seq: number };
  /** What started the flow when not a direct submission (template, schedule, trigger, parent flow). */
  origin?: FlowOrigin;
  /** Reruns and forks created from this flow. */
  derived?: Array<{ kind: 'rerun' | 'fork'; child_flow_id: string; at_seq: number }>;
  /** Stream sequence of the last event folded, when the shell provides it. */
  last_seq: number;
}

export function isTerminalFlow(state: FlowState | null): boolean {
  return state !== null && TERMINAL_FLOW_STATUSES.has(state.status);
}

/**
 * Whether a flow winding down lets `task` be: a fail_fast flow spares its `always` tasks (cleanup)
 * unless it is also cancelled or its timeout passes (as every service's KnownStops has it).
 */
export function sparedByFailFast(state: FlowState, task: TaskState): boolean {
  return state.fail_fast_at !== undefined && state.cancel_requested_at === undefined && state.deadline_passed_at === undefined && task.spec.trigger_rule === 'always';
}

/** Whether an ack (or a timeout) may still end `taskId`: it waits, and its flow is not about to cancel it. */
export function awaitsAck(state: FlowState, taskId: string): boolean {
  const task = Object.hasOwn(state.tasks, taskId) ? state.tasks[taskId] : undefined;
  if (task?.status !== 'waiting' || TERMINAL_FLOW_STATUSES.has(state.status)) return false;
  return state.status === 'running' || sparedByFailFast(state, task);
}
