import { pipeline, Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { ULID_PATTERN } from '@taskstream/domain';
import { foldFlowHistory } from '@taskstream/nats';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { FlowArtifacts, type ListedArtifact } from '../artifacts.js';
import { described } from '../openapi/registry.js';
import { param, quote, Refusal } from '../routes/input.js';
import { traceFlow } from '../tracing.js';
import { anyId, ExportSchema, FLOW_ID, taskedSchema } from './doc.js';
import { notFound, TaskedError } from './errors.js';
import type { TaskedServices } from './index.js';
import { exportDocument, type ArtifactExport } from './shapes.js';
import { policyLookup, tasked } from './support.js';
import { tarStream, type TarEntry } from './tar.js';

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
    description: `Tasked's export document (version 1), folded from the flow's log: whole outputs. With \`with_artifacts=true\`, each artifact of ${INLINE_ARTIFACT_BYTES / 1024 / 1024} MiB or less is inlined as base64 (at most ${MAX_INLINED_BYTES / 1024 / 1024} MiB in all). \`format=tar\`: a gzipped tar of \`export.json\` (the artifacts listed with their \`path\`) and every artifact under \`artifacts/\`, streamed from the store.`,
    params: FLOW_ID,
    querystring: z.object({
      with_artifacts: described(bool.optional(), 'Inline the artifacts (default false).'),
      format: described(param((raw) => raw).optional(), 'json (the default) or tar (application/gzip).'),
    }),
    ok: { 200: { content: { 'application/json': { schema: ExportSchema }, 'application/gzip': { schema: z.string() } } } },
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

/** Each artifact with its path in a tar export: `artifacts/<name>`, or under its task's folder when several tasks stored the name. */
function archived(listed: ListedArtifact[]): Array<ListedArtifact & { path: string }> {
  const count = new Map<string, number>();
  for (const a of listed) count.set(a.name, (count.get(a.name) ?? 0) + 1);
  return listed.map((a) => ({ ...a, path: count.get(a.name) === 1 ? `artifacts/${a.name}` : `artifacts/by-task/${encodeURIComponent(a.task)}/${a.name}` }));
}

/** A tar export's entries: export.json (pretty, as Tasked writes it), then each artifact streamed from the store. */
async function* archiveEntries(artifacts: FlowArtifacts, flowId: string, document: unknown, listed: Array<ListedArtifact & { path: string }>): AsyncGenerator<TarEntry> {
  const json = Buffer.from(JSON.stringify(document, null, 2));
  yield { path: 'export.json', size: json.length, content: [json] };
  for (const artifact of listed) {
    const opened = await artifacts.open(flowId, artifact.name, artifact.task);
    yield { path: artifact.path, size: artifact.bytes, content: Readable.fromWeb(opened.data as never) as AsyncIterable<Uint8Array> };
  }
}

export function registerTaskedExportRoutes(app: FastifyInstance, s: TaskedServices): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/api/v1/flows/:id/export', exportFlow, async (request, reply) => {
    const { id } = request.params;
    const { with_artifacts: withArtifacts = false, format = 'json' } = request.query;
    if (format !== 'json' && format !== 'tar') throw new TaskedError(400, 'invalid_format', `Unknown export format '${format.slice(0, 64)}'. Supported formats: json, tar`);
    traceFlow(request, id);
    // A malformed id names no flow (and must never reach a subject filter).
    const state = ULID_PATTERN.test(id) ? await foldFlowHistory(s.ctx.js, s.ctx.topo, id) : null;
    if (state === null) throw notFound.flow(id);
    const policies = policyLookup(s.queues);
    await policies.load(Object.values(state.tasks).map((t) => t.spec.queue));
    const exportedAt = new Date().toISOString();
    if (format === 'json') return exportDocument(state, policies.get, withArtifacts ? await inlineArtifacts(flowArtifacts(), id) : [], exportedAt);
    const listed = archived(await flowArtifacts().list(id));
    const document = exportDocument(state, policies.get, listed.map(({ name, bytes, task, path }) => ({ name, size_bytes: bytes, task, path })), exportedAt);
    const gzip = createGzip();
    pipeline(Readable.from(tarStream(archiveEntries(flowArtifacts(), id, document, listed))), gzip, (error) => {
      if (error) request.log.error({ err: error, flow_id: id }, 'the tar export failed while streaming; the client gets a truncated archive');
    });
    return reply.type('application/gzip').header('content-disposition', `attachment; filename="${id}.tar.gz"`).send(gzip);
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
