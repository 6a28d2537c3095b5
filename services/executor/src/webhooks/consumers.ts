import { WEBHOOK_TRIGGERS, type EventType } from '@taskstream/domain';
import { DeliverPolicy, eventSpan, startEventTypeLoops, type ConsumerLoop, type DeadLetters } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { WebhookDelivery } from './delivery.js';

/**
 * Deliveries of one message, above the attempts a webhook may make: a message is also delivered
 * again when an executor stops or dies holding it, and those deliveries make no attempt.
 */
export const WEBHOOK_MAX_DELIVER = 30;
/** Longer than an attempt may take (WEBHOOK_ATTEMPT_TIMEOUT_MS), so a live executor's message is not handed to another. */
const WEBHOOK_ACK_WAIT_MS = 60_000;
/** Webhooks posted at once by one executor process. */
const WEBHOOK_CONCURRENCY = 16;

/** `executor-webhook-succeeded`, `-failed`, `-cancelled`: one per flow-ending type (nats-server 2.9: one filter per consumer). */
export function webhookConsumerName(type: EventType): string {
  return `executor-webhook-${type.replace('flow.', '')}`;
}

/**
 * The webhook consumers, shared by every executor process of every queue: whichever takes a
 * flow's end delivers its webhook. Created delivering new events only, so an installation that
 * gains webhooks does not call them for flows that ended before.
 */
export function startWebhookConsumers(ctx: ServiceContext, delivery: WebhookDelivery, deadLetters: DeadLetters): Promise<ConsumerLoop[]> {
  return startEventTypeLoops({
    js: ctx.js,
    jsm: ctx.jsm,
    topo: ctx.topo,
    types: Object.keys(WEBHOOK_TRIGGERS) as EventType[],
    nameOf: webhookConsumerName,
    config: { deliver_policy: DeliverPolicy.New, ack_wait: WEBHOOK_ACK_WAIT_MS * 1_000_000, max_ack_pending: 10_000 },
    source: 'executor-webhooks',
    handle: delivery.handle,
    span: eventSpan('call webhook for'),
    deadLetters,
    log: ctx.log,
    maxDeliver: WEBHOOK_MAX_DELIVER,
    concurrency: WEBHOOK_CONCURRENCY,
  });
}
