import { z } from 'zod';
import { FlowId } from '../events/catalogue.js';
import { TaskId } from '../flow/definition.js';

/**
 * A durable timer for a flow's `timeout_secs`, on `ts.timer.<flow_id>`: JetStream holds it back
 * (delayed redelivery) until it is due, so the deadline survives every process restart.
 */
export const FlowDeadline = z.object({
  version: z.literal(1),
  flow_id: FlowId,
  timeout_secs: z.number().positive(),
  due_at: z.iso.datetime({ offset: true }),
});
export type FlowDeadline = z.infer<typeof FlowDeadline>;

/** The deadline of a flow that started at `startedAt` (its `flow.started` event time). */
export function flowDeadline(flowId: string, timeoutSecs: number, startedAt: string): FlowDeadline {
  return { version: 1, flow_id: flowId, timeout_secs: timeoutSecs, due_at: new Date(Date.parse(startedAt) + timeoutSecs * 1000).toISOString() };
}

/**
 * A durable timer for an approval task's `timeout_secs`, on its flow's timer subject beside the
 * flow's deadline: due `timeout_secs` after the task began to wait (its `task.waiting` time).
 */
export const ApprovalDeadline = z.object({
  version: z.literal(1),
  kind: z.literal('approval'),
  flow_id: FlowId,
  task_id: TaskId,
  timeout_secs: z.number().positive(),
  due_at: z.iso.datetime({ offset: true }),
});
export type ApprovalDeadline = z.infer<typeof ApprovalDeadline>;

/** Anything the timers stream holds; an approval's timer is told apart by its `kind`. */
export const Timer = z.union([ApprovalDeadline, FlowDeadline]);
export type Timer = z.infer<typeof Timer>;

export function approvalDeadline(flowId: string, taskId: string, timeoutSecs: number, waitingSince: string): ApprovalDeadline {
  return { version: 1, kind: 'approval', flow_id: flowId, task_id: taskId, timeout_secs: timeoutSecs, due_at: new Date(Date.parse(waitingSince) + timeoutSecs * 1000).toISOString() };
}
