import type { EventOf, ThrottleReason } from '@taskstream/domain';
import { counter, gauge, histogram, SECONDS_BUCKETS } from '@taskstream/runtime';
import type { QueueStats } from './rooms.js';

/** The dispatcher's metrics (see docs/operations.md#metrics), by queue, never by flow or task id. */

const admissions = counter({ name: 'taskstream_dispatcher_admissions_total', help: 'Ready tasks admitted and dispatched (their work item sent), by queue.', labelNames: ['queue'] });

const throttles = counter({
  name: 'taskstream_dispatcher_throttles_total',
  help: 'Waiting tasks held back at a limited queue, counted once per task and reason (rate, concurrency, key_concurrency), by queue.',
  labelNames: ['queue', 'reason'],
});

const readyToDispatch = histogram({
  name: 'taskstream_dispatcher_ready_to_dispatch_seconds',
  help: "From a task.ready event's time to its dispatch, by queue: the scheduling overhead, and for a limited or busy queue its wait at the gate or window.",
  labelNames: ['queue'],
  buckets: SECONDS_BUCKETS,
});

/** Where the dispatchers of this process read their waiting tasks (one per dispatcher). */
const rooms = new Set<() => Record<string, QueueStats>>();

gauge({
  name: 'taskstream_dispatcher_tasks_waiting',
  help: "Ready tasks waiting in this process's dispatchers for their queue's window or gate, by queue.",
  labelNames: ['queue'],
  collect() {
    this.reset();
    for (const stats of rooms) for (const [queue, { waiting }] of Object.entries(stats())) this.inc({ queue }, waiting);
  },
});

/** Reports a dispatcher's waiting tasks until the returned function is called. */
export function reportWaiting(stats: () => Record<string, QueueStats>): () => void {
  rooms.add(stats);
  return () => rooms.delete(stats);
}

/** A ready task was dispatched now. */
export function dispatched(ready: EventOf<'task.ready'>, now: number): void {
  admissions.inc({ queue: ready.data.queue });
  const readyAt = Date.parse(ready.time);
  if (Number.isFinite(readyAt)) readyToDispatch.observe({ queue: ready.data.queue }, Math.max(0, now - readyAt) / 1000);
}

/** A waiting task of `queue` was held back for `reason`. */
export function throttled(queue: string, reason: ThrottleReason): void {
  throttles.inc({ queue, reason });
}
