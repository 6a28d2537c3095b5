import { MAX_TEMPLATE_VERSIONS, TemplateName, TEMPLATE_NAME_RULE, TemplateBody, type StoredTemplate } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requester } from '../auth.js';
import { apiError } from '../errors.js';
import { described } from '../openapi/registry.js';
import type { Templates } from '../templates.js';
import { traceFlow } from '../tracing.js';
import { NO_QUERY, param, parseBody, quote, readJson, Refusal, wholeNumber } from './input.js';

/** Keys are stored in the flow's first event and in KV: printable ASCII, bounded. */
const IdempotencyKey = z.string().regex(/^[\x20-\x7e]{1,255}$/);

export const templateName = described(
  param((raw) => (TemplateName.safeParse(raw).success ? raw : new Refusal(`must be a template name (${TEMPLATE_NAME_RULE}), not ${quote(raw)}`)), undefined, {
    type: 'string',
    pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$',
  }),
  `A template name: ${TEMPLATE_NAME_RULE}.`,
);
const NAME_PARAMS = z.object({ name: templateName });
const VERSION_QUERY = z.object({ version: described(wholeNumber(1, Number.MAX_SAFE_INTEGER).optional(), 'A version number (default: the latest).') });

const time = z.string();
const TemplateInfo = z.object({ name: z.string(), version: z.number().int(), description: z.string().optional(), created_at: time, updated_at: time });
const TemplateSchema = z.object({ name: z.string(), version: z.number().int(), flow: z.record(z.string(), z.unknown()), params_schema: z.record(z.string(), z.unknown()), description: z.string().optional(), created_at: time });
const Stored = z.object({ name: z.string(), version: z.number().int(), created: described(z.boolean(), 'false when the body defines the same template as the latest version: no version was created'), created_at: time });
const VersionList = z.object({ name: z.string(), versions: z.array(z.object({ name: z.string(), version: z.number().int(), description: z.string().optional(), created_at: time })) });
const RunBody = z.strictObject(
  {
    params: z.record(z.string(), z.unknown(), { error: 'must be a JSON object of the params, e.g. {"env": "prod"}' }).default({}),
    version: z.number({ error: 'must be a version number' }).int('must be a whole number').min(1, 'must be 1 or more').optional(),
  },
  { error: 'must be a JSON object such as {"params": {"env": "prod"}, "version": 2}' },
);
const Run = z.object({
  flow_id: z.string(),
  status: z.literal('submitted'),
  tasks: z.number().int(),
  template: z.object({ name: z.string(), version: z.number().int() }),
  replayed: z.boolean(),
  links: z.object({ self: z.string(), events: z.string(), feed: z.string(), cancel: z.string() }),
});

const tags = ['templates'];
const list = { config: { scope: 'read' }, schema: { operationId: 'listTemplates', summary: 'Templates', description: 'Every template\'s latest version, by name, without its flow.', tags, querystring: NO_QUERY, response: { 200: z.object({ templates: z.array(TemplateInfo) }) } } } as const;
const put = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'putTemplate',
    summary: 'Create or change a template',
    description:
      'Body `{flow, params_schema, description?}` (JSON). Validated as fully as a submission, `${params.x}` references against the params the schema declares. A change creates the next version (201); a body equal to the latest version creates none (200, `created: false`).',
    tags,
    params: NAME_PARAMS,
    querystring: NO_QUERY,
    requestBody: TemplateBody,
    response: { 200: described(Stored, 'Unchanged: the latest version.'), 201: described(Stored, 'A new version.') },
    replyHeaders: { Location: 'the version' },
    errors: ['INVALID_BODY', 'INVALID_TEMPLATE', 'LIMIT_REACHED'],
  },
} as const;
const get = {
  config: { scope: 'read' },
  schema: { operationId: 'getTemplate', summary: 'A template', description: 'The latest version, or `?version=`.', tags, params: NAME_PARAMS, querystring: VERSION_QUERY, response: { 200: TemplateSchema }, errors: ['TEMPLATE_NOT_FOUND', 'TEMPLATE_VERSION_NOT_FOUND'] },
} as const;
const versions = {
  config: { scope: 'read' },
  schema: {
    operationId: 'listTemplateVersions',
    summary: "A template's versions",
    description: `Newest first, without their flows; the last ${MAX_TEMPLATE_VERSIONS} are kept.`,
    tags,
    params: NAME_PARAMS,
    querystring: NO_QUERY,
    response: { 200: VersionList },
    errors: ['TEMPLATE_NOT_FOUND'],
  },
} as const;
const remove = {
  config: { scope: 'submit' },
  schema: { operationId: 'deleteTemplate', summary: 'Delete a template', description: 'With every version. Flows already run keep their record of it.', tags, params: NAME_PARAMS, querystring: NO_QUERY, response: { 204: z.undefined() }, errors: ['TEMPLATE_NOT_FOUND'] },
} as const;
const run = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'runTemplate',
    summary: 'Run a template',
    description:
      "Body `{params, version?}`: the params are checked against the version's params_schema (every problem with its path), then its flow is submitted with them; the flow's history and view record the template's name and version (`origin.template`).",
    tags,
    params: NAME_PARAMS,
    querystring: NO_QUERY,
    headers: z.object({ 'idempotency-key': described(z.string().optional(), '1 to 255 printable ASCII characters: a retry with the same key and params answers the first run (`replayed: true`).') }),
    requestBody: RunBody,
    optionalBody: true,
    response: { 202: described(Run, 'Submitted.') },
    replyHeaders: { Location: 'the flow', 'Idempotent-Replayed': 'true when this Idempotency-Key was used before for this run: nothing new was submitted' },
    errors: ['INVALID_BODY', 'INVALID_REQUEST', 'INVALID_PARAMS', 'TEMPLATE_NOT_FOUND', 'TEMPLATE_VERSION_NOT_FOUND', 'FLOW_TOO_LARGE', 'IDEMPOTENCY_KEY_REUSED'],
  },
} as const;

const info = (t: StoredTemplate, created: boolean) => ({ name: t.name, version: t.version, created, created_at: t.created_at });

export function registerTemplateRoutes(app: FastifyInstance, templates: Templates): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/api/v1/templates', list, async () => ({ templates: await templates.store.list() }));

  api.put('/api/v1/templates/:name', put, async (request, reply) => {
    if (typeof request.body !== 'string' || request.body.trim() === '') throw apiError('INVALID_BODY', 'it is empty; send {"flow": {...}, "params_schema": {...}} as application/json');
    const { template, created } = await templates.put(request.params.name, readJson(request.body));
    return reply
      .status(created ? 201 : 200)
      .header('location', `/api/v1/templates/${template.name}?version=${template.version}`)
      .send(info(template, created));
  });

  api.get('/api/v1/templates/:name', get, async (request) => templates.resolve(request.params.name, request.query.version));

  api.get('/api/v1/templates/:name/versions', versions, async (request) => {
    const list = await templates.store.versions(request.params.name);
    if (list.length === 0) throw apiError('TEMPLATE_NOT_FOUND', request.params.name);
    return { name: request.params.name, versions: list };
  });

  api.delete('/api/v1/templates/:name', remove, async (request, reply) => {
    await templates.delete(request.params.name);
    return reply.status(204).send();
  });

  api.post('/api/v1/templates/:name/runs', run, async (request, reply) => {
    const key = request.headers['idempotency-key'];
    if (key !== undefined && key !== '' && !IdempotencyKey.safeParse(key).success) {
      throw apiError('INVALID_PARAMETER', 'Idempotency-Key', 'must be 1 to 255 printable ASCII characters, given once');
    }
    const body = parseBody(request.body, RunBody, 2);
    const result = await templates.run(request.params.name, body.params, body.version, typeof key === 'string' && key !== '' ? key : undefined, requester(request));
    traceFlow(request, result.flowId);
    const self = `/api/v1/flows/${result.flowId}`;
    return reply
      .status(202)
      .header('location', self)
      .header('idempotent-replayed', String(result.replayed))
      .send({
        flow_id: result.flowId,
        status: 'submitted',
        tasks: result.tasks,
        template: result.template,
        replayed: result.replayed,
        links: { self, events: `${self}/events`, feed: `${self}/feed`, cancel: `${self}/cancel` },
      });
  });
}
