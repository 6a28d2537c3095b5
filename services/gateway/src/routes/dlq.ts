import type { FastifyInstance } from 'fastify';
import { apiError } from '../errors.js';
import type { DeadLetterQueue } from '../dead-letters.js';
import { sequenceParam } from './params.js';

export function registerDeadLetterRoutes(app: FastifyInstance, dlq: DeadLetterQueue): void {
  app.get<{ Querystring: { source?: string; after?: string; limit?: string } }>('/api/v1/dlq', async (request) => {
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw apiError('INVALID_PARAMETER', 'limit', 'must be a whole number from 1 to 1000');
    const source = request.query.source;
    if (source !== undefined && !/^[A-Za-z0-9_-]+$/.test(source)) throw apiError('INVALID_PARAMETER', 'source', 'must be a source name such as planner or executor-default');
    return { letters: await dlq.list(source, sequenceParam('after', request.query.after), limit) };
  });
  const seqOf = (raw: string) => {
    const seq = sequenceParam('seq', raw);
    if (seq === 0) throw apiError('INVALID_PARAMETER', 'seq', 'must be a dead letter sequence (1 or more)');
    return seq;
  };
  app.get<{ Params: { seq: string } }>('/api/v1/dlq/:seq', async (request) => dlq.get(seqOf(request.params.seq)));
  app.post<{ Params: { seq: string } }>('/api/v1/dlq/:seq/retry', async (request, reply) => reply.status(202).send(await dlq.retry(seqOf(request.params.seq))));
  app.delete<{ Params: { seq: string } }>('/api/v1/dlq/:seq', async (request, reply) => {
    await dlq.discard(seqOf(request.params.seq));
    return reply.status(204).send();
  });
}
