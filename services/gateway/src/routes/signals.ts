import { SIGNAL_NAME } from '@taskstream/domain';
import { MAX_SIGNAL_PAYLOAD_BYTES, SignalLog } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requester } from '../auth.js';
import { apiError, problemsError } from '../errors.js';
import { described } from '../openapi/registry.js';
import { NO_QUERY, param, quote, readJson, Refusal, shapeProblems } from './input.js';

const SIGNAL_PARAMS = z.object({
  name: described(
    param((raw) => (SIGNAL_NAME.test(raw) ? raw : new Refusal(`${quote(raw)} is not a signal name: 1 to 128 letters, digits, "_" or "-"`))),
    'The signal name, as wait tasks name it in `signal`.',
  ),
});

const SignalAnswer = z.object({
  signal_id: described(z.string(), 'the signal\'s id (a ULID), recorded in the task.succeeded of each task it completes'),
  name: z.string(),
  seq: described(z.number().int(), 'its sequence in the signals stream'),
  replayed: described(z.boolean(), 'true when this Idempotency-Key was used for this signal name before: nothing new was stored'),
});

const send = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'sendSignal',
    summary: 'Send a signal to the tasks waiting for it',
    description:
      'Records the JSON body as the payload of a signal named `name`. Every wait task waiting for that name whose `match` accepts the payload succeeds with the payload as its output; a wait that begins up to its `lookback_secs` (300 by default) after the signal was sent finds it too. Signals are kept one day. With an `Idempotency-Key`, a retry within the de-duplication window stores nothing new.',
    tags: ['signals'],
    params: SIGNAL_PARAMS,
    querystring: NO_QUERY,
    headers: z.object({
      'idempotency-key': described(z.string().optional(), '1 to 255 printable ASCII characters: a retry with the same key stores the signal once.'),
    }),
    requestBody: described(z.unknown(), `any JSON value, at most ${MAX_SIGNAL_PAYLOAD_BYTES / 1024} KiB`),
    response: { 202: described(SignalAnswer, 'Stored; matching waits complete shortly.') },
    errors: ['INVALID_PARAMETER', 'INVALID_BODY', 'INVALID_REQUEST', 'SIGNAL_TOO_LARGE'],
  },
} as const;

export function registerSignalRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  let signals: SignalLog | undefined;
  api.post('/api/v1/signals/:name', send, async (request, reply) => {
    const key = request.headers['idempotency-key'];
    if (key !== undefined && (typeof key !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(key))) throw apiError('INVALID_PARAMETER', 'Idempotency-Key', 'must be 1 to 255 printable ASCII characters, given once');
    const raw = typeof request.body === 'string' ? request.body : '';
    const bytes = Buffer.byteLength(raw);
    if (bytes > MAX_SIGNAL_PAYLOAD_BYTES) throw apiError('SIGNAL_TOO_LARGE', bytes, MAX_SIGNAL_PAYLOAD_BYTES);
    const payload = raw.trim() === '' ? null : readJson(raw);
    const shape = shapeProblems(payload, 1);
    if (shape.length > 0) throw problemsError('INVALID_REQUEST', shape);
    signals ??= new SignalLog(ctx.js, ctx.topo);
    const sent = await signals.send(request.params.name, payload, requester(request), key);
    return reply.status(202).send({ signal_id: sent.signal.id, name: sent.signal.name, seq: sent.seq, replayed: sent.duplicate });
  });
}
