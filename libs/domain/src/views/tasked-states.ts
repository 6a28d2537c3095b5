import type { FlowStatus, TaskStatus } from '../decider/state.js';

/** Tasked's task states (snake_case), in its order. */
export const TASKED_TASK_STATES = ['pending', 'ready', 'running', 'succeeded', 'failed', 'delayed', 'cancelled'] as const;
export type TaskedTaskState = (typeof TASKED_TASK_STATES)[number];

/** Tasked's flow states: a flow is `running` from its submission until it ends. */
export const TASKED_FLOW_STATES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskedFlowState = (typeof TASKED_FLOW_STATES)[number];

/**
 * Taskstream's richer task statuses as Tasked's states (docs/api.md has the table):
 * - `waiting` (an approval awaiting its ack, a wait or trigger task awaiting its signal or child) is
 *   Tasked's `running`: Tasked's approval task stays running with its `awaiting_approval` output;
 * - `dispatched` (a work item sent, not yet started; only in histories earlier dispatchers recorded) is
 *   `running`: Tasked holds the slot from then. A task admitted now stays `ready` until it starts;
 * - `skipped` is `succeeded` (Tasked's condition-skipped task succeeds with `{skipped, condition}`);
 * - `timed_out` is `failed`; `upstream_failed` is `cancelled`, as Tasked's cascade cancels dependents;
 * - a task between attempts (its last attempt failed, a retry scheduled) is `delayed`.
 */
export function taskedTaskState(status: TaskStatus, lastAttemptOutcome?: string): TaskedTaskState {
  switch (status) {
    case 'pending':
      return 'pending';
    case 'ready':
      return lastAttemptOutcome === 'failed' || lastAttemptOutcome === 'timed_out' ? 'delayed' : 'ready';
    case 'waiting':
    case 'dispatched':
    case 'running':
      return lastAttemptOutcome === 'failed' || lastAttemptOutcome === 'timed_out' ? 'delayed' : 'running';
    case 'succeeded':
    case 'skipped':
      return 'succeeded';
    case 'failed':
    case 'timed_out':
      return 'failed';
    case 'upstream_failed':
    case 'cancelled':
      return 'cancelled';
    default:
      return unreachable(status);
  }
}

/** `submitted` and `cancelling` are `running`: the flow has not ended yet. */
export function taskedFlowState(status: FlowStatus): TaskedFlowState {
  switch (status) {
    case 'submitted':
    case 'running':
    case 'cancelling':
      return 'running';
    case 'succeeded':
    case 'failed':
    case 'cancelled':
      return status;
    default:
      return unreachable(status);
  }
}

/**
 * Tasked's counts: succeeded tasks (a skipped one counts, as Tasked's condition-skipped task
 * succeeds) and failed tasks (failed or timed out; dependents cancelled by a failure are neither).
 */
export function taskedCounts(counts: Partial<Record<TaskStatus, number>>): { tasks_succeeded: number; tasks_failed: number } {
  return {
    tasks_succeeded: (counts.succeeded ?? 0) + (counts.skipped ?? 0),
    tasks_failed: (counts.failed ?? 0) + (counts.timed_out ?? 0),
  };
}

function unreachable(value: never): never {
  throw new Error(`unknown status ${String(value)}`);
}
