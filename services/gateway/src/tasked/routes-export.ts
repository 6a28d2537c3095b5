import { Readable } from 'node:stream';
import { ULID_PATTERN } from '@taskstream/domain';
import { foldFlowHistory } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { FlowArtifacts } from '../artifacts.js';
import { described } from '../openapi/registry.js';
import { param, quote, Refusal } from '../routes/input.js';
import { traceFlow } from '../tracing.js';
import { anyId, ExportSchema, FLOW_ID, taskedSchema } from './doc.js';
import { notFound, TaskedError } from './errors.js';
import type { TaskedServices } from './index.js';
import { exportDocument, type ArtifactExport } from './shapes.js';
import { policyLookup, tasked } from './support.js';

/** An artifact is inlined in an export up to this size, as Tasked does; larger ones are listed without data. */
export const INLINE_ARTIFACT_BYTES = 1024 * 1024;
/** At most this much artifact data is inlined in one export; artifacts beyond are listed without data. */
export const MAX_INLINED_BYTES = 16 * 1024 * 1024;

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

/** The flow's artifacts for an export: each listed, its content inlined within the bounds above. */
async function inlineArtifacts(artifacts: FlowArtifacts, flowId: string): Promise<ArtifactExport[]> {
  const out: ArtifactExport[] = [];
  let inlined = 0;
  for (const listed of await artifacts.list(flowId)) {
    const entry: ArtifactExport & { task: string } = { name: listed.name, size_bytes: listed.bytes, task: listed.task };
    if (listed.bytes <= INLINE_ARTIFACT_BYTES && inlined + listed.bytes <= MAX_INLINED_BYTES) {
      const opened = await artifacts.open(flowId, listed.name, listed.task).catch(() => undefined);
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

export function registerTaskedExportRoutes(app: FastifyInstance, s: TaskedServices): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/api/v1/flows/:id/export', exportFlow, async (request) => {
    const { id } = request.params;
    const { with_artifacts: withArtifacts = false, format = 'json' } = request.query;
    if (format !== 'json') {
      throw new TaskedError(400, 'invalid_format', `Unknown export format '${format.slice(0, 64)}'. Supported formats: json (Taskstream does not offer Tasked's tar; with_artifacts=true inlines the artifacts)`);
    }
    traceFlow(request, id);
    // A malformed id names no flow (and must never reach a subject filter).
    const state = ULID_PATTERN.test(id) ? await foldFlowHistory(s.ctx.js, s.ctx.topo, id) : null;
    if (state === null) throw notFound.flow(id);
    const policies = policyLookup(s.queues);
    await policies.load(Object.values(state.tasks).map((t) => t.spec.queue));
    const artifacts = withArtifacts ? await inlineArtifacts(flowArtifacts(), id) : [];
    return exportDocument(state, policies.get, artifacts, new Date().toISOString());
  });

  let artifacts: FlowArtifacts | undefined;
  // Made at the first request: routes registered only to be described have no NATS behind them.
  const flowArtifacts = () => (artifacts ??= new FlowArtifacts(s.ctx));

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
