import { decide, decideAll, evolve, type EventDraft, type FlowEvent, type FlowState } from '@taskstream/domain';

/** How an event reached the planner: its stream sequence, its delivery and how its flow was loaded. */
export interface Delivery {
  seq: number;
  deliveryCount: number;
  /** The flow was rebuilt from the log for this event rather than found in memory or started by it. */
  rebuilt: boolean;
  /** Every event of the flow up to this sequence is in memory: it was folded from the log (see CachedFlow). */
  completeThrough: number;
}

/**
 * What an event means for its flow in memory: decisions to append; nothing, because memory already
 * holds it; or a refold of the log, because memory may lack it.
 */
export type Step = { kind: 'decide'; drafts: EventDraft[] } | { kind: 'seen' } | { kind: 'refold' };

/** Folds `event` into `state` (in place) when it is new to it, and says what to decide. */
export function stepOf(state: FlowState, event: FlowEvent, delivery: Delivery): Step {
  // A flow just rebuilt from its log already holds the event: re-decide everything.
  if (delivery.rebuilt) return { kind: 'decide', drafts: decideAll(state) };
  if (delivery.seq > state.last_seq || event.type === 'flow.submitted') {
    evolve(state, event, delivery.seq);
    return { kind: 'decide', drafts: decide(state, event) };
  }
  if (delivery.seq <= delivery.completeThrough) return { kind: 'seen' };
  // Delivered behind newer events of its flow: its first delivery may have been lost (a server
  // restart, a consumer leader moving), whatever the delivery count says, and memory may lack it.
  // Refold from the log and re-decide everything.
  return { kind: 'refold' };
}

/** Terminal decisions the planner itself makes about a task. */
const PLANNER_TERMINALS = ['task.failed', 'task.skipped', 'task.upstream_failed', 'task.cancelled'] as const;

/**
 * Whether `draft` readies a task this process already decided to end: the decider is deterministic,
 * so this never happens, but a ready after a terminal event would run a finished task's step.
 */
export function endedHere(emitted: ReadonlySet<string>, draft: EventDraft): boolean {
  return draft.type === 'task.ready' && PLANNER_TERMINALS.some((type) => emitted.has(`${draft.flow_id}:${draft.task_id}:${type}`));
}

/** Decisions this process has not appended yet. */
export function unemitted(drafts: readonly EventDraft[], emitted: ReadonlySet<string>): EventDraft[] {
  return drafts.filter((d) => !emitted.has(d.key));
}

/** Decisions to append: not appended yet, and no ready for a task this process ended. */
export function freshDecisions(drafts: readonly EventDraft[], emitted: ReadonlySet<string>): EventDraft[] {
  return drafts.filter((d) => !emitted.has(d.key) && !endedHere(emitted, d));
}

/**
 * The start-once rule: a flow's `flow.started` is stored once in its whole log, before anything else
 * of the flow is appended; the decision that starts it, if any.
 */
export function startOf(drafts: readonly EventDraft[]): EventDraft | undefined {
  return drafts.find((d) => d.type === 'flow.started');
}
