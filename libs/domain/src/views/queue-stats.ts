import type { FlowState } from '../decider/state.js';

/** Tasks finished in one minute. */
export interface MinuteCounts {
  succeeded: number;
  failed: number;
}

/**
 * One flow's share of one queue's statistics. It is a function of the flow's fold alone and is
 * stored with the flow's summary, so replaying or redelivering any event rewrites it to the same
 * value: queue statistics, the sum of these over flows, cannot drift.
 */
export interface QueueLoad {
  /** Ready, not yet dispatched (an approval waiting for its ack is not counted: it needs no slot). */
  waiting: number;
  /** Dispatched or running. */
  running: number;
  /** Ready and held by a limit. */
  throttled: number;
  /** Tasks that ended succeeded or failed/timed out, by minute (`YYYY-MM-DDTHH:MM`) of their end: the flow's last LOAD_MINUTES minutes. */
  minutes?: Record<string, MinuteCounts>;
}

/** Live statistics of one queue: the sum of its flows' loads. */
export interface QueueStatsView {
  queue: string;
  waiting: number;
  running: number;
  throttled: number;
  /** Tasks finished per minute, the last hour. */
  minutes: Record<string, MinuteCounts>;
}

/** Minutes of finishes a flow's load keeps (the statistics show the last hour). */
export const LOAD_MINUTES = 60;
const HOUR_MS = 3_600_000;

/** Each queue's share of the flow's tasks; queues with nothing to count are left out. */
export function queueLoads(state: FlowState): Record<string, QueueLoad> {
  const loads: Record<string, QueueLoad> = {};
  const loadOf = (queue: string) => (loads[queue] ??= { waiting: 0, running: 0, throttled: 0 });
  for (const task of Object.values(state.tasks)) {
    const { status } = task;
    if (status === 'ready') {
      const load = loadOf(task.spec.queue);
      load.waiting++;
      if (task.waiting_reason !== undefined) load.throttled++;
    } else if (status === 'dispatched' || status === 'running') {
      loadOf(task.spec.queue).running++;
    } else if ((status === 'succeeded' || status === 'failed' || status === 'timed_out') && task.finished_at !== undefined && !task.reused) {
      const load = loadOf(task.spec.queue);
      const minute = task.finished_at.slice(0, 16);
      const minutes = (load.minutes ??= {});
      const slot = (minutes[minute] ??= { succeeded: 0, failed: 0 });
      if (status === 'succeeded') slot.succeeded++;
      else slot.failed++;
    }
  }
  for (const load of Object.values(loads)) {
    if (load.minutes === undefined) continue;
    const kept = Object.keys(load.minutes).sort().slice(-LOAD_MINUTES);
    if (kept.length < Object.keys(load.minutes).length) load.minutes = Object.fromEntries(kept.map((m) => [m, load.minutes![m]!]));
  }
  return loads;
}

export function emptyQueueStats(queue: string): QueueStatsView {
  return { queue, waiting: 0, running: 0, throttled: 0, minutes: {} };
}

/** A queue's statistics at `now`: its flows' loads added up, finishes older than an hour left out. */
export function sumQueueLoads(queue: string, loads: Iterable<QueueLoad>, now: Date): QueueStatsView {
  const total = emptyQueueStats(queue);
  const cutoff = new Date(now.getTime() - HOUR_MS).toISOString().slice(0, 16);
  for (const load of loads) {
    total.waiting += load.waiting;
    total.running += load.running;
    total.throttled += load.throttled;
    for (const [minute, counts] of Object.entries(load.minutes ?? {})) {
      if (minute <= cutoff) continue;
      const slot = (total.minutes[minute] ??= { succeeded: 0, failed: 0 });
      slot.succeeded += counts.succeeded;
      slot.failed += counts.failed;
    }
  }
  return total;
}
