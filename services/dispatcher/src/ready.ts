import { idempotencyKeyOf, isLimited, readiedBy, TERMINAL_TASK_EVENTS, type EventOf, type QueuePolicy } from '@taskstream/domain';
import { bindTraceContext, readFlowHistory, type JetStreamClient, type JsMsg, type Topology } from '@taskstream/nats';
import pLimit from 'p-limit';
import { DISPATCHING, withQueueDefaults, type Dispatch } from './dispatch.js';
import type { Rooms } from './rooms.js';

export interface ReadyHandlerOptions {
  js: JetStreamClient;
  topo: Topology;
  policyOf: (queue: string) => QueuePolicy;
  rooms: Rooms;
  /** Window of unlimited queues; 0 dispatches their tasks at once. */
  windowSize: number;
  dispatch: Dispatch;
}

/** Tasks of the flow whose terminal event the log holds: a redelivered ready event's must not take a slot now, which no later end would release. */
async function endedTasks(js: JetStreamClient, topo: Topology, flowId: string): Promise<Set<string>> {
  const ended = new Set<string>();
  for (const { event } of await readFlowHistory(js, topo, flowId)) if ('task_id' in event && TERMINAL_TASK_EVENTS.has(event.type)) ended.add(event.task_id);
  return ended;
}

/**
 * Handles one `task.ready`, or each task of a `tasks.ready`: applies its queue's defaults, then
 * dispatches it through the queue's window (unlimited queue), after admission at its gate (limited
 * queue), or at once (no window). Resolves when every task was dispatched or left (it ended while
 * waiting): the ready event is then acked.
 */
export function readyHandler(options: ReadyHandlerOptions): (event: EventOf<'task.ready'> | EventOf<'tasks.ready'>, msg: JsMsg) => Promise<void> {
  const { js, topo, policyOf, rooms, windowSize, dispatch } = options;
  // Thousands of ready events may be in hand at once (most of them waiting at a gate or a window);
  // their publishes go out a few hundred at a time so the pending requests do not pile up in memory.
  const dispatching = pLimit(DISPATCHING);
  const one = async (ready: EventOf<'task.ready'>, msg: JsMsg, order: number): Promise<void> => {
    const queue = ready.data.queue;
    const policy = policyOf(queue);
    const spec = withQueueDefaults(ready.data.spec, policy);
    // Dispatched from the window or the gate, maybe much later: in this event's trace.
    const send = bindTraceContext(() => dispatch(ready, spec));
    const waiter = { key: idempotencyKeyOf(ready.flow_id, ready.task_id), flowId: ready.flow_id, priority: ready.data.priority, seq: order, msg };
    if (!isLimited(policy) && windowSize > 0) {
      await rooms.window(queue).dispatch(waiter, send);
      return;
    }
    if (isLimited(policy)) {
      const concurrencyKey = ready.data.concurrency_key;
      const admitted = await rooms.gate(queue).wait({ ...waiter, ...(concurrencyKey !== undefined && { concurrencyKey }) });
      if (!admitted) return;
    }
    await dispatching(send);
  };
  return async (event, msg) => {
    const readies = readiedBy(event);
    const ended = msg.info.deliveryCount > 1 ? await endedTasks(js, topo, event.flow_id) : undefined;
    // The tasks of one event keep their order within the flow: after this event's sequence, before the next one's.
    const outcomes = await Promise.allSettled(readies.filter((ready) => !ended?.has(ready.task_id)).map((ready, i) => one(ready, msg, msg.seq + i / readies.length)));
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  };
}
