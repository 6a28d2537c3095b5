import { API_KEY_ID_PATTERN, API_KEY_NAME_RULE, API_KEY_SCOPES, ApiKeyName, type ApiKeyScope, KEY_LIFETIME_RULE, MAX_KEY_LIFETIME_MS, parseKeyLifetime, type ApiKeyStore } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiError } from '../errors.js';
import { NO_QUERY, param, parseBody, Refusal } from './input.js';

/**
 * API keys: created (the only time a key's text is answered), listed (never a hash or a secret)
 * and revoked. Admin scope only.
 */

const keyId = param((raw) => (API_KEY_ID_PATTERN.test(raw) ? raw : new Refusal('must be a key id: the 12 characters after "ts_" in a key (see GET /api/v1/keys)')));
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

export function registerKeyRoutes(app: FastifyInstance, keys: ApiKeyStore): void {
  const admin = { scope: 'admin' as ApiKeyScope, query: NO_QUERY };

  app.post<{ Body: string | undefined }>('/api/v1/keys', { config: admin }, async (request, reply) => {
    const { name, scope, expires_in: expiresInMs } = parseBody(request.body, CreateBody);
    const { info, key } = await keys.create({ name, scope, ...(expiresInMs !== undefined && { expiresInMs }) });
    request.log.info({ key_id: info.id, scope, by: request.apiKey?.id }, 'API key created');
    return reply.status(201).header('location', `/api/v1/keys/${info.id}`).send({ ...info, key });
  });

  app.get('/api/v1/keys', { config: admin }, async () => ({ keys: await keys.list() }));

  app.delete<{ Params: z.output<typeof KEY_PARAMS> }>('/api/v1/keys/:id', { config: { ...admin, params: KEY_PARAMS } }, async (request, reply) => {
    const revoked = await keys.revoke(request.params.id);
    if (!revoked) throw apiError('API_KEY_NOT_FOUND', request.params.id);
    request.log.info({ key_id: revoked.id, by: request.apiKey?.id }, 'API key revoked');
    return reply.status(204).send();
  });
}
