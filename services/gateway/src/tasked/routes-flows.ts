import { Readable } from 'node:stream';
import { FlowSubmission, MAX_TASKS_PER_FLOW, validateFlow, type FlowDefinition } from '@taskstream/domain';
import { foldFlowHistory } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { FlowArtifacts } from '../artifacts.js';
import { requester } from '../auth.js';
import { ApiError } from '../errors.js';
import { described } from '../openapi/registry.js';
import { param, Refusal, quote, taskIdProblems } from '../routes/input.js';
import { traceFlow } from '../tracing.js';
import { anyId, ExportSchema, FLOW_ID, FlowDetailSchema, FlowResponseSchema, QUEUE_ID, taskedSchema } from './doc.js';
import { flowProblems, notFound, TaskedError } from './errors.js';
import type { TaskedServices } from './index.js';
import { exportDocument, flowDetail, flowResponse, fromTaskedFlow, type ArtifactExport, type FlowResponse } from './shapes.js';
import { viewEnded } from './sse.js';
import { definitionOf, existingQueue, jsonBody, mapLimited, policyLookup, tasked } from './support.js';

/** Flows a queue's list answers: the newest this many (Tasked answers all; every answer here is bounded). */
export const MAX_LISTED_FLOWS = 1000;
/** How long a cancel waits for the flow to end before answering, as Tasked's cancel ends it before answering. */
export const CANCEL_WAIT_MS = 5_000;
/** An artifact is inlined in an export up to this size, as Tasked does; larger ones are listed without data. */
export const INLINE_ARTIFACT_BYTES = 1024 * 1024;
/** At most this much artifact data is inlined in one export; artifacts beyond are listed without data. */
export const MAX_INLINED_BYTES = 16 * 1024 * 1024;

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

const bool = param((raw) => (raw === 'true' ? true : raw === 'false' ? false : new Refusal(`must be true or false, not ${quote(raw)}`)), undefined, { type: 'boolean' });

const exportFlow = {
  config: { scope: 'read' },
  schema: taskedSchema({
    operationId: 'taskedExportFlow',
    summary: "Export a flow (Tasked's route)",
    description: `Tasked's export document (version 1), folded from the flow's log: whole outputs. With \`with_artifacts=true\`, each artifact of ${INLINE_ARTIFACT_BYTES / 1024 / 1024} MiB or less is inlined as base64 (at most ${MAX_INLINED_BYTES / 1024 / 1024} MiB in all). Only \`format=json\`: Tasked's tar form is not offered.`,
    params: FLOW_ID,
    querystring: z.object({
      with_artifacts: described(bool.optional(), 'Inline the artifacts (default false).'),
      format: described(param((raw) => raw).optional(), 'json, the only format offered.'),
    }),
    ok: { 200: ExportSchema },
    errors: { 400: ['invalid_format'], 404: ['flow_not_found'] },
  }),
} as const;

const listArtifacts = {
  config: { scope: 'read' },
  schema: taskedSchema({ operationId: 'taskedListArtifacts', summary: "A flow's artifact names (Tasked's route)", description: 'The names of the files its steps stored, as a bare list.', params: FLOW_ID, ok: { 200: z.array(z.string()) }, errors: { 404: ['flow_not_found'] } }),
} as const;

const getArtifact = {
  config: { scope: 'read' },
  schema: taskedSchema({
    operationId: 'taskedGetArtifact',
    summary: "Download an artifact (Tasked's route)",
    description: 'The file as application/octet-stream. A name several tasks stored is refused (409 `artifact_ambiguous`): GET /api/v1/flows/{id}/artifacts/{name}?task= picks one.',
    params: z.object({ id: anyId('A flow id.'), '*': anyId('The artifact name.') }),
    ok: { 200: { content: { 'application/octet-stream': { schema: z.string() } } } },
    errors: { 404: ['flow_not_found', 'artifact_not_found'], 409: ['artifact_ambiguous'] },
  }),
} as const;

/** The flow's Tasked form from its view and definition. */
async function flowOf(s: TaskedServices, flowId: string): Promise<FlowResponse> {
  const [view, definition] = await Promise.all([tasked(() => s.flows.view(flowId), { flow: flowId }), definitionOf(s.ctx, flowId)]);
  return flowResponse(view, definition?.fail_fast ?? false);
}

export function registerTaskedFlowRoutes(app: FastifyInstance, s: TaskedServices): void {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post('/api/v1/queues/:qid/flows', submit, async (request, reply) => {
    const { qid } = request.params;
    await existingQueue(s.queues, qid);
    const body = fromTaskedFlow(jsonBody(request.body), qid) as { tasks?: unknown };
    if (Array.isArray(body.tasks) && body.tasks.length > MAX_TASKS_PER_FLOW) throw new TaskedError(400, 'task_limit_exceeded', `Flow task limit (${MAX_TASKS_PER_FLOW}) exceeded`);
    const checked = validateFlow(body);
    if (!checked.ok) throw flowProblems(checked.problems);
    const idProblems = taskIdProblems(checked.flow);
    if (idProblems.length > 0) throw flowProblems(idProblems);
    const flow: FlowDefinition = checked.flow;
    const key = request.headers['idempotency-key'];
    const { flowId } = await s.flows.submit(flow, typeof key === 'string' && /^[\x20-\x7e]{1,255}$/.test(key) ? key : undefined, requester(request));
    traceFlow(request, flowId);
    const now = new Date().toISOString();
    const answer: FlowResponse & { warnings?: string[] } = {
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
    return reply.status(201).header('location', `/tasked/api/v1/flows/${flowId}`).send(answer);
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

  api.get('/api/v1/flows/:id/export', exportFlow, async (request) => {
    const { id } = request.params;
    const { with_artifacts: withArtifacts = false, format = 'json' } = request.query;
    if (format !== 'json') {
      throw new TaskedError(400, 'invalid_format', `Unknown export format '${format.slice(0, 64)}'. Supported formats: json (Taskstream does not offer Tasked's tar; with_artifacts=true inlines the artifacts)`);
    }
    traceFlow(request, id);
    const state = await foldFlowHistory(s.ctx.js, s.ctx.topo, id).catch(() => null);
    if (state === null) throw notFound.flow(id);
    const policies = policyLookup(s.queues);
    await policies.load(Object.values(state.tasks).map((t) => t.spec.queue));
    const artifacts = withArtifacts ? await inlineArtifacts(id) : [];
    return exportDocument(state, policies.get, artifacts, new Date().toISOString());
  });

  let artifacts: FlowArtifacts | undefined;
  // Made at the first request: routes registered only to be described have no NATS behind them.
  const flowArtifacts = () => (artifacts ??= new FlowArtifacts(s.ctx));

  /** The flow's artifacts for an export: each listed, its content inlined within the bounds above. */
  async function inlineArtifacts(flowId: string): Promise<ArtifactExport[]> {
    const out: ArtifactExport[] = [];
    let inlined = 0;
    for (const listed of await flowArtifacts().list(flowId)) {
      const entry: ArtifactExport & { task: string } = { name: listed.name, size_bytes: listed.bytes, task: listed.task };
      if (listed.bytes <= INLINE_ARTIFACT_BYTES && inlined + listed.bytes <= MAX_INLINED_BYTES) {
        const opened = await flowArtifacts().open(flowId, listed.name, listed.task).catch(() => undefined);
        if (opened !== undefined) {
          const data = Buffer.from(await new Response(opened.data).arrayBuffer());
          entry.data_base64 = data.toString('base64');
          inlined += data.length;
        }
      }
      out.push(entry);
    }
    return out;
  }

  api.get('/api/v1/flows/:id/artifacts', listArtifacts, async (request) => {
    const { id } = request.params;
    return (await tasked(() => flowArtifacts().list(id), { flow: id })).map((a) => a.name);
  });

  api.get('/api/v1/flows/:id/artifacts/*', getArtifact, async (request, reply) => {
    const { id } = request.params;
    const name = request.params['*'];
    const artifact = await tasked(() => flowArtifacts().open(id, name), { flow: id });
    void reply.type('application/octet-stream').header('content-length', artifact.bytes).header('etag', `"${artifact.sha256}"`);
    return reply.send(Readable.fromWeb(artifact.data as never) as never);
  });
}
