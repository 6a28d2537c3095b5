import type { ThrottleReason } from '@taskstream/domain';
import type { EventLog } from '@taskstream/nats';
import type { Waiter } from './queue-gate.js';

/** Records that a waiting task is held back, and why. */
export type ReportThrottled = (waiter: Pick<Waiter, 'key' | 'flowId' | 'concurrencyKey'>, reason: ThrottleReason, queue: string) => Promise<void>;

/**
 * Appends `task.throttled` once per task and reason (msgID `<flow>:<task>:task.throttled:<reason>`,
 * so a report repeated after a redelivery is dropped by JetStream).
 */
export function throttleReport(log: EventLog): ReportThrottled {
  return async (waiter, reason, queue) => {
    // The key is `<flow id>:<task id>`; a task id may itself hold ":".
    const taskId = waiter.key.slice(waiter.flowId.length + 1);
    await log.appendNew(
      {
        type: 'task.throttled',
        flow_id: waiter.flowId,
        task_id: taskId,
        data: { queue, reason, ...(waiter.concurrencyKey !== undefined && { concurrency_key: waiter.concurrencyKey }) },
      },
      `${waiter.key}:task.throttled:${reason}`,
    );
  };
}
