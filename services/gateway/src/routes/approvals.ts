import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Approvals } from '../approvals.js';
import { requester } from '../auth.js';
import { problemsError } from '../errors.js';
import { described } from '../openapi/registry.js';
import { traceFlow } from '../tracing.js';
import { flowIdParam, NO_QUERY, param, parseBody } from './input.js';

/** An ack's `output` becomes the task's output in an event: bounded well under what one event carries. */
export const MAX_ACK_OUTPUT_BYTES = 256 * 1024;
const MAX_APPROVER = 200;
const MAX_ERROR = 4000;
const MAX_CODE = 256;

const text = (what: string, max: number) => z.string({ error: `must be ${what} (a string)` }).max(max, `must be at most ${max} characters`);

/** Tasked's AckRequest. `retryable` is accepted as Tasked sends it, but a rejection is always final. */
export const AckBody = z.strictObject(
  {
    status: z.enum(['success', 'failed'], { error: 'must be "success" (approve) or "failed" (reject)' }),
    code: text("the approval code from the task's output", MAX_CODE).optional(),
    approved_by: text('the name of who decided', MAX_APPROVER).optional(),
    output: z.unknown().optional(),
    error: text('why it was rejected', MAX_ERROR).optional(),
    retryable: z.literal(false, { error: 'must be false: a rejected approval has no attempt to retry; submit the flow again instead' }).optional(),
  },
  { error: 'must be a JSON object such as {"status": "success", "code": "…", "approved_by": "alice"}' },
);

const ACK_PARAMS = z.object({
  id: flowIdParam,
  task: described(
    // Any text: one the flow does not have is a TASK_NOT_FOUND, whatever it holds.
    param((raw) => raw),
    'The task id, percent-encoded (a "/" in an id as %2F).',
  ),
});

const ack = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'ackTask',
    summary: 'Approve or reject a waiting approval task',
    description:
      'Tasked\'s ack: `status` "success" approves (the task succeeds with `output`), "failed" rejects (the task fails with `error`, code REJECTED). `code` must be the one in the task\'s output. A task is acked once: a second ack, or one after its timeout, is a 409 that says how it ended.',
    tags: ['flows'],
    params: ACK_PARAMS,
    querystring: NO_QUERY,
    requestBody: AckBody,
    response: { 204: described(z.undefined(), 'Recorded: the task succeeded or failed.') },
    errors: ['FLOW_NOT_FOUND', 'TASK_NOT_FOUND', 'NOT_AN_APPROVAL', 'INVALID_APPROVAL_CODE', 'TASK_NOT_WAITING', 'INVALID_BODY', 'INVALID_REQUEST'],
  },
} as const;

export function registerApprovalRoutes(app: FastifyInstance, approvals: Approvals): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post('/api/v1/flows/:id/tasks/:task/ack', ack, async (request, reply) => {
    const body = parseBody(request.body, AckBody, 2);
    const bytes = body.output === undefined ? 0 : Buffer.byteLength(JSON.stringify(body.output));
    if (bytes > MAX_ACK_OUTPUT_BYTES) {
      throw problemsError('INVALID_REQUEST', [{ path: 'output', message: `is ${bytes} bytes as JSON, over the ${MAX_ACK_OUTPUT_BYTES}-byte limit of an ack's output; send a reference to large data instead` }]);
    }
    traceFlow(request, request.params.id);
    await approvals.ack(request.params.id, request.params.task, body, requester(request));
    return reply.status(204).send();
  });
}
