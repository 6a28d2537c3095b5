import { EVENT_VERSION, idempotencyKeyOf, workSubject, type EventOf, type FlowEvent, type WorkItem } from '@taskstream/domain';
import {
  DeadLetters,
  decodeEvent,
  encodeJson,
  ensureConsumer,
  EventLog,
  newId,
  startConsumerLoop,
} from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';

export interface DispatcherOptions {
  consumer?: string;
  maxDeliver?: number;
  /** Ready tasks handled at once. */
  concurrency?: number;
}

/**
 * Turns `task.ready` into a work item on the task's queue and records `task.dispatched`.
 * Both publishes are keyed, so a redelivered ready event dispatches nothing twice; the ready event
 * is acknowledged only after both are stored. Rate and concurrency limits plug in here.
 */
export async function startDispatcher(ctx: ServiceContext, options: DispatcherOptions = {}): Promise<ServiceHandle> {
  const consumer = options.consumer ?? 'dispatcher';
  const maxDeliver = options.maxDeliver ?? 10;
  const { layout } = ctx.topo;
  await ensureConsumer(ctx.jsm, ctx.topo.eventsStream, {
    durable_name: consumer,
    filter_subject: `${layout.prefix}.evt.*.*.task.ready`,
    max_deliver: maxDeliver,
    ack_wait: 30_000_000_000,
    max_ack_pending: 10_000,
  });
  const log = new EventLog(ctx.js, ctx.topo);

  async function dispatch(ready: EventOf<'task.ready'>): Promise<void> {
    const now = new Date();
    const item: WorkItem = {
      version: 1,
      flow_id: ready.flow_id,
      task_id: ready.task_id,
      spec: ready.data.spec,
      idempotency_key: idempotencyKeyOf(ready.flow_id, ready.task_id),
      dispatched_at: now.toISOString(),
    };
    const key = `${ready.flow_id}:${ready.task_id}`;
    await log.append(
      {
        id: newId(now.getTime()),
        type: 'task.dispatched',
        version: EVENT_VERSION,
        flow_id: ready.flow_id,
        task_id: ready.task_id,
        time: now.toISOString(),
        data: { queue: ready.data.queue },
      },
      `${key}:task.dispatched`,
    );
    // Recorded before the work item is out, so the history never shows a start before its dispatch.
    await ctx.js.publish(workSubject(layout, ready.data.queue), encodeJson(item), { msgID: `${key}:work` });
  }

  const loop = await startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.eventsStream,
    consumer,
    source: 'dispatcher',
    decode: decodeEvent,
    handle: async (event: FlowEvent) => {
      if (event.type === 'task.ready') await dispatch(event);
    },
    deadLetters: new DeadLetters(ctx.js, ctx.topo),
    log: ctx.log,
    maxDeliver,
    concurrency: options.concurrency ?? 64,
  });
  ctx.log.info({ consumer }, 'dispatcher started');
  return { name: 'dispatcher', stop: () => loop.stop() };
}
