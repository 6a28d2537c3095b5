import { ApiKeyScope, dayOf, scopeIncludes, type ApiKeyStore, type ApiKeyTable } from '@taskstream/nats';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { apiError } from './errors.js';

/**
 * API keys and scopes. Every route declares the scope it needs (`config: { scope: 'read' }`); a
 * route registered without one, other than those in EXEMPT_ROUTES, stops the gateway from building.
 * With keys on, an onRequest hook answers 401 (one body for every reason, so it tells nothing) or
 * 403 (naming the scope needed) before anything else about the request is looked at.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a key needs for this route. */
    scope?: ApiKeyScope;
    /** A WebSocket feed: browsers, which cannot set headers on one, may send the key as `?token=`. */
    queryToken?: boolean;
  }
  interface FastifyRequest {
    /** The key that authenticated this request (absent with keys off, and on health routes). */
    apiKey?: { id: string; scope: ApiKeyScope };
  }
}

/**
 * The API document and its browsable reference, a page and its files (see openapi/): they describe
 * the API without using it, and a browser opening /docs cannot send a key.
 */
export const DOCS_ROUTES: readonly string[] = ['/openapi.json', '/docs', '/docs/static/:file'];

/** The web UI's page and files (see ui.ts): they hold no data, and the page sends the key its user enters with each call it makes. */
export const UI_ROUTES: readonly string[] = ['/ui', '/ui/*'];

/** Routes that need no key: health checks, for load balancers and orchestrators, the metrics, for Prometheus, the API's description, and the web UI. */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics', ...DOCS_ROUTES, '/tasked/healthz', ...UI_ROUTES]);

/**
 * Routes registered without a scope, and why. Health checks, metrics, the API's description and the web UI are public; the CORS preflight route
 * (only when origins are configured) is answered by the CORS hook before authentication, as
 * browsers send preflights without credentials, and otherwise needs a valid key like an unknown route.
 */
export const EXEMPT_ROUTES: ReadonlyArray<{ method: string; url: string }> = [
  { method: 'GET', url: '/healthz' },
  { method: 'HEAD', url: '/healthz' },
  { method: 'GET', url: '/readyz' },
  { method: 'HEAD', url: '/readyz' },
  { method: 'GET', url: '/metrics' },
  { method: 'HEAD', url: '/metrics' },
  ...DOCS_ROUTES.flatMap((url) => [
    { method: 'GET', url },
    { method: 'HEAD', url },
  ]),
  { method: 'OPTIONS', url: '*' },
  // Webhook deliveries carry a signature instead of a key, verified by their trigger (routes/hooks.ts).
  { method: 'POST', url: '/api/v1/hooks/:name' },
  // Tasked's health check, public as Tasked's (the Tasked-compatible API, see tasked/).
  { method: 'GET', url: '/tasked/healthz' },
  { method: 'HEAD', url: '/tasked/healthz' },
  ...UI_ROUTES.flatMap((url) => [
    { method: 'GET', url },
    { method: 'HEAD', url },
  ]),
];

/** Routes whose requests authenticate themselves (a webhook's signature): no API key, but rate-limited like any other. */
export const SIGNED_ROUTES: ReadonlySet<string> = new Set(['/api/v1/hooks/:name']);

export interface RouteScope {
  method: string;
  url: string;
  scope: ApiKeyScope | undefined;
}

const registries = new WeakMap<FastifyInstance, RouteScope[]>();

/** Every route the gateway registered, with the scope it declared. */
export function routeScopes(app: FastifyInstance): readonly RouteScope[] {
  return registries.get(app) ?? [];
}

const isExempt = (method: string, url: string) => EXEMPT_ROUTES.some((r) => r.method === method && r.url === url);

/** Keeps the route table and refuses a route without a scope. Register before any route. */
export function requireScopes(app: FastifyInstance): void {
  const registry: RouteScope[] = [];
  registries.set(app, registry);
  app.addHook('onRoute', (route: RouteOptions) => {
    const scope = route.config?.scope;
    for (const method of [route.method].flat()) {
      if (scope === undefined && !isExempt(method, route.url)) {
        throw new Error(`route ${method} ${route.url} declares no scope; give it config.scope (${ApiKeyScope.options.join(', ')}), or list it in EXEMPT_ROUTES with the reason`);
      }
      if (scope !== undefined && !ApiKeyScope.safeParse(scope).success) throw new Error(`route ${method} ${route.url} declares an unknown scope`);
      registry.push({ method, url: route.url, scope });
    }
  });
}

/** The key a request presents: `Authorization: Bearer <key>`, or `?token=<key>` on a feed. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer +(\S+) *$/i.exec(header);
    return m ? m[1] : '';
  }
  return undefined;
}

/**
 * Takes `token` out of a feed's query (so it is neither refused as unknown nor seen by anything
 * later) and returns it.
 */
function takeQueryToken(request: FastifyRequest): string | undefined {
  if (!request.routeOptions.config.queryToken) return undefined;
  const query = request.query as Record<string, unknown>;
  if (!Object.hasOwn(query, 'token')) return undefined;
  const token = query.token;
  delete query.token;
  return typeof token === 'string' ? token : '';
}

/** A URL with the value of any `token` query parameter replaced, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

export interface KeyAuth {
  table: ApiKeyTable;
  store: ApiKeyStore;
}

/** Who made a request, for the history (`submitted_by`, `requested_by`): its API key's id, never the key. */
export function requester(request: FastifyRequest): string | undefined {
  return request.apiKey === undefined ? undefined : `key:${request.apiKey.id}`;
}

/**
 * Authenticates every request with `auth`, or none without it (keys off); either way a feed's
 * `token` parameter is removed from its query.
 */
export function authenticate(app: FastifyInstance, auth: KeyAuth | undefined): void {
  // Days on which this gateway already recorded a key's use: at most one write per key a day.
  const marked = new Map<string, string>();
  app.decorateRequest('apiKey', undefined);
  app.addHook('onRequest', async (request, reply) => {
    const queryToken = takeQueryToken(request);
    if (!auth) return;
    const url = request.routeOptions.url;
    if (url !== undefined && PUBLIC_ROUTES.has(url)) return;
    if (url !== undefined && SIGNED_ROUTES.has(url)) return;
    const header = presentedKey(request);
    const now = Date.now();
    const check = auth.table.check(header ?? queryToken, now);
    if (!check.ok) {
      reply.header('www-authenticate', 'Bearer');
      throw apiError('UNAUTHORIZED');
    }
    const { id, scope, last_used_on: lastUsed } = check.record;
    request.apiKey = { id, scope };
    const today = dayOf(now);
    if ((lastUsed === undefined || lastUsed < today) && marked.get(id) !== today) {
      marked.set(id, today);
      auth.store.markUsed(id, today).catch((error: unknown) => {
        marked.delete(id);
        request.log.warn({ err: error, key_id: id }, 'could not record that an API key was used');
      });
    }
    // An unknown route (and a preflight the CORS hook did not answer) needs a valid key, any scope.
    const needed = request.routeOptions.config.scope;
    if (needed !== undefined && !scopeIncludes(scope, needed)) throw apiError('FORBIDDEN', needed, scope);
  });
}

/** Headers every response carries: no sniffing, no framing, no referrer, nothing cached. */
export function securityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-store');
    return payload;
  });
}
