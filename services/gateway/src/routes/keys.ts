import { API_KEY_ID_PATTERN, API_KEY_NAME_RULE, API_KEY_SCOPES, ApiKeyName, type ApiKeyScope, KEY_LIFETIME_RULE, MAX_KEY_LIFETIME_MS, parseKeyLifetime, type ApiKeyStore } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError } from '../errors.js';
import { described } from '../openapi/registry.js';
import { CreatedKey, KeyList } from '../openapi/schemas.js';
import { NO_QUERY, param, parseBody, Refusal } from './input.js';

/**
 * API keys: created (the only time a key's text is answered), listed (never a hash or a secret)
 * and revoked. Admin scope only.
 */

const keyId = described(
  param((raw) => (API_KEY_ID_PATTERN.test(raw) ? raw : new Refusal('must be a key id: the 12 characters after "ts_" in a key (see GET /api/v1/keys)')), undefined, {
    type: 'string',
    pattern: API_KEY_ID_PATTERN.source,
  }),
  'A key id: the 12 characters after "ts_" in a key.',
);
const KEY_PARAMS = z.object({ id: keyId });

const lifetime = `must be ${KEY_LIFETIME_RULE}, or a whole number of seconds up to ${MAX_KEY_LIFETIME_MS / 1000}`;
const CreateBody = z.strictObject(
  {
    name: z
      .string({ error: (issue) => (issue.input === undefined ? 'is required: a name saying who or what uses the key' : `must be ${API_KEY_NAME_RULE}`) })
      .refine((name) => ApiKeyName.safeParse(name).success, `must be ${API_KEY_NAME_RULE}`),
    scope: z.enum(API_KEY_SCOPES, { error: (issue) => (issue.input === undefined ? `is required: one of ${API_KEY_SCOPES.join(', ')}` : `must be one of ${API_KEY_SCOPES.join(', ')}`) }),
    expires_in: z
      .union([z.string(), z.number()], { error: lifetime })
      .transform((raw, ctx) => {
        const ms = typeof raw === 'number' ? (Number.isInteger(raw) && raw >= 1 && raw * 1000 <= MAX_KEY_LIFETIME_MS ? raw * 1000 : undefined) : parseKeyLifetime(raw);
        if (ms === undefined) ctx.issues.push({ code: 'custom', message: lifetime, input: raw });
        return ms ?? z.NEVER;
      })
      .optional(),
  },
  { error: 'must be a JSON object such as {"name": "ci", "scope": "submit", "expires_in": "90d"}' },
);

const admin = { scope: 'admin' as ApiKeyScope };

const create = {
  config: admin,
  schema: {
    operationId: 'createKey',
    summary: 'Create an API key',
    description: "The key's text is answered this once; no route returns it again.",
    tags: ['keys'],
    querystring: NO_QUERY,
    requestBody: CreateBody,
    response: { 201: CreatedKey },
    replyHeaders: { Location: 'the key' },
    errors: ['INVALID_BODY', 'INVALID_REQUEST'],
  },
} as const;

const list = { config: admin, schema: { operationId: 'listKeys', summary: 'API keys', tags: ['keys'], querystring: NO_QUERY, response: { 200: KeyList } } } as const;

const revoke = {
  config: admin,
  schema: {
    operationId: 'revokeKey',
    summary: 'Revoke an API key',
    description: 'For good: within a second no gateway accepts it. Revoking a revoked key is a 204 too.',
    tags: ['keys'],
    params: KEY_PARAMS,
    querystring: NO_QUERY,
    response: { 204: z.undefined() },
    errors: ['API_KEY_NOT_FOUND'],
  },
} as const;

export function registerKeyRoutes(app: FastifyInstance, keys: ApiKeyStore): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post('/api/v1/keys', create, async (request, reply) => {
    const { name, scope, expires_in: expiresInMs } = parseBody(request.body, CreateBody);
    const { info, key } = await keys.create({ name, scope, ...(expiresInMs !== undefined && { expiresInMs }) });
    request.log.info({ key_id: info.id, scope, by: request.apiKey?.id }, 'API key created');
    return reply.status(201).header('location', `/api/v1/keys/${info.id}`).send({ ...info, key });
  });

  api.get('/api/v1/keys', list, async () => ({ keys: await keys.list() }));

  api.delete('/api/v1/keys/:id', revoke, async (request, reply) => {
    const revoked = await keys.revoke(request.params.id);
    if (!revoked) throw apiError('API_KEY_NOT_FOUND', request.params.id);
    request.log.info({ key_id: revoked.id, by: request.apiKey?.id }, 'API key revoked');
    return reply.status(204).send();
  });
}
