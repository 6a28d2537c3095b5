import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DeadLetterQueue } from '../dead-letters.js';
import { described } from '../openapi/registry.js';
import { DeadLetterSchema, LetterList, Republished } from '../openapi/schemas.js';
import { NO_QUERY, param, quote, Refusal, sequence, wholeNumber } from './input.js';

const listQuery = z.object({
  source: described(
    param((raw) => (/^[A-Za-z0-9_-]{1,64}$/.test(raw) ? raw : new Refusal(`must be a source name such as planner or executor-default, not ${quote(raw)}`)), undefined, {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]{1,64}$',
    }).optional(),
    'Only letters set aside by this consumer, such as planner or executor-default.',
  ),
  after: described(sequence(0).optional(), 'Only letters after this sequence (0, the default: from the first).'),
  limit: described(wholeNumber(1, 1000).optional(), 'At most this many letters (100 by default).'),
});
const LETTER_PARAMS = z.object({ seq: described(sequence(1, 'the sequence of a dead letter (see GET /api/v1/dlq)'), 'The sequence of a dead letter (`dlq_seq`).') });

const one = (operationId: string, summary: string) => ({ operationId, summary, tags: ['dead letters'], params: LETTER_PARAMS, querystring: NO_QUERY }) as const;
const admin = { scope: 'admin' } as const;

const list = { config: admin, schema: { operationId: 'listDeadLetters', summary: 'Dead letters', tags: ['dead letters'], querystring: listQuery, response: { 200: LetterList } } } as const;
const get = { config: admin, schema: { ...one('getDeadLetter', 'A dead letter'), response: { 200: DeadLetterSchema }, errors: ['DEAD_LETTER_NOT_FOUND'] } } as const;
const retry = {
  config: admin,
  schema: {
    ...one('retryDeadLetter', 'Republish a dead letter'),
    description: 'Republishes a work item to its original subject and removes the letter. A letter of the event log is never republished: the log already holds that event.',
    response: { 202: Republished },
    errors: ['DEAD_LETTER_NOT_FOUND', 'EVENT_LETTER_NOT_RETRYABLE', 'LETTER_WITHOUT_PAYLOAD'],
  },
} as const;
const discard = { config: admin, schema: { ...one('discardDeadLetter', 'Discard a dead letter'), response: { 204: z.undefined() }, errors: ['DEAD_LETTER_NOT_FOUND'] } } as const;

export function registerDeadLetterRoutes(app: FastifyInstance, dlq: DeadLetterQueue): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/api/v1/dlq', list, async (request) => {
    const { source, after = 0, limit = 100 } = request.query;
    return { letters: await dlq.list(source, after, limit) };
  });
  api.get('/api/v1/dlq/:seq', get, async (request) => dlq.get(request.params.seq));
  api.post('/api/v1/dlq/:seq/retry', retry, async (request, reply) => reply.status(202).send(await dlq.retry(request.params.seq)));
  api.delete('/api/v1/dlq/:seq', discard, async (request, reply) => {
    await dlq.discard(request.params.seq);
    return reply.status(204).send();
  });
}
