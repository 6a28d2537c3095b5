import { z } from 'zod';
import { FlowId } from '../events/catalogue.js';
import { TaskId, TaskSpec } from '../flow/definition.js';

/** What the dispatcher puts on `ts.work.<queue>` for an executor: everything needed to run the task. */
export const WorkItem = z.object({
  version: z.literal(1),
  flow_id: FlowId,
  task_id: TaskId,
  spec: TaskSpec,
  /** Stable across attempts and redeliveries; passed to steps so their effects can be made idempotent. */
  idempotency_key: z.string(),
  dispatched_at: z.iso.datetime({ offset: true }),
});
export type WorkItem = z.infer<typeof WorkItem>;

export function idempotencyKeyOf(flowId: string, taskId: string): string {
  return `${flowId}:${taskId}`;
}

/** The dispatch a work item records, as the first `task.started` of it carries it (`data.dispatch`). */
export function dispatchOf(item: WorkItem): { at: string; queue: string; retries?: number; timeout_secs?: number; backoff?: TaskSpec['backoff'] } {
  const { queue, retries, timeout_secs, backoff } = item.spec;
  return { at: item.dispatched_at, queue, ...(retries !== undefined && { retries }), ...(timeout_secs !== undefined && { timeout_secs }), ...(backoff !== undefined && { backoff }) };
}
