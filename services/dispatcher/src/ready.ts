import { attemptHistory, idempotencyKeyOf, isLimited, type EventOf, type QueuePolicy } from '@taskstream/domain';
import { bindTraceContext, readFlowHistory, type JetStreamClient, type JsMsg, type KnownStops, type QueueLimitsStore, type Topology } from '@taskstream/nats';
import pLimit from 'p-limit';
import { DISPATCHING, withQueueDefaults, type Dispatch } from './dispatch.js';
import type { Waiter } from './queue-gate.js';
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
 * Handles one `task.ready`: dispatches it through the queue's window (unlimited queue), after
 * admission at its gate (limited queue), or at once (no window), as the queue's policy says when
 * the event arrives; a task waiting at the window when its queue becomes limited moves to the
 * gate. The spec sent is completed with the queue's defaults as they are when it leaves. Resolves
 * when the task was dispatched or left (it ended while waiting): the ready event is then acked.
 *
 * A slot taken for a task whose end has already passed would be held for good, as a task's end is
 * stored once. This dispatcher drops a task whose end it sees while the task waits here; an end
 * stored while no dispatcher held the ready event (a backlog, or a restart that handed it back) is
 * found otherwise. A task that has not started ends only by its flow's stop, so a task of a flow
 * known to be stopped (from the stop watch, free) goes to the executor at once without a slot, and
 * a limited queue reads the flow's stops from the log again once it has admitted a task. The
 * executor then decides, as for any task of a stopped flow: it cancels the task, or runs one the
 * stop spares. And whenever a task leaves without a slot, any slot an earlier delivery of it took
 * is given back (an idempotent release), as is one whose repeated dispatch finds the task ended.
 */
export function readyHandler(options: ReadyHandlerOptions): (ready: EventOf<'task.ready'>, msg: JsMsg) => Promise<void> {
  const { js, topo, policyOf, rooms, stops, limits, windowSize, dispatch } = options;
  // Thousands of ready events may be in hand at once (most of them waiting at a gate or a window);
  // their publishes go out a few hundred at a time so the pending requests do not pile up in memory.
  const dispatching = pLimit(DISPATCHING);
  // Thousands of tasks wait at once: what each holds while it waits is kept small (no per-task
  // helpers, no suspended frame of its own for the common case), as it is multiplied by them.
  const giveBack = async (limited: boolean, queue: string, key: string) => {
    if (limited) await limits.release([queue], key);
  };
  const withoutSlot = async (limited: boolean, queue: string, key: string, send: () => Promise<boolean>) => {
    await giveBack(limited, queue, key);
    await dispatching(send);
  };
  const throughGate = async (ready: EventOf<'task.ready'>, queue: string, key: string, send: () => Promise<boolean>, waiter: Omit<Waiter, 'admitted' | 'handBack' | 'concurrencyKey'>) => {
    const concurrencyKey = ready.data.concurrency_key;
    const admitted = await rooms.gate(queue).wait({ ...waiter, ...(concurrencyKey !== undefined && { concurrencyKey }) });
    if (!admitted) return;
    // The slot is recorded: a stop stored from now on ends the task later, and that end releases it.
    let stopped: boolean;
    try {
      stopped = (await stops.storedStop(ready.flow_id, ready.data.spec)) !== undefined;
    } catch (error) {
      await limits.release([queue], key);
      throw error;
    }
    if (stopped) return withoutSlot(true, queue, key, send);
    const repeated = await dispatching(send);
    // A dispatch whose acknowledgement was lost comes back, maybe as a first delivery (nats-server
    // 2.9), and is admitted again after its task may have run and released its slot.
    if (repeated && (await alreadyFinished(js, topo, ready))) await limits.release([queue], key);
  };
  return async (ready, msg) => {
    const queue = ready.data.queue;
    const limited = isLimited(policyOf(queue));
    const key = idempotencyKeyOf(ready.flow_id, ready.task_id);
    if (msg.info.deliveryCount > 1 && (await alreadyFinished(js, topo, ready))) return giveBack(limited, queue, key);
    // Dispatched from the window or the gate, maybe much later: in this event's trace, with the
    // queue's defaults as they are then.
    const send = bindTraceContext(() => dispatch(ready, withQueueDefaults(ready.data.spec, policyOf(queue))));
    if (stops.reasonFor(ready.flow_id, ready.data.spec) !== undefined) return withoutSlot(limited, queue, key, send);
    const waiter = { key, flowId: ready.flow_id, priority: ready.data.priority, seq: msg.seq, msg };
    if (limited) return throughGate(ready, queue, key, send, waiter);
    // The queue may become limited while the task waits at the window: it then waits at the gate.
    if (windowSize > 0) return rooms.window(queue).dispatch(waiter, send).then((exit) => (exit === 'limited' ? throughGate(ready, queue, key, send, waiter) : undefined));
    await dispatching(send);
  };
}
