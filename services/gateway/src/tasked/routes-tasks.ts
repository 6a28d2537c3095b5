import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requester } from '../auth.js';
import { problemsError } from '../errors.js';
import { AckBody, MAX_ACK_OUTPUT_BYTES } from '../routes/approvals.js';
import { parseBody } from '../routes/input.js';
import { traceFlow } from '../tracing.js';
import { anyId, taskedSchema } from './doc.js';
import { TaskedError } from './errors.js';
import type { TaskedServices } from './index.js';
import { jsonBody, tasked } from './support.js';

/** Fields of Tasked's AckRequest; anything else is ignored, as Tasked's serde does. */
const ACK_FIELDS = ['status', 'output', 'error', 'retryable', 'approved_by', 'code'] as const;

const ack = {
  config: { scope: 'submit' },
  schema: taskedSchema({
    operationId: 'taskedAckTask',
    summary: "Approve or reject a waiting approval task (Tasked's route)",
    description:
      "Tasked's AckRequest `{status, output?, error?, retryable?, approved_by?, code?}`. Only approval tasks are acked (Taskstream's other executors report their own outcome); `code` must be the task's. `retryable: true` is refused: a rejected approval has no attempt to retry.",
    params: z.object({ id: anyId('A flow id.'), tid: anyId('The task id, percent-encoded (a "/" as %2F).') }),
    requestBody: AckBody,
    ok: { 204: z.undefined() },
    errors: { 400: ['invalid_status'], 403: ['invalid_approval_code'], 404: ['flow_not_found', 'task_not_found'], 409: ['invalid_state_transition'], 422: ['invalid_request'] },
  }),
} as const;

export function registerTaskedTaskRoutes(app: FastifyInstance, s: TaskedServices): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post('/api/v1/flows/:id/tasks/:tid/ack', ack, async (request, reply) => {
    const { id, tid } = request.params;
    const raw = jsonBody(request.body);
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new TaskedError(422, 'invalid_request', 'the body must be a JSON object such as {"status": "success", "code": "…"}');
    const fields = raw as Record<string, unknown>;
    if (typeof fields.status === 'string' && fields.status !== 'success' && fields.status !== 'failed') {
      throw new TaskedError(400, 'invalid_status', `Invalid ack status: '${fields.status.slice(0, 64)}'. Must be 'success' or 'failed'`);
    }
    // Tasked's client writes absent fields as null, and always sends `retryable` with a rejection.
    const known = Object.fromEntries(ACK_FIELDS.filter((k) => fields[k] !== undefined && fields[k] !== null).map((k) => [k, fields[k]]));
    if (known.retryable === false) delete known.retryable;
    const body = parseBody(JSON.stringify(known), AckBody, 2);
    const bytes = body.output === undefined ? 0 : Buffer.byteLength(JSON.stringify(body.output));
    if (bytes > MAX_ACK_OUTPUT_BYTES) throw problemsError('INVALID_REQUEST', [{ path: 'output', message: `is ${bytes} bytes as JSON, over the ${MAX_ACK_OUTPUT_BYTES}-byte limit of an ack's output` }]);
    traceFlow(request, id);
    await tasked(() => s.approvals.ack(id, tid, { ...body, ...(body.status === 'failed' && body.error === undefined && { error: 'unknown error' }) }, requester(request)), { flow: id, task: tid });
    return reply.status(204).send();
  });
}
