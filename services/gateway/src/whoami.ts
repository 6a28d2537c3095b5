import { API_KEY_SCOPES, scopeIncludes, type ApiKeyScope, type ApiKeyStore } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { described, named } from './openapi/registry.js';
import { NO_QUERY } from './routes/input.js';

/**
 * GET /api/v1/whoami: what the key a request presents may do, so a client (the web UI) offers only
 * the actions it will be allowed. Any valid key may ask; with keys off the answer is every scope.
 */

const Whoami = named(
  'Whoami',
  z.object({
    auth: described(z.enum(['keys', 'none']), '`keys`: this gateway requires API keys; `none`: it serves anyone (loopback only)'),
    scope: described(z.enum(API_KEY_SCOPES), "the key's scope (`admin` with keys off)"),
    scopes: described(z.array(z.enum(API_KEY_SCOPES)), 'every scope the key holds: its own and the ones it includes'),
    key: described(
      z.object({ id: z.string(), name: z.string(), expires_at: z.string().optional() }).optional(),
      'the key that made the request (never its secret); absent with keys off',
    ),
  }),
  'What the presenting API key may do.',
);
type Whoami = z.infer<typeof Whoami>;

const whoami = {
  config: { scope: 'read' as ApiKeyScope },
  schema: {
    operationId: 'whoami',
    summary: "The request's API key and its scopes",
    description: 'For clients that show only what the key may do. Any valid key may ask.',
    tags: ['keys'],
    querystring: NO_QUERY,
    response: { 200: Whoami },
  },
} as const;

const scopesOf = (scope: ApiKeyScope) => API_KEY_SCOPES.filter((s) => scopeIncludes(scope, s));

export function registerWhoamiRoute(app: FastifyInstance, keys: ApiKeyStore): void {
  app.withTypeProvider<ZodTypeProvider>().get('/api/v1/whoami', whoami, async (request): Promise<Whoami> => {
    if (request.apiKey === undefined) return { auth: 'none', scope: 'admin', scopes: [...API_KEY_SCOPES] };
    const { id, scope } = request.apiKey;
    const record = await keys.get(id);
    return {
      auth: 'keys',
      scope,
      scopes: scopesOf(scope),
      key: { id, name: record?.name ?? id, ...(record?.expires_at !== undefined && { expires_at: record.expires_at }) },
    };
  });
}
