import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { artifactNameProblem, MAX_ARTIFACT_NAME_CHARS } from '@taskstream/domain';
import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { FlowArtifacts, type OpenedArtifact } from '../artifacts.js';
import { apiError } from '../errors.js';
import { described } from '../openapi/registry.js';
import { traceFlow } from '../tracing.js';
import { flowIdParam, oneOf, param, quote, Refusal } from './input.js';

const artifactName = described(
  param((raw) => {
    const problem = artifactNameProblem(raw);
    return problem === undefined ? raw : new Refusal(`${quote(raw)} is no artifact name: it ${problem}`);
  }, 'the artifact name, a relative path such as out/report.csv', { type: 'string', maxLength: MAX_ARTIFACT_NAME_CHARS }),
  'The artifact name as listed: a relative path, its "/" written as it is (out/report.csv), other characters percent-encoded.',
);

const taskParam = described(
  param((raw) => raw).optional(),
  'Only the artifacts of this task; needed to download a name that several tasks stored.',
);

const ListedArtifact = z.object({
  name: z.string(),
  task: z.string(),
  bytes: z.number().int(),
  sha256: z.string(),
  attempt: z.number().int(),
});

const ArtifactList = z.object({ flow_id: z.string(), artifacts: z.array(ListedArtifact) });

const ARTIFACT_PARAMS = z.object({ id: flowIdParam, '*': artifactName });

const list = {
  config: { scope: 'read' },
  schema: {
    operationId: 'listArtifacts',
    summary: "A flow's artifacts",
    description:
      "The files the flow's shell steps stored, task by task, each task's by name: the latest file its task stored under that name. `format=names` answers Tasked's form, a list of names.",
    tags: ['flows'],
    params: z.object({ id: flowIdParam }),
    querystring: z.object({
      task: taskParam,
      format: described(oneOf(['full', 'names'] as const).optional(), "full (the default): each artifact's name, task, size, SHA-256 and attempt; names: Tasked's list of names."),
    }),
    response: { 200: z.union([ArtifactList, z.array(z.string())]) },
    errors: ['FLOW_NOT_FOUND', 'TASK_NOT_FOUND'],
  },
} as const;

const download = {
  config: { scope: 'read' },
  schema: {
    operationId: 'getArtifact',
    summary: 'Download an artifact',
    description:
      'The file, streamed as application/octet-stream, with its size (Content-Length), its SHA-256 (`Repr-Digest: sha-256=:<base64>:` and `ETag`), and the task and attempt that stored it (`Taskstream-Task`, `Taskstream-Attempt`, percent-encoded).',
    tags: ['flows'],
    params: ARTIFACT_PARAMS,
    querystring: z.object({ task: taskParam }),
    response: { 200: { content: { 'application/octet-stream': { schema: z.string() } } } },
    errors: ['FLOW_NOT_FOUND', 'TASK_NOT_FOUND', 'ARTIFACT_NOT_FOUND', 'ARTIFACT_AMBIGUOUS'],
  },
} as const;

const upload = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'putArtifact',
    summary: 'Upload an artifact (not supported)',
    description: "Tasked's upload route. Taskstream's artifacts are the files shell steps leave in $TASKSTREAM_ARTIFACTS ($TASKED_ARTIFACTS); this answers 405.",
    tags: ['flows'],
    params: ARTIFACT_PARAMS,
    querystring: z.object({}),
    errors: ['ARTIFACT_UPLOAD_UNSUPPORTED'],
  },
} as const;

/** A file name for Content-Disposition: its last part, ASCII with the rest percent-encoded as RFC 6266 has it. */
function disposition(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const ascii = base.replace(/[^A-Za-z0-9._ +=@,~-]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

/**
 * `GET /api/v1/flows/{id}/artifacts` (list), `GET …/artifacts/{name}` (download) and Tasked's
 * `PUT …/artifacts/{name}`, answered 405: steps store artifacts, the API only reads them.
 */
export function registerArtifactRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  let artifacts: FlowArtifacts | undefined;
  // Made at the first request: routes registered only to be described have no NATS behind them.
  const flowArtifacts = () => (artifacts ??= new FlowArtifacts(ctx));

  api.get('/api/v1/flows/:id/artifacts', list, async (request) => {
    traceFlow(request, request.params.id);
    const listed = await flowArtifacts().list(request.params.id, request.query.task);
    if (request.query.format === 'names') return listed.map((a) => a.name);
    return { flow_id: request.params.id, artifacts: listed };
  });

  // Fastify answers HEAD with this handler too: then the file is looked up, not read.
  api.get('/api/v1/flows/:id/artifacts/*', download, async (request, reply) => {
    traceFlow(request, request.params.id);
    const head = request.method === 'HEAD';
    const artifact = head ? await flowArtifacts().describe(request.params.id, request.params['*'], request.query.task) : await flowArtifacts().open(request.params.id, request.params['*'], request.query.task);
    void reply
      .type('application/octet-stream')
      .header('content-length', artifact.bytes)
      .header('repr-digest', `sha-256=:${Buffer.from(artifact.sha256, 'hex').toString('base64')}:`)
      .header('etag', `"${artifact.sha256}"`)
      .header('content-disposition', disposition(artifact.name))
      .header('taskstream-task', encodeURIComponent(artifact.task))
      .header('taskstream-attempt', String(artifact.attempt));
    // An empty stream for HEAD keeps the Content-Length set above (no body is sent either way).
    return reply.send((head ? Readable.from([]) : Readable.fromWeb((artifact as OpenedArtifact).data as WebReadableStream<Uint8Array>)) as never);
  });

  api.put('/api/v1/flows/:id/artifacts/*', upload, async (_request, reply) => {
    void reply.header('allow', 'GET, HEAD');
    throw apiError('ARTIFACT_UPLOAD_UNSUPPORTED');
  });
}
