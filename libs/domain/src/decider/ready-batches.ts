import { READY_BATCH_MAX_TASKS, type EventDraft, type ReadyTask } from '../events/catalogue.js';

/** A decision readying fewer tasks than this records a `task.ready` for each. */
export const READY_BATCH_MIN_TASKS = 8;
/** Bytes of specs (as JSON) one `tasks.ready` carries at most; a task over it goes alone. */
export const READY_BATCH_MAX_BYTES = 256 * 1024;

type ReadyDraft = Extract<EventDraft, { type: 'task.ready' }>;

const encoder = new TextEncoder();

/**
 * The decisions as they are stored: when they ready READY_BATCH_MIN_TASKS or more tasks, those
 * readies go in `tasks.ready` events of up to READY_BATCH_MAX_TASKS tasks and READY_BATCH_MAX_BYTES
 * each, in the decisions' order, each where its first task's ready was; everything else stays as it
 * is. One event for many tasks is one message to store, deliver to the planner, the projector and
 * the dispatcher, and acknowledge, where each task's own was all of that. Deterministic: the same
 * decisions give the same events and the same keys, so a repeated decision is dropped as before.
 */
export function batchReadyDecisions(drafts: readonly EventDraft[]): EventDraft[] {
  const readies = drafts.filter((d): d is ReadyDraft => d.type === 'task.ready');
  if (readies.length < READY_BATCH_MIN_TASKS) return [...drafts];
  const groups: ReadyDraft[][] = [];
  const alone = new Set<ReadyDraft>();
  let group: ReadyDraft[] = [];
  let bytes = 0;
  for (const ready of readies) {
    const size = encoder.encode(JSON.stringify(ready.data.spec)).length;
    if (size > READY_BATCH_MAX_BYTES) {
      alone.add(ready);
      continue;
    }
    if (group.length === READY_BATCH_MAX_TASKS || bytes + size > READY_BATCH_MAX_BYTES) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(ready);
    bytes += size;
  }
  groups.push(group);
  const batchAt = new Map<ReadyDraft, EventDraft>();
  for (const members of groups) {
    if (members.length === 1) alone.add(members[0]!);
    if (members.length < 2) continue;
    batchAt.set(members[0]!, batchOf(members));
  }
  const out: EventDraft[] = [];
  for (const draft of drafts) {
    if (draft.type !== 'task.ready' || alone.has(draft)) out.push(draft);
    else {
      const batch = batchAt.get(draft);
      if (batch !== undefined) out.push(batch);
    }
  }
  return out;
}

function batchOf(members: readonly ReadyDraft[]): EventDraft {
  const first = members[0]!;
  const tasks: ReadyTask[] = members.map((m) => ({ task_id: m.task_id, ...m.data }));
  return { type: 'tasks.ready', flow_id: first.flow_id, key: `${first.flow_id}:${first.task_id}:tasks.ready:${members.length}`, data: { tasks } };
}
