import { eventTypeFilter, type EventOf, type FlowEvent } from '@taskstream/domain';
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

/** The `<consumer>` consumer of `task.ready`, held unacknowledged while each task waits. */
export async function startReadyConsumer(
  ctx: ServiceContext,
  settings: ConsumerSettings,
  deadLetters: DeadLetters,
  onReady: (ready: EventOf<'task.ready'>, msg: JsMsg) => Promise<void>,
): Promise<ConsumerLoop> {
  const { consumer, maxDeliver, ackWaitMs } = settings;
  await ensureConsumer(ctx.jsm, ctx.topo.eventsStream, {
    durable_name: consumer,
    filter_subject: eventTypeFilter(ctx.topo.layout, 'task.ready'),
    max_deliver: maxDeliver,
    ack_wait: ackWaitMs * 1_000_000,
    max_ack_pending: 50_000,
  });
  return startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.eventsStream,
    consumer,
    source: 'dispatcher',
    decode: decodeEvent,
    // Not an async wrapper: each waiting task would hold one more suspended frame.
    handle: (event, msg) => (event.type === 'task.ready' ? onReady(event, msg) : Promise.resolve()),
    span: eventSpan('admit'),
    deadLetters,
    log: ctx.log,
    maxDeliver,
    concurrency: settings.maxWaiting,
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
