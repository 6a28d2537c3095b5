import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { problemsError } from '../errors.js';
import { Queues } from '../queues.js';
import { NO_QUERY, queueName, readJson, shapeProblems } from './input.js';

const QUEUE_PARAMS = z.object({ name: queueName });
type QueueParams = { Params: z.output<typeof QUEUE_PARAMS> };
/** Anyone who may read flows may read queues and their statistics (dashboards); changing a policy is an administrator's. */
const read = { scope: 'read', params: QUEUE_PARAMS, query: NO_QUERY } as const;
const admin = { scope: 'admin', params: QUEUE_PARAMS, query: NO_QUERY } as const;

export function registerQueueRoutes(app: FastifyInstance, queues: Queues): void {
  app.get('/api/v1/queues', { config: { scope: 'read', query: NO_QUERY } }, async () => ({ queues: await queues.list() }));

  app.get<QueueParams>('/api/v1/queues/:name', { config: read }, async (request) => queues.get(request.params.name));

  app.get<QueueParams>('/api/v1/queues/:name/stats', { config: read }, async (request) => queues.stats(request.params.name));

  app.put<QueueParams & { Body: string | undefined }>('/api/v1/queues/:name', { config: admin }, async (request) => {
    const body = readJson(request.body);
    const problems = shapeProblems(body, 2);
    if (problems.length > 0) throw problemsError('INVALID_QUEUE_POLICY', problems);
    return queues.put(request.params.name, Queues.parsePolicy(body));
  });

  app.delete<QueueParams>('/api/v1/queues/:name', { config: admin }, async (request, reply) => {
    await queues.delete(request.params.name);
    return reply.status(204).send();
  });
}
