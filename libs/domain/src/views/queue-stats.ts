import { TERMINAL_TASK_STATUSES, type FlowState, type TaskStatus } from '../decider/state.js';

/** Live statistics of one queue, folded from task transitions (the projector keeps one per queue). */
export interface QueueStatsView {
  queue: string;
  /** Ready, not yet dispatched. */
  waiting: number;
  /** Dispatched or running. */
  running: number;
  /** Waiting because a limit holds them. */
  throttled: number;
  /** Tasks finished per minute (`YYYY-MM-DDTHH:MM`), the last hour. */
  minutes: Record<string, { succeeded: number; failed: number }>;
  /** Stream sequence of the last event applied: a repeated event changes nothing. */
  last_seq: number;
}

export interface TaskSnapshot {
  status: TaskStatus;
  throttled: boolean;
}

/** What the statistics count of one task in a flow's fold. */
export function taskSnapshot(state: FlowState, taskId: string): TaskSnapshot | undefined {
  const task = state.tasks[taskId];
  return task && { status: task.status, throttled: task.waiting_reason !== undefined };
}

/**
 * Every task whose counted state differs between two folds of one flow: what memory held, and a
 * refold of the log that memory may have lacked an event of. Applied with `knownBefore`, these
 * bring the statistics to the refold.
 */
export function refoldTransitions(memory: FlowState, refolded: FlowState): Array<{ taskId: string; before: TaskSnapshot | undefined; after: TaskSnapshot }> {
  return Object.keys(refolded.tasks).flatMap((taskId) => {
    const before = taskSnapshot(memory, taskId);
    const after = taskSnapshot(refolded, taskId)!;
    return before?.status === after.status && before.throttled === after.throttled ? [] : [{ taskId, before, after }];
  });
}

export function emptyQueueStats(queue: string): QueueStatsView {
  return { queue, waiting: 0, running: 0, throttled: 0, minutes: {}, last_seq: 0 };
}

function contribution(task: TaskSnapshot | undefined) {
  return {
    waiting: task?.status === 'ready' ? 1 : 0,
    running: task?.status === 'dispatched' || task?.status === 'running' ? 1 : 0,
    throttled: task?.status === 'ready' && task.throttled ? 1 : 0,
  };
}

const HOUR_MS = 3_600_000;

/**
 * Applies one task's transition (`before` -> `after`, from the flow fold) at stream `seq` and time
 * `time`. Pure; returns `stats` itself when nothing changed or the event was already applied.
 *
 * Without `knownBefore`, an event at or below `last_seq` is taken as applied already. With `knownBefore`,
 * the caller vouches that `before` is exactly what these statistics hold for the task (the
 * projector's fold of the flow in memory), so the transition applies whatever its sequence: an
 * event redelivered behind newer ones is then counted instead of skipped.
 */
export function applyTaskTransition(stats: QueueStatsView, before: TaskSnapshot | undefined, after: TaskSnapshot, time: string, seq: number, knownBefore = false): QueueStatsView {
  if (!knownBefore && seq <= stats.last_seq) return stats;
  const was = contribution(before);
  const now = contribution(after);
  const finished = after.status !== before?.status && TERMINAL_TASK_STATUSES.has(after.status) && !(before && TERMINAL_TASK_STATUSES.has(before.status));
  const ended = finished && (after.status === 'succeeded' || after.status === 'failed' || after.status === 'timed_out');
  if (!ended && was.waiting === now.waiting && was.running === now.running && was.throttled === now.throttled) return stats;
  const next: QueueStatsView = {
    ...stats,
    waiting: stats.waiting + now.waiting - was.waiting,
    running: stats.running + now.running - was.running,
    throttled: stats.throttled + now.throttled - was.throttled,
    last_seq: Math.max(stats.last_seq, seq),
  };
  if (ended) {
    const minute = time.slice(0, 16);
    const cutoff = new Date(Date.parse(time) - HOUR_MS).toISOString().slice(0, 16);
    const minutes: QueueStatsView['minutes'] = {};
    for (const [m, counts] of Object.entries(stats.minutes)) if (m > cutoff) minutes[m] = counts;
    const slot = minutes[minute] ?? { succeeded: 0, failed: 0 };
    minutes[minute] = after.status === 'succeeded' ? { ...slot, succeeded: slot.succeeded + 1 } : { ...slot, failed: slot.failed + 1 };
    next.minutes = minutes;
  }
  return next;
}
