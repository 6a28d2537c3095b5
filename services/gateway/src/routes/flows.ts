import type { FlowParseResult } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiError, problemsError } from '../errors.js';
import type { Flows } from '../flows.js';
import { FLOW_PARAMS, taskIdProblems, NO_QUERY, oneOf, parseBody, querySpec, sequence } from './input.js';

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

const eventsQuery = querySpec({ after: sequence(0).optional(), format: oneOf(['json', 'ndjson'] as const).optional() });

export function registerFlowRoutes(app: FastifyInstance, flows: Flows, parse: Parse): void {
  app.post<{ Body: string | undefined }>('/api/v1/flows', { config: { scope: 'submit', query: NO_QUERY } }, async (request, reply) => {
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
    const { flowId, replayed } = await flows.submit(parsed.flow, typeof key === 'string' && key !== '' ? key : undefined);
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

  app.get<{ Params: z.output<typeof FLOW_PARAMS> }>('/api/v1/flows/:id', { config: { scope: 'read', params: FLOW_PARAMS, query: NO_QUERY } }, async (request) => flows.view(request.params.id));

  app.get<{ Params: z.output<typeof FLOW_PARAMS>; Querystring: z.output<typeof eventsQuery.schema> }>(
    '/api/v1/flows/:id/events',
    { config: { scope: 'read', params: FLOW_PARAMS, query: eventsQuery } },
    async (request, reply) => {
      const { after = 0, format = 'json' } = request.query;
      const events = (await flows.history(request.params.id, after)).map((e) => ({ seq: e.seq, stored_at: e.stored_at, event: e.event }));
      if (format === 'ndjson') return reply.type('application/x-ndjson').send(events.map((e) => JSON.stringify(e)).join('\n') + '\n');
      return { flow_id: request.params.id, events };
    },
  );

  app.post<{ Params: z.output<typeof FLOW_PARAMS>; Body: string | undefined }>('/api/v1/flows/:id/cancel', { config: { scope: 'submit', params: FLOW_PARAMS, query: NO_QUERY } }, async (request, reply) => {
    const { reason } = parseBody(request.body, CancelBody);
    await flows.cancel(request.params.id, reason);
    return reply.status(202).send({ flow_id: request.params.id, status: 'cancelling', links: links(request.params.id) });
  });
}
