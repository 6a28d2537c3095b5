import { eventTypeFilter, readyGroupFilter, type EventOf, type FlowEvent } from '@taskstream/domain';
import { decodeEvent, ensureConsumer, eventSpan, startConsumerLoop, startEventTypeLoops, type ConsumerLoop, type DeadLetters, type JsMsg } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { RELEASING } from './releases.js';

export interface ConsumerSettings {
  /** Durable name of the ready consumer; the release consumers are named after it. */
  consumer: string;
  maxDeliver: number;
  ackWaitMs: number;
  /** Ready events held at once, waiting or being dispatched. */
  maxWaiting: number;
}

/**
 * The ready consumers, their messages held unacknowledged while each task waits: `<consumer>` of
 * `task.ready` on the log, and `<consumer>` of the tasks split out of `tasks.ready` on the ready
 * stream. Each holds up to `maxWaiting` tasks.
 */
export async function startReadyConsumers(
  ctx: ServiceContext,
  settings: ConsumerSettings,
  deadLetters: DeadLetters,
  onReady: (ready: EventOf<'task.ready'>, msg: JsMsg) => Promise<void>,
): Promise<ConsumerLoop[]> {
  const { consumer, maxDeliver, ackWaitMs } = settings;
  const sources = [
    { stream: ctx.topo.eventsStream, filter: eventTypeFilter(ctx.topo.layout, 'task.ready') },
    { stream: ctx.topo.readyStream, filter: readyGroupFilter(ctx.topo.layout, consumer) },
  ];
  return Promise.all(
    sources.map(async ({ stream, filter }) => {
      await ensureConsumer(ctx.jsm, stream, { durable_name: consumer, filter_subject: filter, max_deliver: maxDeliver, ack_wait: ackWaitMs * 1_000_000, max_ack_pending: 50_000 });
      return startConsumerLoop({
        js: ctx.js,
        stream,
        consumer,
        source: 'dispatcher',
        decode: decodeEvent,
        handle: async (event, msg) => {
          if (event.type === 'task.ready') await onReady(event, msg);
        },
        span: eventSpan('admit'),
        deadLetters,
        log: ctx.log,
        maxDeliver,
        concurrency: settings.maxWaiting,
      });
    }),
  );
}

/** `<consumer>-batches` of `tasks.ready`, each split into its tasks' messages on the ready stream. */
export async function startBatchConsumer(ctx: ServiceContext, settings: ConsumerSettings, deadLetters: DeadLetters, onBatch: (batch: EventOf<'tasks.ready'>, msg: JsMsg) => Promise<void>): Promise<ConsumerLoop> {
  const { consumer, maxDeliver, ackWaitMs } = settings;
  const durable = `${consumer}-batches`;
  await ensureConsumer(ctx.jsm, ctx.topo.eventsStream, {
    durable_name: durable,
    filter_subject: eventTypeFilter(ctx.topo.layout, 'tasks.ready'),
    max_deliver: maxDeliver,
    ack_wait: ackWaitMs * 1_000_000,
    max_ack_pending: 1_000,
  });
  return startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.eventsStream,
    consumer: durable,
    source: 'dispatcher',
    decode: decodeEvent,
    handle: async (event, msg) => {
      if (event.type === 'tasks.ready') await onBatch(event, msg);
    },
    span: eventSpan('split'),
    deadLetters,
    log: ctx.log,
    maxDeliver,
    concurrency: 16,
  });
}

/**
 * The release consumers `<consumer>-release-<type>`, shared by every dispatcher: nats-server 2.9
 * allows one filter subject per consumer, so there is one per terminal type.
 */
export function startReleaseConsumers(ctx: ServiceContext, settings: ConsumerSettings, deadLetters: DeadLetters, onTerminal: (event: FlowEvent) => Promise<void>): Promise<ConsumerLoop[]> {
  const { consumer, maxDeliver, ackWaitMs } = settings;
  return startEventTypeLoops({
    js: ctx.js,
    jsm: ctx.jsm,
    topo: ctx.topo,
    types: RELEASING,
    nameOf: (type) => `${consumer}-release-${type.replace('task.', '').replace('_', '-')}`,
    // A release held by a dispatcher that died comes back after the ack wait.
    config: { ack_wait: ackWaitMs * 1_000_000, max_ack_pending: 10_000 },
    source: 'dispatcher-release',
    handle: onTerminal,
    deadLetters,
    log: ctx.log,
    maxDeliver,
    concurrency: 16,
  });
}
