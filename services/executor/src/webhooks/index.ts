import type { DeadLetters } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { parseAllowList } from '../steps/address-policy.js';
import { guardedDispatcher } from '../steps/http.js';
import { startWebhookConsumers, WEBHOOK_MAX_DELIVER } from './consumers.js';
import { WebhookDelivery } from './delivery.js';

export { webhookConsumerName, WEBHOOK_MAX_DELIVER } from './consumers.js';
export { signingKey, webhookHeaders, webhookSignature } from './sign.js';

export interface WebhookOptions {
  /** What webhooks may reach besides public addresses (TASKSTREAM_WEBHOOK_ALLOW), the same on every executor. */
  allow: readonly string[];
  readSecret: (name: string) => Promise<string | undefined>;
  deadLetters: DeadLetters;
}

/** Completion webhooks of every flow, delivered by this process among all executors. */
export async function startWebhooks(ctx: ServiceContext, options: WebhookOptions): Promise<{ stop(): Promise<void> }> {
  const dispatcher = guardedDispatcher(parseAllowList(options.allow));
  const delivery = new WebhookDelivery({ ctx, dispatcher, readSecret: options.readSecret, maxDeliver: WEBHOOK_MAX_DELIVER });
  const loops = await startWebhookConsumers(ctx, delivery, options.deadLetters);
  return {
    async stop() {
      await Promise.all(loops.map((loop) => loop.stop()));
      await dispatcher.close();
    },
  };
}
