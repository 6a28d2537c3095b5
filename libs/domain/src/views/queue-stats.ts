import { TERMINAL_TASK_STATUSES, type TaskStatus } from '../decider/state.js';

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
 */
export function applyTaskTransition(stats: QueueStatsView, before: TaskSnapshot | undefined, after: TaskSnapshot, time: string, seq: number): QueueStatsView {
  if (seq <= stats.last_seq) return stats;
  const was = contribution(before);
  const now = contribution(after);
  const finished = after.status !== before?.status && TERMINAL_TASK_STATUSES.has(after.status) && !(before && TERMINAL_TASK_STATUSES.has(before.status));
  const counted = finished && (after.status === 'succeeded' || after.status === 'failed' || after.status === 'timed_out');
  if (!counted && was.waiting === now.waiting && was.running === now.running && was.throttled === now.throttled) return stats;
  const next: QueueStatsView = {
    ...stats,
    waiting: stats.waiting + now.waiting - was.waiting,
    running: stats.running + now.running - was.running,
    throttled: stats.throttled + now.throttled - was.throttled,
    last_seq: seq,
  };
  if (counted) {
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
