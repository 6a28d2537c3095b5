import type { FastifyInstance } from 'fastify';
import { apiError } from '../errors.js';
import { Queues } from '../queues.js';

export function registerQueueRoutes(app: FastifyInstance, queues: Queues): void {
  app.get('/api/v1/queues', async () => ({ queues: await queues.list() }));

  app.get<{ Params: { name: string } }>('/api/v1/queues/:name', async (request) => queues.get(request.params.name));

  app.get<{ Params: { name: string } }>('/api/v1/queues/:name/stats', async (request) => queues.stats(request.params.name));

  app.put<{ Params: { name: string }; Body: string | undefined }>('/api/v1/queues/:name', async (request) => {
    let body: unknown;
    try {
      body = JSON.parse(typeof request.body === 'string' && request.body.trim() !== '' ? request.body : '{}');
    } catch (error) {
      throw apiError('INVALID_BODY', `not valid JSON: ${(error as Error).message}`);
    }
    return queues.put(request.params.name, Queues.parsePolicy(body));
  });

  app.delete<{ Params: { name: string } }>('/api/v1/queues/:name', async (request, reply) => {
    await queues.delete(request.params.name);
    return reply.status(204).send();
  });
}
