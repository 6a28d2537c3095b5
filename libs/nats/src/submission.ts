import { JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { decodeTime } from 'ulid';
import { EVENT_VERSION, eventSubject, INLINE_DEFINITION_BYTES, jsonBytes, type FlowDefinition, type FlowOrigin, type Lineage } from '@taskstream/domain';
import { encodeJson } from './codec.js';
import { definitionsOf } from './definitions.js';
import { deterministicId, newId } from './ids.js';
import type { Topology } from './topology.js';
import { traceHeaders } from './trace-context.js';

const WRONG_LAST_SEQUENCE = 10071;

export interface SubmitFlowInput {
  definition: FlowDefinition;
  /** A flow id chosen by the caller; a fresh one when absent. */
  flowId?: string;
  idempotencyKey?: string;
  submittedBy?: string;
  lineage?: Lineage;
  origin?: FlowOrigin;
}

/**
 * The id of a flow that must exist at most once for a cause (a schedule's tick, a parent's task):
 * time-ordered by `timeMs`, its random part a hash of `key`, so every instance that acts on the
 * same cause derives the same id.
 */
export function derivedFlowId(key: string, timeMs: number): string {
  return deterministicId(`flow:${key}`, timeMs);
}

/** The child flow a parent's task starts: one id per parent and task, time-ordered with the parent. */
export function childFlowId(parentFlowId: string, taskId: string): string {
  return derivedFlowId(`child:${parentFlowId}:${taskId}`, decodeTime(parentFlowId));
}

/**
 * Appends a flow's `flow.submitted` (its definition offloaded to the definitions store when too
 * large to travel inline). The append is conditional on the flow having no submission yet, so a
 * flow id is submitted once whatever the de-duplication window: `created` is false when it already
 * was (another instance, or an earlier try of this one, got there first).
 */
export async function submitFlow(js: JetStreamClient, topo: Topology, submission: SubmitFlowInput, now: number = Date.now()): Promise<{ flowId: string; created: boolean }> {
  const { definition, lineage, origin, idempotencyKey, submittedBy } = submission;
  const flowId = submission.flowId ?? newId(now);
  const inline = { definition, ...(lineage !== undefined && { lineage }) };
  const stored = jsonBytes(inline) <= INLINE_DEFINITION_BYTES ? inline : { definition_ref: await (await definitionsOf(js, topo)).offload(flowId, inline) };
  const event = {
    id: newId(now),
    type: 'flow.submitted' as const,
    version: EVENT_VERSION,
    flow_id: flowId,
    time: new Date(now).toISOString(),
    data: {
      ...stored,
      ...(idempotencyKey !== undefined && { idempotency_key: idempotencyKey }),
      ...(submittedBy !== undefined && { submitted_by: submittedBy }),
      ...(origin !== undefined && { origin }),
    },
  };
  const headers = traceHeaders();
  try {
    const ack = await js.publish(eventSubject(topo.layout, flowId, 'flow.submitted'), encodeJson(event), {
      msgID: `${flowId}:flow.submitted`,
      expect: { lastSubjectSequence: 0 },
      ...(headers && { headers }),
    });
    return { flowId, created: !ack.duplicate };
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE) return { flowId, created: false };
    throw error;
  }
}
