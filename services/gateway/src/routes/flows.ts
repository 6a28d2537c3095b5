import { FlowSubmission, type FlowParseResult } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError, problemsError } from '../errors.js';
import type { Flows } from '../flows.js';
import { described } from '../openapi/registry.js';
import { Cancelling, FlowEvents, FlowViewSchema, StoredEventSchema, Submitted } from '../openapi/schemas.js';
import { FLOW_PARAMS, taskIdProblems, NO_QUERY, oneOf, parseBody, sequence } from './input.js';
import { traceFlow } from '../tracing.js';
import { requester } from '../auth.js';

type Parse = (text: string, format: 'json' | 'yaml' | 'auto') => FlowParseResult;

function links(flowId: string) {
  const self = `/api/v1/flows/${flowId}`;
  return { self, events: `${self}/events`, feed: `${self}/feed`, cancel: `${self}/cancel` };
}

/** Keys are stored in the flow's first event and in KV: printable ASCII, bounded. */
const IdempotencyKey = z.string().regex(/^[\x20-\x7e]{1,255}$/);

const MAX_REASON = 1000;
const CancelBody = z.strictObject(
  { reason: z.string({ error: 'must be a string' }).max(MAX_REASON, `must be at most ${MAX_REASON} characters`).optional() },
  { error: 'must be a JSON object such as {"reason": "not needed"}' },
);

const eventsQuery = z.object({
  after: described(sequence(0).optional(), 'Only events after this stream sequence (0, the default: from the start).'),
  format: described(oneOf(['json', 'ndjson'] as const).optional(), 'json (the default): one object; ndjson: one event a line.'),
});

const viewQuery = z.object({
  min_seq: described(
    sequence(0).optional(),
    "The flow's state as of this stream sequence at least, folded from the log when the view is behind it: a client that read `last_seq` N from one gateway sends N to never see the flow go back through another.",
  ),
});

const submit = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'submitFlow',
    summary: 'Submit a flow',
    description: 'The flow as JSON or YAML (`content-type: application/yaml`). Every problem is answered at once, each with its path. With an `Idempotency-Key`, a retry answers the same flow.',
    tags: ['flows'],
    querystring: NO_QUERY,
    headers: z.object({
      'idempotency-key': described(z.string().optional(), '1 to 255 printable ASCII characters: retries with the same key and flow answer the first submission (`replayed: true`).'),
    }),
    consumes: ['application/json', 'application/yaml'],
    requestBody: FlowSubmission,
    response: { 202: described(Submitted, 'Submitted.') },
    replyHeaders: { Location: 'the flow', 'Idempotent-Replayed': 'true when this Idempotency-Key was used before for this flow: nothing new was submitted' },
    errors: ['INVALID_FLOW', 'INVALID_BODY', 'FLOW_TOO_LARGE', 'IDEMPOTENCY_KEY_REUSED'],
  },
} as const;

const view = {
  config: { scope: 'read' },
  schema: {
    operationId: 'getFlow',
    summary: "A flow's view",
    tags: ['flows'],
    params: FLOW_PARAMS,
    querystring: viewQuery,
    response: { 200: FlowViewSchema },
    errors: ['FLOW_NOT_FOUND'],
  },
} as const;

const events = {
  config: { scope: 'read' },
  schema: {
    operationId: 'getFlowEvents',
    summary: "A flow's events",
    description: 'Every event of the flow from the log, in order, each with its stream sequence.',
    tags: ['flows'],
    params: FLOW_PARAMS,
    querystring: eventsQuery,
    response: { 200: { content: { 'application/json': { schema: FlowEvents }, 'application/x-ndjson': { schema: StoredEventSchema } } } },
    errors: ['FLOW_NOT_FOUND'],
  },
} as const;

const cancel = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'cancelFlow',
    summary: 'Cancel a flow',
    description: 'Asks the flow to stop: running tasks are cancelled, pending ones never run. The body may be left out.',
    tags: ['flows'],
    params: FLOW_PARAMS,
    querystring: NO_QUERY,
    requestBody: CancelBody,
    optionalBody: true,
    response: { 202: Cancelling },
    errors: ['FLOW_NOT_FOUND', 'FLOW_ALREADY_FINISHED', 'INVALID_BODY', 'INVALID_REQUEST'],
  },
} as const;

export function registerFlowRoutes(app: FastifyInstance, flows: Flows, parse: Parse): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post('/api/v1/flows', submit, async (request, reply) => {
    const key = request.headers['idempotency-key'];
    if (key !== undefined && key !== '' && !IdempotencyKey.safeParse(key).success) {
      throw apiError('INVALID_PARAMETER', 'Idempotency-Key', 'must be 1 to 255 printable ASCII characters, given once');
    }
    const body = typeof request.body === 'string' ? request.body : '';
    if (body.trim() === '') throw apiError('INVALID_BODY', 'it is empty; send a flow with a "tasks" list');
    const type = String(request.headers['content-type'] ?? '');
    const parsed = parse(body, type.includes('yaml') ? 'yaml' : type.includes('json') ? 'json' : 'auto');
    if (!parsed.ok) throw problemsError('INVALID_FLOW', parsed.problems);
    const problems = taskIdProblems(parsed.flow);
    if (problems.length > 0) throw problemsError('INVALID_FLOW', problems);
    const { flowId, replayed } = await flows.submit(parsed.flow, typeof key === 'string' && key !== '' ? key : undefined, requester(request));
    traceFlow(request, flowId);
    const location = links(flowId).self;
    return reply
      .status(202)
      .header('location', location)
      .header('idempotent-replayed', String(replayed))
      .send({
        flow_id: flowId,
        status: 'submitted',
        tasks: parsed.flow.tasks.length,
        replayed,
        ...(parsed.flow.warnings !== undefined && { warnings: parsed.flow.warnings }),
        links: links(flowId),
      });
  });

  api.get('/api/v1/flows/:id', view, async (request) => flows.view(request.params.id, request.query.min_seq));

  api.get('/api/v1/flows/:id/events', events, async (request, reply) => {
    const { after = 0, format = 'json' } = request.query;
    const events = (await flows.history(request.params.id, after)).map((e) => ({ seq: e.seq, stored_at: e.stored_at, event: e.event }));
    // The document gives the schema of one line; the body is their text.
    if (format === 'ndjson') return reply.type('application/x-ndjson').send((events.map((e) => JSON.stringify(e)).join('\n') + '\n') as never);
    return { flow_id: request.params.id, events };
  });

  api.post('/api/v1/flows/:id/cancel', cancel, async (request, reply) => {
    const { reason } = parseBody(request.body, CancelBody);
    traceFlow(request, request.params.id);
    await flows.cancel(request.params.id, reason, requester(request));
    return reply.status(202).send({ flow_id: request.params.id, status: 'cancelling', links: links(request.params.id) });
  });
}
