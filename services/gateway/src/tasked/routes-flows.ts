import { FlowSubmission, MAX_TASKS_PER_FLOW, validateFlow, type FlowDefinition } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requester } from '../auth.js';
import { ApiError } from '../errors.js';
import { taskIdProblems } from '../routes/input.js';
import { traceFlow } from '../tracing.js';
import { FLOW_ID, FlowDetailSchema, FlowResponseSchema, QUEUE_ID, taskedSchema } from './doc.js';
import { flowProblems, TaskedError } from './errors.js';
import type { TaskedServices } from './index.js';
import { flowDetail, flowResponse, fromTaskedFlow, type FlowResponse } from './shapes.js';
import { viewEnded } from './sse.js';
import { definitionOf, existingQueue, jsonBody, mapLimited, policyLookup, tasked } from './support.js';

/** Flows a queue's list answers: the newest this many (Tasked answers all; every answer here is bounded). */
export const MAX_LISTED_FLOWS = 1000;
/** How long a cancel waits for the flow to end before answering, as Tasked's cancel ends it before answering. */
export const CANCEL_WAIT_MS = 5_000;

const submit = {
  config: { scope: 'submit' },
  schema: taskedSchema({
    operationId: 'taskedSubmitFlow',
    summary: "Submit a flow to a queue (Tasked's route)",
    description:
      "Tasked's FlowDef, its queue from the URL (the queue must exist). Validated as every submission is, every problem listed in `problems`; Tasked's code is the first problem's: `no_executor`, `invalid_graph`, `task_limit_exceeded`, else `invalid_flow` (422).",
    params: QUEUE_ID,
    requestBody: FlowSubmission,
    ok: { 201: FlowResponseSchema },
    errors: { 400: ['no_executor', 'invalid_graph', 'task_limit_exceeded'], 404: ['queue_not_found'], 413: ['flow_too_large'], 422: ['invalid_flow'] },
  }),
} as const;

const listFlows = {
  config: { scope: 'read' },
  schema: taskedSchema({
    operationId: 'taskedListFlows',
    summary: "A queue's flows (Tasked's route)",
    description: `Every state, newest first, at most ${MAX_LISTED_FLOWS} (GET /api/v1/flows?queue= pages through all).`,
    params: QUEUE_ID,
    ok: { 200: z.array(FlowResponseSchema) },
    errors: { 404: ['queue_not_found'] },
  }),
} as const;

const getFlow = {
  config: { scope: 'read' },
  schema: taskedSchema({
    operationId: 'taskedGetFlow',
    summary: "A flow with its tasks (Tasked's route)",
    description: "Tasked's states and counts (docs/api.md maps Taskstream's statuses onto them). Outputs over 4 KiB are summarised, as in the flow's view; the export has them whole.",
    params: FLOW_ID,
    ok: { 200: FlowDetailSchema },
    errors: { 404: ['flow_not_found'] },
  }),
} as const;

const cancel = {
  config: { scope: 'submit' },
  schema: taskedSchema({
    operationId: 'taskedCancelFlow',
    summary: "Cancel a flow (Tasked's route)",
    description: `Cancels the flow and waits (up to ${CANCEL_WAIT_MS / 1000} s) for it to end, as Tasked's cancel does before answering. A flow that already ended is left as it is: still 204.`,
    params: FLOW_ID,
    ok: { 204: z.undefined() },
    errors: { 404: ['flow_not_found'] },
  }),
} as const;

/** The flow's Tasked form from its view and definition. */
async function flowOf(s: TaskedServices, flowId: string): Promise<FlowResponse> {
  const [view, definition] = await Promise.all([tasked(() => s.flows.view(flowId), { flow: flowId }), definitionOf(s.ctx, flowId)]);
  return flowResponse(view, definition?.fail_fast ?? false);
}

/** Submits a Tasked flow to `qid` (which must exist), answering Tasked's FlowResponse. */
async function submitToQueue(s: TaskedServices, qid: string, raw: unknown, idempotencyKey: unknown, by: string | undefined): Promise<FlowResponse & { warnings?: string[] }> {
  await existingQueue(s.queues, qid);
  const body = fromTaskedFlow(jsonBody(raw), qid) as { tasks?: unknown };
  if (Array.isArray(body.tasks) && body.tasks.length > MAX_TASKS_PER_FLOW) throw new TaskedError(400, 'task_limit_exceeded', `Flow task limit (${MAX_TASKS_PER_FLOW}) exceeded`);
  const checked = validateFlow(body);
  if (!checked.ok) throw flowProblems(checked.problems);
  const idProblems = taskIdProblems(checked.flow);
  if (idProblems.length > 0) throw flowProblems(idProblems);
  const flow: FlowDefinition = checked.flow;
  if (idempotencyKey !== undefined && idempotencyKey !== '' && (typeof idempotencyKey !== 'string' || !/^[\x20-\x7e]{1,255}$/.test(idempotencyKey))) {
    throw new TaskedError(400, 'invalid_parameter', 'parameter "Idempotency-Key" must be 1 to 255 printable ASCII characters, given once');
  }
  const key = typeof idempotencyKey === 'string' && idempotencyKey !== '' ? idempotencyKey : undefined;
  const { flowId } = await s.flows.submit(flow, key, by);
  const now = new Date().toISOString();
  return {
    id: flowId,
    queue_id: qid,
    state: 'running',
    task_count: flow.tasks.length,
    tasks_succeeded: 0,
    tasks_failed: 0,
    fail_fast: flow.fail_fast ?? false,
    created_at: now,
    updated_at: now,
    ...(flow.warnings !== undefined && { warnings: flow.warnings }),
  };
}

export function registerTaskedFlowRoutes(app: FastifyInstance, s: TaskedServices): void {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/api/v1/queues/:qid/flows', submit, async (request, reply) => {
    const answer = await submitToQueue(s, request.params.qid, request.body, request.headers['idempotency-key'], requester(request));
    traceFlow(request, answer.id);
    return reply.status(201).header('location', `/tasked/api/v1/flows/${answer.id}`).send(answer);
  });

  api.get('/api/v1/queues/:qid/flows', listFlows, async (request) => {
    const { qid } = request.params;
    await existingQueue(s.queues, qid);
    const { flows } = s.index.query({ queue: qid, limit: MAX_LISTED_FLOWS });
    const listed = await mapLimited(flows, 16, (summary) => flowOf(s, summary.flow_id).catch((error: unknown) => (error instanceof TaskedError ? undefined : Promise.reject(error))));
    return listed.filter((f) => f !== undefined);
  });

  api.get('/api/v1/flows/:id', getFlow, async (request) => {
    const { id } = request.params;
    traceFlow(request, id);
    const view = await tasked(() => s.flows.view(id), { flow: id });
    const [definition, policies] = [await definitionOf(s.ctx, id), policyLookup(s.queues)];
    await policies.load(view.tasks.map((t) => t.queue));
    return flowDetail(view, definition, policies.get);
  });

  api.delete('/api/v1/flows/:id', cancel, async (request, reply) => {
    const { id } = request.params;
    traceFlow(request, id);
    try {
      await tasked(() => s.flows.cancel(id, 'cancelled through the Tasked-compatible API', requester(request)), { flow: id });
      await viewEnded(s, id, CANCEL_WAIT_MS);
    } catch (error) {
      // Cancelling a flow that already ended leaves it as it is, as Tasked does.
      if (!(error instanceof ApiError && error.code === 'FLOW_ALREADY_FINISHED')) throw error;
    }
    return reply.status(204).send();
  });
}
