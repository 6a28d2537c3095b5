import swagger from '@fastify/swagger';
import type { ApiKeyScope } from '@taskstream/nats';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { createJsonSchemaTransform, createJsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { OpenAPIV3_1 } from 'openapi-types';
import { z } from 'zod';
import { ERROR_WHEN, ERRORS, type ErrorCode } from '../errors.js';
import { NO_QUERY } from '../routes/input.js';
import { registerReference } from './reference.js';
import { apiSchemas, wireSchema, type JsonSchema } from './registry.js';
import './schemas.js';

/**
 * The OpenAPI 3.1 document, made by @fastify/swagger from the routes' zod schemas (converted by
 * fastify-type-provider-zod), with what the schemas do not say added per route from its config:
 * the scope it needs, its security, and the errors it may answer. Served at GET /openapi.json, and
 * browsable at GET /docs (Swagger UI: see reference.ts).
 */

declare module 'fastify' {
  interface FastifySchema {
    /** Error codes the route answers beyond those every route may (`errorsOf`), for the document. */
    errors?: readonly ErrorCode[];
    /**
     * The body's schema, for the document only: handlers read the raw text themselves (JSON or
     * YAML; see parseBody), with their own error answers.
     */
    requestBody?: z.ZodType;
    /** The body may be left out (it then means `{}`). */
    optionalBody?: boolean;
    /** Headers of the route's successful answer, by name, with what they say. */
    replyHeaders?: Readonly<Record<string, string>>;
  }
}

/** Where the document is served. */
export const OPENAPI_URL = '/openapi.json';

export const TAGS: ReadonlyArray<{ name: string; description: string }> = [
  { name: 'flows', description: 'Submitting, listing, reading and cancelling flows.' },
  { name: 'history', description: "A flow's log at any point: the audit export, its state at a sequence, its graph; reruns and forks." },
  { name: 'feeds', description: 'WebSocket feeds of events, stored then live, resumable with `after`.' },
  { name: 'queues', description: 'Queue policies (limits and task defaults) and live queue statistics.' },
  { name: 'dead letters', description: 'Messages set aside by the services, for operators.' },
  { name: 'secrets', description: 'Write-only values that flows reference as `${secrets.NAME}`.' },
  { name: 'keys', description: 'API keys: created, listed and revoked.' },
  { name: 'templates', description: 'Versioned flow templates with a params schema, and their runs.' },
  { name: 'triggers', description: 'Webhook triggers: a verified delivery runs a template with params mapped from it.' },
  { name: 'signals', description: 'Signals that wait tasks wait for: sent once, matched against every waiting task.' },
  { name: 'schedules', description: 'Schedules: a flow or a template run at each time of a cron expression, once per scheduled time.' },
  { name: 'mcp', description: 'MCP (Model Context Protocol) over Streamable HTTP, for AI agents: tools, resources and subscriptions (docs/mcp.md).' },
  { name: 'health', description: 'Liveness and readiness, for load balancers and orchestrators.' },
  { name: 'tasked', description: "Tasked's REST API under /tasked, in Tasked's shapes, states and `{error, message}` bodies, for Tasked's clients." },
];

const SCOPE_TEXT: Record<ApiKeyScope | 'public', string> = {
  read: 'Scope: `read` (a `submit` or `admin` key may too).',
  submit: 'Scope: `submit` (an `admin` key may too).',
  admin: 'Scope: `admin`.',
  public: 'Public: no API key needed.',
};

const OPENAPI: Partial<OpenAPIV3_1.Document> = {
  openapi: '3.1.0',
  info: {
    title: 'Taskstream API',
    version: 'v1',
    description:
      'Event-sourced DAG workflows on NATS JetStream: submit flows, follow their events, read their history. Every error has one shape (the `Error` schema) and says what to do. See docs/api.md for the whole guide.',
  },
  components: {
    securitySchemes: {
      apiKey: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'ts_<id>_<secret>',
        description:
          'An API key, sent as `Authorization: Bearer ts_…`. Each key has one scope: `read`, `submit` or `admin`, each including the ones before it; the role named in an operation\'s security requirement is the scope it needs. A gateway on loopback may run without keys (TASKSTREAM_AUTH=none).',
      },
      feedToken: {
        type: 'apiKey',
        in: 'query',
        name: 'token',
        description: 'WebSocket feeds only: the API key as `?token=ts_…`, for browsers, which cannot set headers on a WebSocket.',
      },
    },
  },
  security: [{ apiKey: [] }],
  tags: [...TAGS],
};

/** Errors any request may meet before its route runs, or from the backend. */
const ANY_REQUEST: readonly ErrorCode[] = ['MALFORMED_REQUEST', 'INVALID_URL', 'REQUEST_TIMEOUT', 'URI_TOO_LONG', 'HEADERS_TOO_LARGE', 'INTERNAL', 'UNAVAILABLE'];
const WITH_KEY: readonly ErrorCode[] = ['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED'];
const WITH_BODY: readonly ErrorCode[] = ['BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

/** Every error code a route may answer with. */
export function errorsOf(schema: FastifySchema, method: string, scope: ApiKeyScope | undefined): ErrorCode[] {
  const codes = new Set<ErrorCode>(ANY_REQUEST);
  if (scope !== undefined) WITH_KEY.forEach((code) => codes.add(code));
  if (schema.querystring !== undefined || schema.params !== undefined) codes.add('INVALID_PARAMETER');
  if (method === 'POST' || method === 'PUT') WITH_BODY.forEach((code) => codes.add(code));
  schema.errors?.forEach((code) => codes.add(code));
  return [...codes];
}

const STATUS_TEXT: Record<string, string> = { 101: 'Switching Protocols', 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content' };

type Responses = Record<string, JsonSchema>;

/** Response headers as the document states them. */
function headersOf(headers: Readonly<Record<string, string>>, schema: JsonSchema = { type: 'string' }): JsonSchema {
  return Object.fromEntries(Object.entries(headers).map(([name, description]) => [name, { ...schema, description }]));
}

/** Each declared answer as a response object with a description; JSON unless it says its content types. */
function successResponses(declared: Responses, replyHeaders: Readonly<Record<string, string>> = {}): Responses {
  const out: Responses = {};
  for (const [status, json] of Object.entries(declared)) {
    const description = (json.description as string | undefined) ?? STATUS_TEXT[status] ?? status;
    const headers = Number(status) < 300 && Object.keys(replyHeaders).length > 0 ? { headers: headersOf(replyHeaders) } : {};
    if (status === '204') out[status] = { type: 'null', description };
    else out[status] = 'content' in json ? { ...json, description, ...headers } : { description, content: { 'application/json': { schema: json } }, ...headers };
  }
  return out;
}

/** Headers that come with some errors. */
const ERROR_HEADERS: Record<number, Record<string, string>> = {
  401: { 'WWW-Authenticate': 'Bearer' },
  429: {
    'Retry-After': 'seconds to wait before retrying',
    'X-RateLimit-Limit': 'requests allowed a second',
    'X-RateLimit-Remaining': 'requests left this second',
    'X-RateLimit-Reset': 'seconds until the limit resets',
  },
};

/** One response per error status, naming its codes; a status the route declares itself keeps its own. */
function errorResponses(codes: readonly ErrorCode[], declared: Responses): Responses {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(ERRORS[code].status, [...(byStatus.get(ERRORS[code].status) ?? []), code]);
  const out: Responses = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    if (String(status) in declared) continue;
    const description = list.map((code) => `- \`${code}\`: ${ERROR_WHEN[code]}`).join('\n');
    const headers = ERROR_HEADERS[status] ? { headers: headersOf(ERROR_HEADERS[status]) } : {};
    out[status] = { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } }, ...headers };
  }
  return out;
}

/**
 * zod to JSON Schema as the type provider does it, but parameters that read text show their form
 * on the wire (see `onTheWire`). Like the type provider's own, members of a union zod cannot
 * represent are left out.
 */
function override(ctx: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  const { anyOf } = ctx.jsonSchema;
  if (Array.isArray(anyOf)) ctx.jsonSchema.anyOf = anyOf.filter((member: object) => Object.keys(member).length > 0);
  const wire = wireSchema(ctx.zodSchema);
  const { description } = ctx.jsonSchema;
  if (wire) {
    for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
    Object.assign(ctx.jsonSchema, wire, description !== undefined && { description });
  }
  // A route's description of a parameter comes first, then what the parameter's form says.
  const form = (wire ?? wireSchema(ctx.zodSchema instanceof z.ZodOptional ? ctx.zodSchema.unwrap() : undefined))?.description;
  if (typeof form === 'string' && typeof description === 'string' && !description.includes(form)) ctx.jsonSchema.description = `${description} ${form}`;
}

const zodToJson = { schemaRegistry: apiSchemas, zodToJsonConfig: { override: override as never } };
const routeToJson = createJsonSchemaTransform(zodToJson);
const componentsToJson = createJsonSchemaTransformObject(zodToJson);

type TransformInput = Parameters<typeof routeToJson>[0];

/** A route's operation: its schemas as JSON, with its scope, security and every error it may answer. */
function describeRoute(input: TransformInput): { schema: FastifySchema; url: string } {
  if (!input.schema) return routeToJson(input);
  const { errors: _errors, optionalBody, requestBody, replyHeaders, ...schema } = input.schema;
  const { schema: json, url } = routeToJson({ ...input, schema: { ...schema, ...(requestBody && { body: requestBody }) } });
  if (json.hide) return { schema: json, url };
  const { scope, queryToken } = input.route.config ?? {};
  const method = [input.route.method].flat()[0]!;
  const declared = (json.response ?? {}) as Responses;
  const described: Record<string, unknown> = {
    ...json,
    description: [SCOPE_TEXT[scope ?? 'public'], json.description].filter(Boolean).join('\n\n'),
    security: scope === undefined ? [] : [{ apiKey: [scope] }, ...(queryToken ? [{ feedToken: [scope] }] : [])],
    response: { ...successResponses(declared, replyHeaders), ...errorResponses(errorsOf(input.schema, method, scope), declared) },
    ...(optionalBody && { 'x-optional-body': true }),
  };
  return { schema: described as FastifySchema, url };
}

type Document = OpenAPIV3_1.Document;

/** Every `$ref` to a component inside `value`. */
function refsIn(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((item) => refsIn(item, found));
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === '$ref' && typeof item === 'string' && item.startsWith('#/components/schemas/')) found.add(item.slice('#/components/schemas/'.length));
      else refsIn(item, found);
    }
  }
  return found;
}

/** Only the components the operations use, directly or through each other. */
function usedComponents(document: Document): Record<string, unknown> {
  const all = (document.components?.schemas ?? {}) as Record<string, unknown>;
  const used = new Set<string>();
  const pending = [...refsIn(document.paths)];
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (used.has(name) || !(name in all)) continue;
    used.add(name);
    pending.push(...refsIn(all[name]));
  }
  return Object.fromEntries([...used].sort().map((name) => [name, all[name]]));
}

/**
 * The components the routes use, named without the type provider's `Input` suffix where no output
 * schema has the name; request bodies that may be left out marked as not required.
 */
function finishDocument(input: Parameters<typeof componentsToJson>[0]): Document {
  const document = componentsToJson(input) as Document;
  let text = JSON.stringify({ ...document, components: { ...document.components, schemas: usedComponents(document) } });
  const names = Object.keys(usedComponents(document));
  for (const name of names) {
    const plain = name.replace(/Input$/, '');
    if (plain !== name && !names.includes(plain)) text = text.replaceAll(`"#/components/schemas/${name}"`, `"#/components/schemas/${plain}"`).replaceAll(`"${name}":`, `"${plain}":`);
  }
  const finished = JSON.parse(text) as Document;
  for (const operations of Object.values(finished.paths ?? {})) {
    for (const operation of Object.values(operations ?? {}) as Array<OpenAPIV3_1.OperationObject & { 'x-optional-body'?: boolean }>) {
      if (typeof operation !== 'object' || !operation['x-optional-body']) continue;
      delete operation['x-optional-body'];
      if (operation.requestBody && 'required' in operation.requestBody) operation.requestBody.required = false;
    }
  }
  return finished;
}

/**
 * Route schemas are zod and only describe: query and path parameters are read by `readParameters`
 * (with its documented error answers), bodies by each handler from the raw text (JSON or YAML), and
 * answers are sent as JSON.stringify writes them. Fastify's own validation and serialisation would
 * answer differently, so they pass everything through unchanged.
 */
function schemasDescribeOnly(app: FastifyInstance): void {
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
}

/**
 * Collects every route registered after this for the document: call before any route. The hooks
 * the routes run with (authentication, security headers, parameter checks, error answers) are added
 * between this and `serveApiDocs`.
 */
export async function describeRoutes(app: FastifyInstance): Promise<void> {
  schemasDescribeOnly(app);
  await app.register(swagger, { openapi: OPENAPI, transform: describeRoute as never, transformObject: finishDocument as never, hideUntagged: true });
}

/**
 * The document at GET /openapi.json and Swagger UI at GET /docs, registered with the routes (after
 * the hooks, which routes only get when registered after them). Both are public (see
 * EXEMPT_ROUTES): they describe the API, they do not use it.
 */
export function serveApiDocs(app: FastifyInstance): void {
  app.get(OPENAPI_URL, { schema: { hide: true, querystring: NO_QUERY } }, async () => app.swagger());
  registerReference(app, OPENAPI_URL);
}
