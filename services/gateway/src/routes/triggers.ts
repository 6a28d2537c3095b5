import { TriggerBody, TriggerName, TRIGGER_NAME_RULE, type StoredTrigger } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError } from '../errors.js';
import { described } from '../openapi/registry.js';
import type { Triggers } from '../triggers.js';
import { NO_QUERY, param, quote, readJson, Refusal } from './input.js';

export const triggerName = described(
  param((raw) => (TriggerName.safeParse(raw).success ? raw : new Refusal(`must be a trigger name (${TRIGGER_NAME_RULE}), not ${quote(raw)}`)), undefined, {
    type: 'string',
    pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$',
  }),
  `A trigger name: ${TRIGGER_NAME_RULE}.`,
);
export const TRIGGER_PARAMS = z.object({ name: triggerName });

const time = z.string();
const TriggerSchema = z.object({
  name: z.string(),
  template: z.string(),
  version: z.number().int().optional(),
  params: z.record(z.string(), z.unknown()),
  verify: described(z.object({ scheme: z.string(), secret: z.string().optional(), header: z.string().optional(), tolerance_secs: z.number().optional() }), "How deliveries are verified: the secret's name, never its value."),
  description: z.string().optional(),
  hook: described(z.string(), 'Where senders deliver: POST this path.'),
  created_at: time,
  updated_at: time,
});

const tags = ['triggers'];
const one = { tags, params: TRIGGER_PARAMS, querystring: NO_QUERY } as const;
const list = { config: { scope: 'read' }, schema: { operationId: 'listTriggers', summary: 'Webhook triggers', description: 'By name; secrets by name only.', tags, querystring: NO_QUERY, response: { 200: z.object({ triggers: z.array(TriggerSchema) }) } } } as const;
const put = {
  config: { scope: 'admin' },
  schema: {
    ...one,
    operationId: 'putTrigger',
    summary: 'Create or replace a webhook trigger',
    description:
      'Body `{template, version?, params, verify: {scheme, secret?, header?, tolerance_secs?}, description?}`. The template (and version) and the secret must exist. Deliveries then go to `POST /api/v1/hooks/{name}`.',
    requestBody: TriggerBody,
    response: { 200: described(TriggerSchema, 'Replaced.'), 201: described(TriggerSchema, 'Created.') },
    replyHeaders: { Location: 'the trigger' },
    errors: ['INVALID_BODY', 'INVALID_TRIGGER', 'LIMIT_REACHED'],
  },
} as const;
const get = { config: { scope: 'read' }, schema: { ...one, operationId: 'getTrigger', summary: 'A webhook trigger', description: "Its secret's name, never its value.", response: { 200: TriggerSchema }, errors: ['TRIGGER_NOT_FOUND'] } } as const;
const remove = { config: { scope: 'admin' }, schema: { ...one, operationId: 'deleteTrigger', summary: 'Delete a webhook trigger', description: 'Its deliveries are refused from then on (404).', response: { 204: z.undefined() }, errors: ['TRIGGER_NOT_FOUND'] } } as const;

export const shown = (t: StoredTrigger) => ({ ...t, hook: `/api/v1/hooks/${t.name}` });

export function registerTriggerRoutes(app: FastifyInstance, triggers: Triggers): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/api/v1/triggers', list, async () => ({ triggers: (await triggers.store.list()).map(shown) }));

  api.put('/api/v1/triggers/:name', put, async (request, reply) => {
    if (typeof request.body !== 'string' || request.body.trim() === '') throw apiError('INVALID_BODY', 'it is empty; send {"template": "…", "params": {…}, "verify": {…}} as application/json');
    const { trigger, created } = await triggers.put(request.params.name, readJson(request.body));
    return reply.status(created ? 201 : 200).header('location', `/api/v1/triggers/${trigger.name}`).send(shown(trigger));
  });

  api.get('/api/v1/triggers/:name', get, async (request) => shown(await triggers.get(request.params.name)));

  api.delete('/api/v1/triggers/:name', remove, async (request, reply) => {
    if (!(await triggers.store.delete(request.params.name))) throw apiError('TRIGGER_NOT_FOUND', request.params.name);
    return reply.status(204).send();
  });
}
