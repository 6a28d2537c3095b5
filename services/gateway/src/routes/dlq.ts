import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { DeadLetterQueue } from '../dead-letters.js';
import { NO_QUERY, param, querySpec, quote, Refusal, sequence, wholeNumber } from './input.js';

const listQuery = querySpec({
  source: param((raw) => (/^[A-Za-z0-9_-]{1,64}$/.test(raw) ? raw : new Refusal(`must be a source name such as planner or executor-default, not ${quote(raw)}`))).optional(),
  after: sequence(0).optional(),
  limit: wholeNumber(1, 1000).optional(),
});
const LETTER_PARAMS = z.object({ seq: sequence(1, 'the sequence of a dead letter (see GET /api/v1/dlq)') });

export function registerDeadLetterRoutes(app: FastifyInstance, dlq: DeadLetterQueue): void {
  app.get<{ Querystring: z.output<typeof listQuery.schema> }>('/api/v1/dlq', { config: { scope: 'admin', query: listQuery } }, async (request) => {
    const { source, after = 0, limit = 100 } = request.query;
    return { letters: await dlq.list(source, after, limit) };
  });
  const one = { config: { scope: 'admin', params: LETTER_PARAMS, query: NO_QUERY } } as const;
  type One = { Params: z.output<typeof LETTER_PARAMS> };
  app.get<One>('/api/v1/dlq/:seq', one, async (request) => dlq.get(request.params.seq));
  app.post<One>('/api/v1/dlq/:seq/retry', one, async (request, reply) => reply.status(202).send(await dlq.retry(request.params.seq)));
  app.delete<One>('/api/v1/dlq/:seq', one, async (request, reply) => {
    await dlq.discard(request.params.seq);
    return reply.status(204).send();
  });
}
