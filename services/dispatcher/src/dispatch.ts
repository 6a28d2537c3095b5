import { DEFAULT_BACKOFF, DEFAULT_RETRIES, DEFAULT_TIMEOUT_SECS, idempotencyKeyOf, workSubject, type EventOf, type QueuePolicy, type SubjectLayout, type TaskSpec, type WorkItem } from '@taskstream/domain';
import { encodeJson, flowAttributes, inChildSpan, SpanKind, traceHeaders, activeTraceContext, type JetStreamClient } from '@taskstream/nats';
import { dispatched } from './metrics.js';

/** Dispatches in progress at once: through all gates together, and through each queue's window. */
export const DISPATCHING = 256;

/** Fills in what the task left to its queue, and what the queue leaves to Tasked's defaults: retries, timeout, backoff. */
export function withQueueDefaults(spec: TaskSpec, policy: QueuePolicy): TaskSpec {
  return {
    ...spec,
    retries: spec.retries ?? policy.max_retries ?? DEFAULT_RETRIES,
    timeout_secs: spec.timeout_secs ?? policy.timeout_secs ?? DEFAULT_TIMEOUT_SECS,
    backoff: spec.backoff ?? policy.backoff ?? DEFAULT_BACKOFF,
    ...(policy.secrets !== undefined && Object.keys(policy.secrets).length > 0 && { queue_secrets: policy.secrets }),
  };
}

/**
 * Sends an admitted task on its way, with the spec its queue's defaults completed. Resolves true
 * when the work stream already held the task's work item (a dispatch repeated).
 */
export type Dispatch = (ready: EventOf<'task.ready'>, spec: TaskSpec) => Promise<boolean>;

/**
 * The dispatch step: publishes the work item on `work.<queue>` (msgID `<flow>:<task>:work`, so a
 * redelivered ready event dispatched twice still makes one). The item is the dispatch's record:
 * when, on which queue, with which retries, timeout and backoff; the first `task.started` carries it
 * into the log. One message a task where there were two (an event, then the item), and no
 * sequential wait for the first's acknowledgement.
 */
export function dispatchStep(js: JetStreamClient, layout: SubjectLayout): Dispatch {
  const send = async (ready: EventOf<'task.ready'>, spec: TaskSpec): Promise<boolean> => {
    const key = idempotencyKeyOf(ready.flow_id, ready.task_id);
    const item: WorkItem = { version: 1, flow_id: ready.flow_id, task_id: ready.task_id, spec, idempotency_key: key, dispatched_at: new Date().toISOString() };
    const headers = traceHeaders();
    const ack = await js.publish(workSubject(layout, ready.data.queue), encodeJson(item), { msgID: `${key}:work`, ...(headers && { headers }) });
    dispatched(ready, Date.now());
    return ack.duplicate;
  };
  return (ready, spec) => inChildSpan('dispatch task', activeTraceContext(), { kind: SpanKind.PRODUCER, attributes: { ...flowAttributes(ready), 'taskstream.queue': ready.data.queue } }, () => send(ready, spec));
}
