import { QueuePolicyInput } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { problemsError } from '../errors.js';
import { described } from '../openapi/registry.js';
import { QueueList, QueueStats, QueueViewSchema } from '../openapi/schemas.js';
import { Queues } from '../queues.js';
import { NO_QUERY, queueName, readJson, shapeProblems } from './input.js';

const QUEUE_PARAMS = z.object({ name: described(queueName, 'A queue name: letters, digits, "-" and "_", at most 64 characters.') });
const one = { tags: ['queues'], params: QUEUE_PARAMS, querystring: NO_QUERY } as const;
/** Anyone who may read flows may read queues and their statistics (dashboards); changing a policy is an administrator's. */
const read = { scope: 'read' } as const;
const admin = { scope: 'admin' } as const;

const list = { config: read, schema: { operationId: 'listQueues', summary: 'Queues with a policy', tags: ['queues'], querystring: NO_QUERY, response: { 200: QueueList } } } as const;
const get = { config: read, schema: { ...one, operationId: 'getQueue', summary: "A queue's policy and limits now", response: { 200: QueueViewSchema }, errors: ['QUEUE_NOT_FOUND'] } } as const;
const stats = {
  config: read,
  schema: { ...one, operationId: 'getQueueStats', summary: "A queue's statistics", description: 'Tasks waiting, running and throttled now, and finished per minute over the last hour.', response: { 200: QueueStats } },
} as const;
const put = {
  config: admin,
  schema: {
    ...one,
    operationId: 'putQueuePolicy',
    summary: "Set a queue's policy",
    description: 'Creates or replaces the policy; every problem is answered at once.',
    requestBody: QueuePolicyInput,
    response: { 200: QueueViewSchema },
    errors: ['INVALID_BODY', 'INVALID_QUEUE_POLICY'],
  },
} as const;
const remove = {
  config: admin,
  schema: { ...one, operationId: 'deleteQueuePolicy', summary: "Delete a queue's policy", description: 'The queue runs without limits from then on.', response: { 204: z.undefined() }, errors: ['QUEUE_NOT_FOUND'] },
} as const;

export function registerQueueRoutes(app: FastifyInstance, queues: Queues): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/api/v1/queues', list, async () => ({ queues: await queues.list() }));

  api.get('/api/v1/queues/:name', get, async (request) => queues.get(request.params.name));

  api.get('/api/v1/queues/:name/stats', stats, async (request) => queues.stats(request.params.name));

  api.put('/api/v1/queues/:name', put, async (request) => {
    const body = readJson(request.body);
    const problems = shapeProblems(body, 2);
    if (problems.length > 0) throw problemsError('INVALID_QUEUE_POLICY', problems);
    return queues.put(request.params.name, Queues.parsePolicy(body));
  });

  api.delete('/api/v1/queues/:name', remove, async (request, reply) => {
    await queues.delete(request.params.name);
    return reply.status(204).send();
  });
}
