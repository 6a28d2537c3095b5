import type { FlowParseResult } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import { ApiError, apiError, ERRORS } from '../errors.js';
import type { Flows } from '../flows.js';
import { sequenceParam } from './params.js';

type Parse = (text: string, format: 'json' | 'yaml' | 'auto') => FlowParseResult;

function links(flowId: string) {
  const self = `/api/v1/flows/${flowId}`;
  return { self, events: `${self}/events`, feed: `${self}/feed`, cancel: `${self}/cancel` };
}

export function registerFlowRoutes(app: FastifyInstance, flows: Flows, parse: Parse): void {
  app.post<{ Body: string | undefined }>('/api/v1/flows', async (request, reply) => {
    const body = typeof request.body === 'string' ? request.body : '';
    if (body.trim() === '') throw apiError('INVALID_BODY', 'it is empty; send a flow with a "tasks" list');
    const type = String(request.headers['content-type'] ?? '');
    const parsed = parse(body, type.includes('yaml') ? 'yaml' : type.includes('json') ? 'json' : 'auto');
    if (!parsed.ok) {
      throw new ApiError('INVALID_FLOW', ERRORS.INVALID_FLOW.status, ERRORS.INVALID_FLOW.message(parsed.problems.length), { problems: parsed.problems });
    }
    const key = request.headers['idempotency-key'];
    const idempotencyKey = typeof key === 'string' && key !== '' ? key : undefined;
    const { flowId, replayed } = await flows.submit(parsed.flow, idempotencyKey);
    const location = links(flowId).self;
    return reply
      .status(202)
      .header('location', location)
      .header('idempotent-replayed', String(replayed))
      .send({ flow_id: flowId, status: 'submitted', tasks: parsed.flow.tasks.length, replayed, links: links(flowId) });
  });

  app.get<{ Params: { id: string } }>('/api/v1/flows/:id', async (request) => flows.view(request.params.id));

  app.get<{ Params: { id: string }; Querystring: { after?: string; format?: string } }>('/api/v1/flows/:id/events', async (request, reply) => {
    const after = sequenceParam('after', request.query.after);
    const format = request.query.format ?? 'json';
    if (format !== 'json' && format !== 'ndjson') throw apiError('INVALID_PARAMETER', 'format', 'must be json or ndjson');
    const events = (await flows.history(request.params.id, after)).map((e) => ({ seq: e.seq, stored_at: e.stored_at, event: e.event }));
    if (format === 'ndjson') return reply.type('application/x-ndjson').send(events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    return { flow_id: request.params.id, events };
  });

  app.post<{ Params: { id: string }; Body: string | undefined }>('/api/v1/flows/:id/cancel', async (request, reply) => {
    let reason: string | undefined;
    if (typeof request.body === 'string' && request.body.trim() !== '') {
      try {
        const parsed = JSON.parse(request.body) as { reason?: unknown };
        if (typeof parsed.reason === 'string') reason = parsed.reason;
      } catch (error) {
        throw apiError('INVALID_BODY', `not valid JSON: ${(error as Error).message}`);
      }
    }
    await flows.cancel(request.params.id, reason);
    return reply.status(202).send({ flow_id: request.params.id, status: 'cancelling', links: links(request.params.id) });
  });
}
