import type { EventDraft, FlowEvent } from '../events/catalogue.js';
import { DEFAULT_TRIGGER_RULE } from '../flow/definition.js';
import { skippedOutput } from './evolve.js';
import { prepareTask } from './prepare.js';
import { mapAffected, mapEndAfter, mapEnds } from './map.js';
import { promisedStatus, spawnAddsAfter, spawnAddsAll, spawnPending } from './spawn.js';
import { heldStart } from './starts.js';
import { triggerVerdict } from './trigger-rules.js';
import { asyncChildSucceeded, childCancel, type Start } from './waits.js';
import {
  FAILED_TASK_STATUSES,
  FAILING_TASK_STATUSES,
  TERMINAL_FLOW_STATUSES,
  TERMINAL_TASK_STATUSES,
  sparedByFailFast,
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
  const failure = (event.type === 'task.failed' || event.type === 'task.timed_out') && state.definition.fail_fast ? event.task_id : undefined;
  const drafts = plan(state, affectedBy(state, event), failure);
  const launched = event.type === 'task.waiting' && state.status === 'running' ? asyncChildSucceeded(state, event.task_id) : undefined;
  const mapped = mapEndAfter(state, event);
  const ended = [launched, mapped, ...spawnAddsAfter(state, event)].filter((d) => d !== undefined);
  return ended.length === 0 ? drafts : [...ended, ...drafts];
}

/** Decisions from the state alone, looking at every task: used after rebuilding a flow from its log. */
export function decideAll(state: FlowState | null): EventDraft[] {
  if (state === null || TERMINAL_FLOW_STATUSES.has(state.status)) return [];
  const drafts = [...mapEnds(state), ...spawnAddsAll(state), ...plan(state, state.order, state.definition.fail_fast ? state.order.find((id) => FAILING_TASK_STATUSES.has(state.tasks[id]!.status)) : undefined)];
  if (state.status !== 'running') return drafts;
  const launched = state.order.map((id) => asyncChildSucceeded(state, id)).filter((d) => d !== undefined);
  return [...launched, ...drafts];
}

function affectedBy(state: FlowState, event: FlowEvent): readonly string[] {
  const grown = mapAffected(state, event);
  if (grown !== undefined) return grown;
  switch (event.type) {
    case 'flow.submitted':
    case 'flow.started':
    case 'flow.cancel_requested':
    case 'flow.deadline_passed':
    case 'flow.fail_fast':
      return state.order;
    case 'task.succeeded':
    case 'task.failed':
    case 'task.timed_out':
    case 'task.skipped':
    case 'task.upstream_failed':
    case 'task.cancelled':
      return state.dependents[event.task_id] ?? [];
    case 'task.ready':
    case 'task.waiting':
    case 'task.throttled':
    case 'task.dispatched':
    case 'task.started':
      return state.status === 'cancelling' ? [event.task_id] : [];
    default:
      return [];
  }
}

function plan(state: FlowState, candidates: readonly string[], failure?: string): EventDraft[] {
  const flowId = state.flow_id;
  const drafts: EventDraft[] = [];
  if (state.status === 'submitted') drafts.push({ key: `${flowId}:flow.started`, type: 'flow.started', flow_id: flowId, data: {} });
  const failFast = failure !== undefined ? failFastBy(state, failure) : undefined;
  if (failFast !== undefined) {
    // Everything else is decided once the flow.fail_fast event is folded: one round, one reason.
    drafts.push(failFast);
    return drafts;
  }

  // Statuses this decision round moves tasks to, before their events exist.
  const decided = new Map<string, TaskStatus>();
  // A spawn's promised output not in the flow yet waits with its spawn task (or fails with it).
  const statusOf = (id: string): TaskStatus => decided.get(id) ?? state.tasks[id]?.status ?? promisedStatus(state, id);
  const stopping = state.status === 'cancelling';
  const queue = [...candidates];
  const queued = new Set(queue);
  const revisit = (id: string) => {
    for (const next of state.dependents[id] ?? []) {
      if (!queued.has(next)) {
        queued.add(next);
        queue.push(next);
      }
    }
  };
  // Outputs of tasks this round skips, as folding their events will set them (see evolve).
  const decidedOutputs = new Map<string, unknown>();
  const settle = (id: string, status: TaskStatus, draft: EventDraft) => {
    decided.set(id, status);
    if (draft.type === 'task.skipped') {
      decidedOutputs.set(id, skippedOutput(draft.data));
    } else if (draft.type === 'task.succeeded') {
      // A task the planner ends itself (a map over an empty list) has its output at once.
      decidedOutputs.set(id, draft.data.output);
    }
    drafts.push(draft);
    revisit(id);
  };

  for (let i = 0; i < queue.length; i++) {
    const id = queue[i]!;
    const task = state.tasks[id];
    if (task === undefined) continue;
    const status = statusOf(id);

    // A fail-fast flow spares its `always` tasks (cleanup): they run once their dependencies end.
    if (stopping && !sparedByFailFast(state, task)) {
      // A waiting approval has no executor to stop it: the planner ends it.
      if (status === 'pending' || status === 'ready' || status === 'waiting' || status === 'dispatched') {
        const cancelChild = status === 'waiting' ? childCancel(state, id) : undefined;
        if (cancelChild !== undefined) drafts.push(cancelChild);
        settle(id, 'cancelled', {
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
    const verdict = triggerVerdict(task.spec.trigger_rule, deps.map(statusOf));
    if (verdict === 'wait') continue;
    if (verdict === 'upstream_failed' || verdict === 'skip') {
      const upstream = deps.filter((d) => (verdict === 'skip' ? statusOf(d) === 'skipped' || statusOf(d) === 'succeeded' : FAILED_TASK_STATUSES.has(statusOf(d))));
      const because = `upstream ${listed(upstream.map((b) => `"${b}" ${statusOf(b)}`))}`;
      const rule = task.spec.trigger_rule ?? DEFAULT_TRIGGER_RULE;
      if (verdict === 'upstream_failed') {
        settle(id, 'upstream_failed', {
          key: `${flowId}:${id}:task.upstream_failed`,
          type: 'task.upstream_failed',
          flow_id: flowId,
          task_id: id,
          data: { reason: because, upstream: upstream.slice(0, MAX_LISTED_IDS) },
        });
      } else {
        settle(id, 'skipped', {
          key: `${flowId}:${id}:task.skipped`,
          type: 'task.skipped',
          flow_id: flowId,
          task_id: id,
          data: { reason: `trigger rule ${rule} does not hold: ${because}`, upstream: upstream.slice(0, MAX_LISTED_IDS) },
        });
      }
      continue;
    }

    const prepared = prepareTask(state, task, decidedOutputs);
    let held: Start | undefined;
    if (prepared.kind === 'skip') {
      settle(id, 'skipped', {
        key: `${flowId}:${id}:task.skipped`,
        type: 'task.skipped',
        flow_id: flowId,
        task_id: id,
        data: { reason: 'condition is false', condition: prepared.condition },
      });
    } else if (prepared.kind === 'fail') {
      settle(id, 'failed', {
        key: `${flowId}:${id}:task.failed`,
        type: 'task.failed',
        flow_id: flowId,
        task_id: id,
        attempt: 1,
        data: { error: prepared.error, duration_ms: 0 },
      });
    } else if ((held = heldStart(state, prepared.spec, decidedOutputs)) !== undefined) {
      if (TERMINAL_TASK_STATUSES.has(held.status)) {
        for (const draft of held.drafts.slice(0, -1)) drafts.push(draft);
        settle(id, held.status, held.drafts.at(-1)!);
      } else {
        decided.set(id, held.status);
        drafts.push(...held.drafts);
      }
    } else {
      decided.set(id, 'ready');
      drafts.push({
        key: `${flowId}:${id}:task.ready`,
        type: 'task.ready',
        flow_id: flowId,
        task_id: id,
        data: {
          queue: prepared.spec.queue,
          priority: prepared.spec.priority,
          ...(prepared.spec.concurrency_key !== undefined && { concurrency_key: prepared.spec.concurrency_key }),
          spec: prepared.spec,
        },
      });
    }
  }

  const finished = [...decided.values()].filter((s) => TERMINAL_TASK_STATUSES.has(s)).length;
  if (state.terminal_count + finished === state.order.length && !spawnPending(state)) drafts.push(completion(state, statusOf));
  return drafts;
}

/** The fail_fast decision, when `taskId` failed in a fail-fast flow still running. */
function failFastBy(state: FlowState, taskId: string): EventDraft | undefined {
  const status = state.tasks[taskId]?.status;
  if (!state.definition.fail_fast || state.status !== 'running' || status === undefined || !FAILING_TASK_STATUSES.has(status)) return undefined;
  return {
    key: `${state.flow_id}:flow.fail_fast`,
    type: 'flow.fail_fast',
    flow_id: state.flow_id,
    data: { task_id: taskId, reason: `fail_fast: task "${taskId}" ${status === 'failed' ? 'failed' : 'timed out'}` },
  };
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
  if (state.status === 'cancelling' && state.deadline_passed_at !== undefined && state.fail_fast_at === undefined) {
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
  if (state.status === 'cancelling' && state.fail_fast_at === undefined) {
    return {
      key: `${flowId}:flow.cancelled`,
      type: 'flow.cancelled',
      flow_id: flowId,
      data: { reason: state.cancel_reason ?? 'cancelled on request', succeeded, total },
    };
  }
  // A flow's outcome is decided by what failed, not by its last tasks: a cleanup task that
  // succeeds after a failure does not make the flow succeed.
  const failing = state.order.filter((id) => FAILING_TASK_STATUSES.has(statusOf(id)));
  const consequences = state.order.filter((id) => {
    const s = statusOf(id);
    return FAILED_TASK_STATUSES.has(s) && !FAILING_TASK_STATUSES.has(s);
  });
  if (failing.length === 0 && consequences.length === 0) {
    return { key: `${flowId}:flow.succeeded`, type: 'flow.succeeded', flow_id: flowId, data: { succeeded, total } };
  }
  const failed = failing.length > 0 ? failing : consequences;
  const skipped = state.order.filter((id) => statusOf(id) === 'skipped');
  const upstreamFailed = state.order.filter((id) => statusOf(id) === 'upstream_failed');
  const summary = `${failed.length} task${failed.length === 1 ? '' : 's'} failed: ${listed(failed)}`;
  return {
    key: `${flowId}:flow.failed`,
    type: 'flow.failed',
    flow_id: flowId,
    data: {
      failed_tasks: failed.slice(0, MAX_LISTED_IDS),
      skipped_tasks: skipped.slice(0, MAX_LISTED_IDS),
      ...(upstreamFailed.length > 0 && { upstream_failed_tasks: upstreamFailed.slice(0, MAX_LISTED_IDS) }),
      succeeded,
      total,
      reason: state.fail_fast_at !== undefined ? `${state.cancel_reason}; ${summary}` : summary,
    },
  };
}
