import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ApiError } from '../errors.js';
import { described } from '../openapi/registry.js';
import type { Triggers } from '../triggers.js';
import { traceFlow } from '../tracing.js';
import { NO_QUERY } from './input.js';
import { TRIGGER_PARAMS } from './triggers.js';

/** The webhook route: public (the signature is the credential), its body read as raw bytes. */
export const HOOK_ROUTE = '/api/v1/hooks/:name';

const Started = z.object({
  flow_id: z.string(),
  status: z.literal('submitted'),
  replayed: described(z.boolean(), 'true when this delivery was received before: its first run is answered and nothing new is started'),
  delivery_id: z.string(),
  template: z.object({ name: z.string(), version: z.number().int() }).optional(),
  links: z.object({ self: z.string() }),
});

const deliver = {
  schema: {
    operationId: 'deliverWebhook',
    summary: 'Deliver a webhook to a trigger',
    description:
      "Verified as the trigger says (Standard Webhooks, GitHub, Stripe, a plain HMAC header, or none), against the body's raw bytes; then the trigger's template runs with params mapped from the body and headers. A delivery seen before (by its id) answers the first run's flow and starts nothing. Needs no API key: the signature is the credential. A refused signature is logged without the body.",
    tags: ['triggers'],
    params: TRIGGER_PARAMS,
    querystring: NO_QUERY,
    response: { 200: described(Started, 'A replayed delivery: its first run.'), 202: described(Started, 'Started.') },
    replyHeaders: { Location: 'the flow' },
    errors: ['TRIGGER_NOT_FOUND', 'INVALID_SIGNATURE', 'INVALID_BODY', 'INVALID_PARAMS', 'TRIGGER_MISCONFIGURED', 'FLOW_TOO_LARGE'],
  },
} as const;

/** Header values as one string each (repeated headers joined as HTTP joins them). */
function headersOf(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    Object.defineProperty(out, name.toLowerCase(), { value: Array.isArray(value) ? value.join(', ') : value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export function registerHookRoutes(app: FastifyInstance, triggers: Triggers): void {
  // A scope of its own: any content type, read as bytes, which is what senders sign.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    const api = scope.withTypeProvider<ZodTypeProvider>();
    api.post(HOOK_ROUTE, deliver, async (request, reply) => {
      const name = request.params.name;
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      let run;
      try {
        run = await triggers.deliver(name, { body, headers: headersOf(request.headers) }, request.headers['content-type']);
      } catch (error) {
        // The attempt is logged with why it was refused, never with the body.
        if (error instanceof ApiError && error.code === 'INVALID_SIGNATURE') request.log.warn({ trigger: name, remoteAddress: request.ip, reason: error.message }, 'refused a webhook delivery');
        if (error instanceof ApiError && error.code === 'TRIGGER_MISCONFIGURED') request.log.error({ trigger: name, reason: error.message }, 'a webhook trigger cannot start runs');
        throw error;
      }
      traceFlow(request, run.flowId);
      const self = `/api/v1/flows/${run.flowId}`;
      return reply
        .status(run.replayed ? 200 : 202)
        .header('location', self)
        .send({ flow_id: run.flowId, status: 'submitted', replayed: run.replayed, delivery_id: run.deliveryId, ...(run.template && { template: run.template }), links: { self } });
    });
  });
}
