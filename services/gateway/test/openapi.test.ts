import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { ApiKeyScope } from '@taskstream/nats';
import { createContext, type ServiceContext } from '@taskstream/runtime';
import { NatsServer } from '@taskstream/testing';
import { silentLogger } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import type { OpenAPIV3_1 } from 'openapi-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGateway, describeGateway } from '../src/app.js';
import { EXEMPT_ROUTES, routeScopes, SIGNED_ROUTES } from '../src/auth.js';
import { ERRORS, type ErrorCode } from '../src/errors.js';
import { TAGS } from '../src/openapi/document.js';

/** The checked-in document, written by `npm run schemas`. */
const CHECKED_IN = join(import.meta.dirname, '..', 'openapi.json');

type Operation = OpenAPIV3_1.OperationObject;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

function operations(document: OpenAPIV3_1.Document): Array<{ method: string; path: string; operation: Operation }> {
  return Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    METHODS.flatMap((method) => (item?.[method] ? [{ method: method.toUpperCase(), path, operation: item[method] as Operation }] : [])),
  );
}

/** A fastify route path as the document writes it: `/flows/:id` is `/flows/{id}`. */
const documentPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}').replace(/\/\*$/, '/{*}');

let document: OpenAPIV3_1.Document;

beforeAll(async () => {
  document = await describeGateway();
});

describe('the OpenAPI document', () => {
  it('is checked in as the routes describe it (run `npm run build && npm run schemas` after changing a route)', () => {
    const checkedIn = JSON.parse(readFileSync(CHECKED_IN, 'utf8'));
    expect(checkedIn, 'services/gateway/openapi.json is out of date').toEqual(JSON.parse(JSON.stringify(document)));
  });

  it('is valid OpenAPI 3.1, every reference resolved', async () => {
    const validator = new Validator();
    const result = await validator.validate(document as never);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('gives every operation a unique id, one known tag, a summary and its security', () => {
    const ids = operations(document).map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const tags = new Set(TAGS.map((tag) => tag.name));
    for (const { method, path, operation } of operations(document)) {
      const where = `${method} ${path}`;
      expect(operation.tags, where).toHaveLength(1);
      expect(tags.has(operation.tags![0]!), where).toBe(true);
      expect(operation.summary, where).toBeTruthy();
      expect(operation.security, where).toBeDefined();
    }
    expect(document.security).toEqual([{ apiKey: [] }]);
    expect(Object.keys(document.components?.securitySchemes ?? {})).toEqual(['apiKey', 'feedToken']);
  });

  it('lists every error code, each as a response of the status the table gives it', () => {
    const answered = new Set<string>();
    for (const { operation } of operations(document)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        for (const [, code] of (response as OpenAPIV3_1.ResponseObject).description.matchAll(/`([A-Z_]+)`/g)) {
          if (!(code! in ERRORS)) continue;
          expect(ERRORS[code as ErrorCode].status, `${code} under ${status}`).toBe(Number(status));
          answered.add(code!);
        }
      }
    }
    // No route answers ROUTE_NOT_FOUND: it is the answer when no route matches.
    expect([...answered].sort()).toEqual(Object.keys(ERRORS).filter((code) => code !== 'ROUTE_NOT_FOUND').sort());
    const errorSchema = document.components?.schemas?.Error as { description: string; properties: { error: { properties: { code: { enum: string[] } } } } };
    expect([...errorSchema.properties.error.properties.code.enum].sort()).toEqual(Object.keys(ERRORS).sort());
    for (const code of Object.keys(ERRORS)) expect(errorSchema.description).toContain(`\`${code}\``);
  });
});

describe('a gateway', () => {
  let nats: NatsServer;
  let ctx: ServiceContext;
  let gateway: FastifyInstance;

  beforeAll(async () => {
    nats = await NatsServer.start();
    ctx = await createContext({ natsUrl: nats.url, name: 'openapi', log: silentLogger });
    gateway = await buildGateway(ctx, { auth: 'keys', corsOrigins: ['https://app.example.com'], rateLimit: 1000 });
    await gateway.ready();
  });

  afterAll(async () => {
    await gateway?.close();
    await ctx?.nc.close();
    await nats?.stop();
  });

  it('describes each of its routes with the scope it needs, and only those', () => {
    const scoped = routeScopes(gateway).filter((route) => route.scope !== undefined && route.method !== 'HEAD');
    const described = operations(document).map(({ method, path }) => `${method} ${path}`);
    const publicOnes = EXEMPT_ROUTES.filter((route) => route.method === 'GET' && ['/healthz', '/readyz'].includes(route.url)).map((route) => `GET ${route.url}`);
    // Webhook deliveries carry a signature, verified by their trigger, instead of a key.
    publicOnes.push(...[...SIGNED_ROUTES].map((url) => `POST ${documentPath(url)}`));
    expect(described.sort()).toEqual([...scoped.map((route) => `${route.method} ${documentPath(route.url)}`), ...publicOnes].sort());
    for (const route of scoped) {
      const operation = (document.paths![documentPath(route.url)] as Record<string, Operation>)[route.method.toLowerCase()]!;
      const where = `${route.method} ${route.url}`;
      expect(operation.security?.[0], where).toEqual({ apiKey: [route.scope] });
      expect(operation.description, where).toMatch(new RegExp(`^Scope: \`${route.scope}\``));
      expect(Object.keys(operation.responses ?? {}), where).toEqual(expect.arrayContaining(['401', '403', '429']));
    }
    for (const path of ['/healthz', '/readyz']) {
      expect(document.paths![path]!.get!.security).toEqual([]);
      expect(document.paths![path]!.get!.description).toMatch(/^Public: no API key needed/);
    }
    expect(document.paths!['/api/v1/hooks/{name}']!.post!.security).toEqual([]);
    expect(ApiKeyScope.options).toEqual(['read', 'submit', 'admin']);
  });

  it('serves the document and the reference without a key, nothing in them fetched from elsewhere', async () => {
    const served = await gateway.inject({ method: 'GET', url: '/openapi.json' });
    expect(served.statusCode).toBe(200);
    expect(served.json()).toEqual(JSON.parse(JSON.stringify(document)));
    expect(served.headers['x-content-type-options']).toBe('nosniff');

    const page = await gateway.inject({ method: 'GET', url: '/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(3);
    for (const asset of assets) {
      expect(asset, asset).toMatch(/^\/docs\/static\//);
      expect((await gateway.inject({ method: 'GET', url: asset })).statusCode, asset).toBe(200);
    }
    const start = await gateway.inject({ method: 'GET', url: '/docs/static/start.js' });
    expect(start.body).toContain('url: "/openapi.json"');
    expect(start.body).toContain('validatorUrl: null');
    const missing = await gateway.inject({ method: 'GET', url: '/docs/static/..%2Fpackage.json' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('still asks a key of every other route', async () => {
    expect((await gateway.inject({ method: 'GET', url: '/api/v1/flows' })).statusCode).toBe(401);
    expect((await gateway.inject({ method: 'GET', url: '/openapi.json?x=1' })).json().error).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'x' });
  });
});
