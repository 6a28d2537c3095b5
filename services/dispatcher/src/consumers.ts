import { eventTypeFilter, READY_BATCH_MAX_TASKS, type EventOf, type FlowEvent } from '@taskstream/domain';
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
 * The `<consumer>` consumer of `task.ready` and `<consumer>-batches` of `tasks.ready` (nats-server
 * 2.9 allows one filter subject per consumer), their events held unacknowledged while their tasks
 * wait. Together they hold about `maxWaiting` tasks: a batch counts as its most tasks.
 */
export async function startReadyConsumers(
  ctx: ServiceContext,
  settings: ConsumerSettings,
  deadLetters: DeadLetters,
  onReady: (ready: EventOf<'task.ready'> | EventOf<'tasks.ready'>, msg: JsMsg) => Promise<void>,
): Promise<ConsumerLoop[]> {
  const { consumer, maxDeliver, ackWaitMs } = settings;
  const consumers = [
    { durable: consumer, type: 'task.ready' as const, concurrency: settings.maxWaiting },
    { durable: `${consumer}-batches`, type: 'tasks.ready' as const, concurrency: Math.max(1, Math.floor(settings.maxWaiting / READY_BATCH_MAX_TASKS)) },
  ];
  return Promise.all(
    consumers.map(async ({ durable, type, concurrency }) => {
      await ensureConsumer(ctx.jsm, ctx.topo.eventsStream, {
        durable_name: durable,
        filter_subject: eventTypeFilter(ctx.topo.layout, type),
        max_deliver: maxDeliver,
        ack_wait: ackWaitMs * 1_000_000,
        max_ack_pending: 50_000,
      });
      return startConsumerLoop({
        js: ctx.js,
        stream: ctx.topo.eventsStream,
        consumer: durable,
        source: 'dispatcher',
        decode: decodeEvent,
        handle: async (event, msg) => {
          if (event.type === 'task.ready' || event.type === 'tasks.ready') await onReady(event, msg);
        },
        span: eventSpan('admit'),
        deadLetters,
        log: ctx.log,
        maxDeliver,
        concurrency,
      });
    }),
  );
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
