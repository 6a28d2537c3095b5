import { z } from 'zod';
import { FlowId } from '../events/catalogue.js';

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
