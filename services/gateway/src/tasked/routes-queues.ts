import { QueueName } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Queues } from '../queues.js';
import { QUEUE_ID, QueueResponseSchema, taskedSchema } from './doc.js';
import { TaskedError } from './errors.js';
import type { TaskedServices } from './index.js';
import { policyFromTasked, queueResponse } from './shapes.js';
import { existingQueue, jsonBody, policyWrittenAt } from './support.js';

const CreateQueue = z.object({ id: z.string().describe('The queue id: letters, digits, "-" and "_", at most 64 characters.'), config: z.looseObject({}).optional().describe("Tasked's QueueConfig; fields left out take Tasked's defaults.") });

const create = {
  config: { scope: 'admin' },
  schema: taskedSchema({
    operationId: 'taskedCreateQueue',
    summary: "Create a queue (Tasked's route)",
    description:
      "Tasked's `{id, config?}`: stores the queue's policy, Tasked's defaults for what the config leaves out (concurrency 10, max_retries 3, timeout_secs 300, exponential backoff from 1 s). `retention_secs` is accepted and not used (history is kept by the events stream's max age); `max_pending_flows` is refused.",
    requestBody: CreateQueue,
    ok: { 201: QueueResponseSchema },
    errors: { 400: ['invalid_queue_config'], 409: ['queue_already_exists'], 422: ['invalid_request'] },
  }),
} as const;

const list = {
  config: { scope: 'read' },
  schema: taskedSchema({ operationId: 'taskedListQueues', summary: "Queues (Tasked's route)", description: 'Every queue with a policy, as a bare list.', ok: { 200: z.array(QueueResponseSchema) } }),
} as const;

const get = {
  config: { scope: 'read' },
  schema: taskedSchema({ operationId: 'taskedGetQueue', summary: "A queue (Tasked's route)", description: "The queue's policy as Tasked's QueueConfig.", params: QUEUE_ID, ok: { 200: QueueResponseSchema }, errors: { 404: ['queue_not_found'] } }),
} as const;

const remove = {
  config: { scope: 'admin' },
  schema: taskedSchema({
    operationId: 'taskedDeleteQueue',
    summary: "Delete a queue (Tasked's route)",
    description: "Deletes the queue's policy: flows already on it go on, without its limits.",
    params: QUEUE_ID,
    ok: { 204: z.undefined() },
    errors: { 404: ['queue_not_found'] },
  }),
} as const;

export function registerTaskedQueueRoutes(app: FastifyInstance, s: TaskedServices): void {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/api/v1/queues', create, async (request, reply) => {
    const body = jsonBody(request.body);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new TaskedError(422, 'invalid_request', 'the body must be a JSON object such as {"id": "emails", "config": {"concurrency": 5}}');
    const { id, config } = body as { id?: unknown; config?: unknown };
    if (typeof id !== 'string') throw new TaskedError(422, 'invalid_request', 'missing field `id`: the queue id, a string');
    if (!QueueName.safeParse(id).success) throw new TaskedError(400, 'invalid_queue_config', `queue id ${JSON.stringify(id.slice(0, 70))} is not allowed: a queue id is letters, digits, "-" and "_", at most 64 characters`);
    const exists = await s.queues.get(id).then(() => true, () => false);
    if (exists) throw new TaskedError(409, 'queue_already_exists', `Queue '${id}' already exists`);
    const mapped = policyFromTasked(config);
    if ('problems' in mapped) throw new TaskedError(400, 'invalid_queue_config', `${mapped.problems[0]!.path} ${mapped.problems[0]!.message}`, { problems: mapped.problems });
    const view = await s.queues.put(id, Queues.parsePolicy(mapped.policy));
    return reply.status(201).header('location', `/tasked/api/v1/queues/${id}`).send(queueResponse(id, view.policy, await policyWrittenAt(s.ctx, id)));
  });

  api.get('/api/v1/queues', list, async () => {
    const views = await s.queues.list();
    return Promise.all(views.map(async (v) => queueResponse(v.name, v.policy, await policyWrittenAt(s.ctx, v.name))));
  });

  api.get('/api/v1/queues/:qid', get, async (request) => {
    const { qid } = request.params;
    const policy = await existingQueue(s.queues, qid);
    return queueResponse(qid, policy, await policyWrittenAt(s.ctx, qid));
  });

  api.delete('/api/v1/queues/:qid', remove, async (request, reply) => {
    const { qid } = request.params;
    await existingQueue(s.queues, qid);
    await s.queues.delete(qid);
    return reply.status(204).send();
  });
}
