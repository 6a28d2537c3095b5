import { attemptHistory, idempotencyKeyOf, isLimited, type EventOf, type QueuePolicy } from '@taskstream/domain';
import { bindTraceContext, readFlowHistory, type JetStreamClient, type JsMsg, type KnownStops, type QueueLimitsStore, type Topology } from '@taskstream/nats';
import pLimit from 'p-limit';
import { DISPATCHING, withQueueDefaults, type Dispatch } from './dispatch.js';
import type { Rooms } from './rooms.js';

export interface ReadyHandlerOptions {
  js: JetStreamClient;
  topo: Topology;
  policyOf: (queue: string) => QueuePolicy;
  rooms: Rooms;
  /** The flows known here to be stopped: a ready task ends before it runs only by its flow's stop. */
  stops: KnownStops;
  limits: QueueLimitsStore;
  /** Window of unlimited queues; 0 dispatches their tasks at once. */
  windowSize: number;
  dispatch: Dispatch;
}

/** Whether a redelivered ready event's task already ended: taking a slot for it now would leak the slot. */
async function alreadyFinished(js: JetStreamClient, topo: Topology, ready: EventOf<'task.ready'>): Promise<boolean> {
  const history = await readFlowHistory(js, topo, ready.flow_id);
  return attemptHistory(
    history.map((stored) => stored.event),
    ready.task_id,
  ).finished;
}

/**
 * Handles one `task.ready`: applies its queue's defaults, then dispatches it through the queue's
 * window (unlimited queue), after admission at its gate (limited queue), or at once (no window).
 * Resolves when the task was dispatched or left (its flow stopped, or it ended while waiting): the
 * ready event is then acked.
 *
 * A task of a stopped flow is cancelled by the planner, and this dispatcher drops it when it sees
 * that end while the task waits here. An end stored while no dispatcher held the ready event (a
 * backlog, or a restart that handed it back) is never seen here, so the flow's stop is asked
 * instead: on arrival, of what the stop watch has told (free); and for a limited queue once more of
 * the log after admission, as a slot taken for a task whose end has passed would be held for good.
 */
export function readyHandler(options: ReadyHandlerOptions): (ready: EventOf<'task.ready'>, msg: JsMsg) => Promise<void> {
  const { js, topo, policyOf, rooms, stops, limits, windowSize, dispatch } = options;
  // Thousands of ready events may be in hand at once (most of them waiting at a gate or a window);
  // their publishes go out a few hundred at a time so the pending requests do not pile up in memory.
  const dispatching = pLimit(DISPATCHING);
  return async (ready, msg) => {
    if (stops.reasonFor(ready.flow_id, ready.data.spec) !== undefined) return;
    if (msg.info.deliveryCount > 1 && (await alreadyFinished(js, topo, ready))) return;
    const queue = ready.data.queue;
    const policy = policyOf(queue);
    const spec = withQueueDefaults(ready.data.spec, policy);
    // Dispatched from the window or the gate, maybe much later: in this event's trace.
    const send = bindTraceContext(() => dispatch(ready, spec));
    const waiter = { key: idempotencyKeyOf(ready.flow_id, ready.task_id), flowId: ready.flow_id, priority: ready.data.priority, seq: msg.seq, msg };
    if (!isLimited(policy) && windowSize > 0) {
      await rooms.window(queue).dispatch(waiter, send);
      return;
    }
    if (isLimited(policy)) {
      const concurrencyKey = ready.data.concurrency_key;
      const admitted = await rooms.gate(queue).wait({ ...waiter, ...(concurrencyKey !== undefined && { concurrencyKey }) });
      if (!admitted) return;
      // The slot is recorded: a stop stored from now on ends the task later, and that end releases it.
      if ((await stops.storedStop(ready.flow_id, spec)) !== undefined) {
        await limits.release([queue], waiter.key);
        return;
      }
    }
    await dispatching(send);
  };
}
