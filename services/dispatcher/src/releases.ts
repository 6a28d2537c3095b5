import { idempotencyKeyOf, type EventType, type FlowEvent, type QueuePolicy } from '@taskstream/domain';
import type { QueueLimitsStore } from '@taskstream/nats';
import type { LimitsWatch } from './limits-watch.js';

/** Terminal task events that can end a task holding a concurrency slot (a skipped task never held one). */
export const RELEASING: EventType[] = ['task.succeeded', 'task.failed', 'task.timed_out', 'task.cancelled'];

function tracksSlots(policy: QueuePolicy): boolean {
  return policy.concurrency !== undefined || policy.per_key_concurrency !== undefined;
}

/**
 * Handles a terminal task event from a release consumer: gives the task's concurrency slot back.
 * Releasing removes the holder by compare-and-set or finds it gone, so each slot is given back
 * exactly once however many times the event is delivered.
 */
export function releaseHandler(limits: QueueLimitsStore, watched: LimitsWatch, policyOf: (queue: string) => QueuePolicy): (event: FlowEvent) => Promise<void> {
  return async (event) => {
    if (!('task_id' in event)) return;
    if (watched.size === 0) return;
    const holder = idempotencyKeyOf(event.flow_id, event.task_id);
    // The watched copy names the queue almost always; if it lags behind a very fast task, ask them all.
    const known = watched.holding(holder);
    if (known !== undefined) await limits.release([known], holder);
    else await limits.release(watched.queues().filter((queue) => tracksSlots(policyOf(queue))), holder);
  };
}
