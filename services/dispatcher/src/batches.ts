import { readiedBy, readySubject, TERMINAL_TASK_EVENTS, type EventOf } from '@taskstream/domain';
import { encodeJson, readFlowHistory, traceHeaders, type JetStreamClient, type JsMsg, type Topology } from '@taskstream/nats';
import type { ReadyHandlers } from './ready.js';

export interface SplitOptions {
  js: JetStreamClient;
  topo: Topology;
  /** The dispatchers' consumer name: its share of the ready stream. */
  consumer: string;
  atOnce?: ReadyHandlers['atOnce'];
}

/** The tasks of the flow that the log shows started or ended: a batch delivered again leaves them out. */
async function tasksUnderWay(js: JetStreamClient, topo: Topology, flowId: string): Promise<Set<string>> {
  const underWay = new Set<string>();
  for (const { event } of await readFlowHistory(js, topo, flowId)) {
    if ('task_id' in event && (event.type === 'task.started' || TERMINAL_TASK_EVENTS.has(event.type))) underWay.add(event.task_id);
  }
  return underWay;
}

/**
 * Splits a `tasks.ready` into one message a task on `ts.ready.<consumer>.<queue>` (the dispatchers'
 * own stream, each consumer name its own share), each the `task.ready` that task would have had;
 * the batch is acknowledged once all are stored. A task then waits and leaves on its own message,
 * exactly as a `task.ready` does, so no message stays in hand for tasks that left long ago.
 *
 * A task that need not wait (see ReadyHandlers.atOnce) is dispatched from the batch at once, on its
 * first delivery: its work item is as durable as its message would be.
 *
 * A batch that comes again (its acknowledgement lost, its dispatcher dead midway) dispatches
 * nothing itself and stores nothing twice: each message's id is its task's, which the stream drops
 * as a repeat within its de-duplication window (10 minutes, against the 30 seconds before a batch
 * is delivered again), and the tasks the log shows started or ended are left out (one read of the
 * flow's history), for a batch that comes back later than that.
 */
export function splitBatch(options: SplitOptions): (batch: EventOf<'tasks.ready'>, msg: JsMsg) => Promise<void> {
  const { js, topo, consumer, atOnce } = options;
  const { layout } = topo;
  return async (batch, msg) => {
    const headers = traceHeaders();
    const again = msg.info.deliveryCount > 1;
    const underWay = again ? await tasksUnderWay(js, topo, batch.flow_id) : undefined;
    const readies = readiedBy(batch).filter((ready) => !underWay?.has(ready.task_id));
    await Promise.all(
      readies.map((ready, i) => {
        const leaving = again ? undefined : atOnce?.(ready, msg.seq + i / readies.length);
        return leaving ?? js.publish(readySubject(layout, consumer, ready.data.queue), encodeJson(ready), { msgID: `${consumer}:${ready.flow_id}:${ready.task_id}:task.ready`, ...(headers && { headers }) });
      }),
    );
  };
}
