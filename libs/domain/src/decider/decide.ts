import type { EventDraft, FlowEvent } from '../events/catalogue.js';
import {
  BLOCKING_TASK_STATUSES,
  TERMINAL_FLOW_STATUSES,
  TERMINAL_TASK_STATUSES,
  type FlowState,
  type TaskStatus,
} from './state.js';

/**
 * What the planner must append after `event` has been folded into `state`. Pure and deterministic:
 * every draft carries a key derived from the flow, task and kind of decision only, so re-deciding
 * after a crash yields the same keys and JetStream's de-duplication or the fold drops the repeat.
 *
 * Only tasks the event can have affected are examined, so a flow of n tasks costs O(n) overall
 * rather than O(n) per event; `decideAll` examines everything and is the oracle in tests.
 */
export function decide(state: FlowState | null, event: FlowEvent): EventDraft[] {
  if (state === null || TERMINAL_FLOW_STATUSES.has(state.status)) return [];
  return plan(state, affectedBy(state, event));
}

/** Decisions from the state alone, looking at every task: used after rebuilding a flow from its log. */
export function decideAll(state: FlowState | null): EventDraft[] {
  if (state === null || TERMINAL_FLOW_STATUSES.has(state.status)) return [];
  return plan(state, state.order);
}

function affectedBy(state: FlowState, event: FlowEvent): readonly string[] {
  switch (event.type) {
    case 'flow.submitted':
    case 'flow.started':
    case 'flow.cancel_requested':
    case 'flow.deadline_passed':
      return state.order;
    case 'task.succeeded':
    case 'task.failed':
    case 'task.timed_out':
    case 'task.skipped':
    case 'task.cancelled':
      return state.dependents[event.task_id] ?? [];
    case 'task.ready':
    case 'task.throttled':
    case 'task.dispatched':
    case 'task.started':
      return state.status === 'cancelling' ? [event.task_id] : [];
    default:
      return [];
  }
}

function plan(state: FlowState, candidates: readonly string[]): EventDraft[] {
  const flowId = state.flow_id;
  const drafts: EventDraft[] = [];
  if (state.status === 'submitted') drafts.push({ key: `${flowId}:flow.started`, type: 'flow.started', flow_id: flowId, data: {} });

  // Statuses this decision round moves tasks to, before their events exist.
  const decided = new Map<string, TaskStatus>();
  const statusOf = (id: string): TaskStatus => decided.get(id) ?? state.tasks[id]!.status;
  const cancelling = state.status === 'cancelling';
  const queue = [...candidates];
  const queued = new Set(queue);

  for (let i = 0; i < queue.length; i++) {
    const id = queue[i]!;
    const task = state.tasks[id];
    if (task === undefined) continue;
    const status = statusOf(id);

    if (cancelling) {
      if (status === 'pending' || status === 'ready' || status === 'dispatched') {
        decided.set(id, 'cancelled');
        drafts.push({
          key: `${flowId}:${id}:task.cancelled`,
          type: 'task.cancelled',
          flow_id: flowId,
          task_id: id,
          data: { reason: state.cancel_reason ?? 'flow cancelled' },
        });
      }
      continue;
    }
    if (status !== 'pending') continue;

    const deps = task.spec.depends_on;
    const blockers = deps.filter((d) => BLOCKING_TASK_STATUSES.has(statusOf(d)));
    if (blockers.length > 0) {
      decided.set(id, 'skipped');
      drafts.push({
        key: `${flowId}:${id}:task.skipped`,
        type: 'task.skipped',
        flow_id: flowId,
        task_id: id,
        data: { reason: `upstream ${listed(blockers.map((b) => `"${b}" ${statusOf(b)}`))}`, upstream: blockers.slice(0, MAX_LISTED_IDS) },
      });
      for (const next of state.dependents[id] ?? []) {
        if (!queued.has(next)) {
          queued.add(next);
          queue.push(next);
        }
      }
    } else if (deps.every((d) => statusOf(d) === 'succeeded')) {
      decided.set(id, 'ready');
      drafts.push({
        key: `${flowId}:${id}:task.ready`,
        type: 'task.ready',
        flow_id: flowId,
        task_id: id,
        data: {
          queue: task.spec.queue,
          priority: task.spec.priority,
          ...(task.spec.concurrency_key !== undefined && { concurrency_key: task.spec.concurrency_key }),
          spec: task.spec,
        },
      });
    }
  }

  const finished = [...decided.values()].filter((s) => TERMINAL_TASK_STATUSES.has(s)).length;
  if (state.terminal_count + finished === state.order.length) drafts.push(completion(state, statusOf));
  return drafts;
}

/**
 * Events name at most this many tasks (the first ones in flow order); a flow of 10,000 tasks would
 * otherwise list more than a message can carry. The flow's view has every task's status.
 */
export const MAX_LISTED_IDS = 100;
const NAMED_IN_REASONS = 10;

function listed(items: string[]): string {
  if (items.length <= NAMED_IN_REASONS) return items.join(', ');
  return `${items.slice(0, NAMED_IN_REASONS).join(', ')} and ${items.length - NAMED_IN_REASONS} more`;
}

function completion(state: FlowState, statusOf: (id: string) => TaskStatus): EventDraft {
  const flowId = state.flow_id;
  const total = state.order.length;
  const succeeded = state.order.filter((id) => statusOf(id) === 'succeeded').length;
  if (state.status === 'cancelling' && state.deadline_passed_at !== undefined) {
    const unfinished = state.order.filter((id) => statusOf(id) !== 'succeeded');
    return {
      key: `${flowId}:flow.failed`,
      type: 'flow.failed',
      flow_id: flowId,
      data: {
        failed_tasks: unfinished.filter((id) => statusOf(id) !== 'skipped').slice(0, MAX_LISTED_IDS),
        skipped_tasks: unfinished.filter((id) => statusOf(id) === 'skipped').slice(0, MAX_LISTED_IDS),
        succeeded,
        total,
        reason: `${state.cancel_reason}: ${unfinished.length} of ${total} tasks did not finish`,
        code: 'FLOW_TIMEOUT',
      },
    };
  }
  if (state.status === 'cancelling') {
    return {
      key: `${flowId}:flow.cancelled`,
      type: 'flow.cancelled',
      flow_id: flowId,
      data: { reason: state.cancel_reason ?? 'cancelled on request', succeeded, total },
    };
  }
  const failed = state.order.filter((id) => {
    const s = statusOf(id);
    return s === 'failed' || s === 'timed_out' || s === 'cancelled';
  });
  if (failed.length === 0) {
    return { key: `${flowId}:flow.succeeded`, type: 'flow.succeeded', flow_id: flowId, data: { succeeded, total } };
  }
  const skipped = state.order.filter((id) => statusOf(id) === 'skipped');
  return {
    key: `${flowId}:flow.failed`,
    type: 'flow.failed',
    flow_id: flowId,
    data: {
      failed_tasks: failed.slice(0, MAX_LISTED_IDS),
      skipped_tasks: skipped.slice(0, MAX_LISTED_IDS),
      succeeded,
      total,
      reason: `${failed.length} task${failed.length === 1 ? '' : 's'} failed: ${listed(failed)}`,
    },
  };
}
