import { allEventsFilter, FLOW_STATUSES_FOR_QUERY, submittedDefinition, toDot, toFlowView, toMermaid, ULID_PATTERN, validateFlow, type FlowDefinition, type FlowStatus } from '@taskstream/domain';
import { readEventsBetween } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError, problemsError } from '../errors.js';
import type { FlowIndex } from '../flow-index.js';
import type { Flows } from '../flows.js';
import { described } from '../openapi/registry.js';
import { FlowPage, FlowStateAt, Fork, Rerun, StoredEventSchema } from '../openapi/schemas.js';
import { FLOW_PARAMS, taskIdProblems, listIds, listParam, NO_QUERY, oneOf, param, parseBody, queueName, quote, Refusal, sequence, timeParam, wholeNumber } from './input.js';
import { requester } from '../auth.js';

const MAX_LABELS = 20;
const MAX_NAME = 200;

const exportQuery = z.object({
  since: described(timeParam('the time to export from'), 'Events stored at or after this time.'),
  until: described(timeParam().optional(), 'Events stored before this time (now by default).'),
});

const listQuery = z.object({
  status: described(
    listParam(
      (raw) => ((FLOW_STATUSES_FOR_QUERY as readonly string[]).includes(raw) ? (raw as FlowStatus) : new Refusal(`must list flow statuses (${FLOW_STATUSES_FOR_QUERY.join(', ')}); ${quote(raw)} is none of them`)),
      FLOW_STATUSES_FOR_QUERY.length,
      true,
      { type: 'string', enum: FLOW_STATUSES_FOR_QUERY },
    ).optional(),
    'Only flows with these statuses: repeat the parameter or separate them with commas.',
  ),
  queue: described(queueName.optional(), 'Only flows of this queue.'),
  since: described(timeParam().optional(), 'Only flows submitted at or after this time.'),
  until: described(timeParam().optional(), 'Only flows submitted before this time.'),
  name: described(
    param((raw) => (raw.length <= MAX_NAME ? raw : new Refusal(`must be at most ${MAX_NAME} characters, as flow names are`)), undefined, { type: 'string', maxLength: MAX_NAME }).optional(),
    'Only flows with this name.',
  ),
  label: described(
    listParam(
      (raw): readonly [string, string] | Refusal => {
        const colon = raw.indexOf(':');
        return colon > 0 && raw.length <= 2 * MAX_NAME ? [raw.slice(0, colon), raw.slice(colon + 1)] : new Refusal(`must look like key:value (at most ${2 * MAX_NAME} characters), not ${quote(raw)}`);
      },
      MAX_LABELS,
      false,
      { type: 'string', pattern: '^[^:]+:', maxLength: 2 * MAX_NAME },
    ).optional(),
    'Only flows with this label, as key:value; repeat the parameter for flows with all of them.',
  ),
  template: described(
    param((raw) => (/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(raw) ? raw : new Refusal(`must be a template name (1 to 64 letters, digits, "_" or "-"), not ${quote(raw)}`)), undefined, { type: 'string', maxLength: 64 }).optional(),
    'Only flows run from this template (`origin.template.name`).',
  ),
  schedule: described(
    param((raw) => (/^[\x21-\x7e]{1,128}$/.test(raw) ? raw : new Refusal(`must be a schedule id (1 to 128 printable characters), not ${quote(raw)}`)), undefined, { type: 'string', maxLength: 128 }).optional(),
    'Only flows started by this schedule (`origin.schedule.id`).',
  ),
  limit: described(wholeNumber(1, 1000).optional(), 'At most this many flows (50 by default).'),
  cursor: described(
    param((raw) => {
      const after = raw.length <= 64 ? Buffer.from(raw, 'base64url').toString('utf8') : '';
      return ULID_PATTERN.test(after) ? after : new Refusal('is not a cursor this API returned; start again without it');
    }).optional(),
    'The `next_cursor` of the previous page.',
  ),
});

const stateQuery = z.object({ at: described(sequence(1, 'the stream sequence to replay the flow up to (see /events)'), 'The stream sequence to replay the flow up to (see /events).') });
const graphQuery = z.object({ format: described(oneOf(['dot', 'mermaid'] as const).optional(), 'dot (Graphviz, the default) or mermaid.') });

const object = (example: string) => ({ error: `must be a JSON object such as ${example}` });

const RerunBody = z.strictObject({ from: z.string({ error: 'must be the id of a task of the flow, as a string' }).optional() }, object('{} or {"from": "<task id>"}'));

const forkAt = 'must be a stream sequence: a whole number, 1 or more, as a JSON number (see /events)';
const PatchTask = z.looseObject(
  { id: z.string({ error: (issue) => (issue.input === undefined ? 'is required: the id of the task to change or add' : 'must be a task id (a string)') }) },
  { error: 'must be an object with the "id" of the task it changes or adds' },
);
const Patch = z.looseObject({ tasks: z.array(PatchTask, { error: 'must be a list of tasks, each with the "id" it changes or adds' }).optional() }, { error: 'must be an object of flow fields to replace' });
export type Patch = z.output<typeof Patch>;
const ForkBody = z.strictObject(
  {
    at: z
      .number({ error: (issue) => (issue.input === undefined ? 'is required: the stream sequence of the event to fork at (see /events)' : forkAt) })
      .int(forkAt)
      .min(1, forkAt)
      .max(Number.MAX_SAFE_INTEGER, forkAt),
    patch: Patch.optional(),
  },
  object('{"at": 42, "patch": {"tasks": [{"id": "build", "config": {}}]}}'),
);
/** Levels of a fork body whose keys are merged or copied: the body, the patch, its tasks list and each task. */
const FORK_KEY_DEPTH = 4;

/** Validates a flow built by the gateway (a fork's patched definition) exactly like a submission. */
function checkedFlow(input: unknown): FlowDefinition {
  const result = validateFlow(input);
  if (!result.ok) throw problemsError('INVALID_FLOW', result.problems);
  // A patch is Taskstream's own API: a field it does not know is a mistake, not Tasked compatibility.
  if (result.warnings.length > 0) throw problemsError('INVALID_FLOW', result.warnings);
  const problems = taskIdProblems(result.flow);
  if (problems.length > 0) throw problemsError('INVALID_FLOW', problems);
  return result.flow;
}

/**
 * Applies a fork's patch: top-level fields replace, tasks merge by id (unknown ids are added). Every
 * object is built by spreading, never by assigning user keys, and the result is validated like a
 * submission.
 */
export function patchDefinition(definition: FlowDefinition, patch: Patch): { definition: FlowDefinition; changed: string[] } {
  const { tasks: changes = [], ...fields } = patch;
  const tasks: Array<Record<string, unknown>> = definition.tasks.map((task) => ({ ...task }));
  const position = new Map(definition.tasks.map((task, i) => [task.id, i]));
  for (const change of changes) {
    const at = position.get(change.id);
    if (at === undefined) {
      position.set(change.id, tasks.length);
      tasks.push({ ...change });
    } else {
      tasks[at] = { ...tasks[at], ...change };
    }
  }
  const { warnings: _ignoredAtSubmission, ...submitted } = definition;
  return { definition: checkedFlow({ ...submitted, ...fields, tasks }), changed: [...new Set(changes.map((c) => c.id))] };
}

const flowRoute = { params: FLOW_PARAMS, errors: ['FLOW_NOT_FOUND'] } as const;

const exportEvents = {
  config: { scope: 'read' },
  schema: {
    operationId: 'exportEvents',
    summary: 'Audit export',
    description: 'Every event stored in [since, until), of every flow, as NDJSON: one stored event a line.',
    tags: ['history'],
    querystring: exportQuery,
    response: { 200: { content: { 'application/x-ndjson': { schema: StoredEventSchema } } } },
  },
} as const;

const listFlows = {
  config: { scope: 'read' },
  schema: { operationId: 'listFlows', summary: 'Flows', description: 'Flows, newest first, a page at a time.', tags: ['flows'], querystring: listQuery, response: { 200: FlowPage } },
} as const;

const stateAt = {
  config: { scope: 'read' },
  schema: {
    ...flowRoute,
    operationId: 'getFlowStateAt',
    summary: "A flow's state at a sequence",
    description: "The flow's view folded from its events up to a stream sequence: how it stood then.",
    tags: ['history'],
    querystring: stateQuery,
    response: { 200: FlowStateAt },
  },
} as const;

const graph = {
  config: { scope: 'read' },
  schema: {
    ...flowRoute,
    operationId: 'getFlowGraph',
    summary: "A flow's graph",
    description: 'The tasks and their dependencies, coloured by status, as Graphviz dot or Mermaid text.',
    tags: ['history'],
    querystring: graphQuery,
    response: { 200: { content: { 'text/vnd.graphviz': { schema: z.string() }, 'text/plain': { schema: z.string() } } } },
  },
} as const;

const rerun = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'rerunFlow',
    summary: 'Rerun a finished flow',
    description: 'A new flow from the finished one: tasks that succeeded are reused, the others run again; `from` runs that task and everything downstream again too. The body may be left out.',
    tags: ['history'],
    params: FLOW_PARAMS,
    querystring: NO_QUERY,
    requestBody: RerunBody,
    optionalBody: true,
    response: { 202: Rerun },
    replyHeaders: { Location: 'the new flow' },
    errors: ['FLOW_NOT_FOUND', 'FLOW_NOT_FINISHED', 'INVALID_BODY', 'INVALID_REQUEST', 'FLOW_TOO_LARGE'],
  },
} as const;

const fork = {
  config: { scope: 'submit' },
  schema: {
    operationId: 'forkFlow',
    summary: 'Fork a flow at a sequence',
    description: 'A new flow from the state at stream sequence `at`, with `patch` applied: its fields replace the flow\'s, its tasks merge by id (unknown ids are added).',
    tags: ['history'],
    params: FLOW_PARAMS,
    querystring: NO_QUERY,
    requestBody: ForkBody,
    response: { 202: Fork },
    replyHeaders: { Location: 'the new flow' },
    errors: ['FLOW_NOT_FOUND', 'INVALID_BODY', 'INVALID_REQUEST', 'INVALID_FLOW', 'FLOW_TOO_LARGE'],
  },
} as const;

export function registerHistoryRoutes(app: FastifyInstance, flows: Flows, index: FlowIndex, ctx: ServiceContext): void {
  registerReadRoutes(app, flows, index, ctx);
  registerDerivingRoutes(app, flows);
}

/** Reading the history: the audit export, the flows list, a flow's state at a sequence, its graph. */
function registerReadRoutes(app: FastifyInstance, flows: Flows, index: FlowIndex, ctx: ServiceContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  /** Audit export of every event stored in [since, until), as NDJSON. */
  api.get('/api/v1/events', exportEvents, async (request, reply) => {
    const { since, until = new Date() } = request.query;
    const events = await readEventsBetween(ctx.js, ctx.topo.eventsStream, allEventsFilter(ctx.topo.layout), since, until);
    const text = events.map((e) => JSON.stringify({ seq: e.seq, stored_at: e.stored_at, event: e.event })).join('\n') + (events.length ? '\n' : '');
    // The document gives the schema of one line; the body is their text.
    return reply.type('application/x-ndjson').send(text as never);
  });

  api.get('/api/v1/flows', listFlows, async (request) => {
    const q = request.query;
    const page = index.query({
      ...(q.status && q.status.length > 0 && { status: q.status }),
      ...(q.queue !== undefined && { queue: q.queue }),
      ...(q.since !== undefined && { since: q.since.toISOString() }),
      ...(q.until !== undefined && { until: q.until.toISOString() }),
      ...(q.name !== undefined && { name: q.name }),
      ...(q.label && q.label.length > 0 && { labels: q.label }),
      ...(q.template !== undefined && { template: q.template }),
      ...(q.schedule !== undefined && { schedule: q.schedule }),
      limit: q.limit ?? 50,
      ...(q.cursor !== undefined && { after: q.cursor }),
    });
    return { flows: page.flows, ...(page.next && { next_cursor: Buffer.from(page.next).toString('base64url') }) };
  });

  api.get('/api/v1/flows/:id/state', stateAt, async (request) => {
    const { at } = request.query;
    const state = await flows.stateAt(request.params.id, at);
    return { flow_id: request.params.id, at_seq: at, folded_through_seq: state.last_seq, state: toFlowView(state) };
  });

  api.get('/api/v1/flows/:id/graph', graph, async (request, reply) => {
    const format = request.query.format ?? 'dot';
    const view = await flows.view(request.params.id);
    return reply.type(format === 'dot' ? 'text/vnd.graphviz; charset=utf-8' : 'text/plain; charset=utf-8').send(format === 'dot' ? toDot(view) : toMermaid(view));
  });
}

/** New flows from a finished one: a rerun from its last event, a fork at any sequence with a patch. */
function registerDerivingRoutes(app: FastifyInstance, flows: Flows): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post('/api/v1/flows/:id/rerun', rerun, async (request, reply) => {
    const { from } = parseBody(request.body, RerunBody);
    const parent = await flows.stateAt(request.params.id, Number.MAX_SAFE_INTEGER);
    if (!['succeeded', 'failed', 'cancelled'].includes(parent.status)) throw apiError('FLOW_NOT_FINISHED', parent.flow_id, parent.status);
    if (from !== undefined && !Object.hasOwn(parent.tasks, from)) {
      throw apiError('INVALID_PARAMETER', 'from', `must name a task of flow "${parent.flow_id}", not ${quote(from)}; its tasks: ${listIds(parent.order)}`);
    }
    // Tasks added while the parent ran (a map's instances) are added again as the new flow runs.
    const flowId = await flows.derive(parent, 'rerun', parent.last_seq, submittedDefinition(parent), from === undefined ? [] : [from], requester(request));
    return reply.status(202).header('location', `/api/v1/flows/${flowId}`).send({ flow_id: flowId, rerun_of: parent.flow_id, status: 'submitted' });
  });

  api.post('/api/v1/flows/:id/fork', fork, async (request, reply) => {
    const { at, patch } = parseBody(request.body, ForkBody, FORK_KEY_DEPTH);
    const parent = await flows.stateAt(request.params.id, at);
    const submitted = submittedDefinition(parent);
    const { definition, changed } = patch ? patchDefinition(submitted, patch) : { definition: submitted, changed: [] };
    const flowId = await flows.derive(parent, 'fork', at, definition, changed, requester(request));
    return reply.status(202).header('location', `/api/v1/flows/${flowId}`).send({ flow_id: flowId, forked_from: parent.flow_id, at_seq: at, status: 'submitted' });
  });
}
