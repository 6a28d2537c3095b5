import { allEventsFilter, FLOW_STATUSES_FOR_QUERY, toDot, toFlowView, toMermaid, ULID_PATTERN, validateFlow, type FlowDefinition, type FlowStatus } from '@taskstream/domain';
import { readEventsBetween } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { apiError, problemsError } from '../errors.js';
import type { FlowIndex } from '../flow-index.js';
import type { Flows } from '../flows.js';
import { FLOW_PARAMS, taskIdProblems, listIds, listParam, NO_QUERY, oneOf, param, parseBody, querySpec, queueName, quote, Refusal, sequence, timeParam, wholeNumber } from './input.js';

const MAX_LABELS = 20;
const MAX_NAME = 200;

const exportQuery = querySpec({ since: timeParam('the time to export from'), until: timeParam().optional() });

const listQuery = querySpec(
  {
    status: listParam(
      (raw) => ((FLOW_STATUSES_FOR_QUERY as readonly string[]).includes(raw) ? (raw as FlowStatus) : new Refusal(`must list flow statuses (${FLOW_STATUSES_FOR_QUERY.join(', ')}); ${quote(raw)} is none of them`)),
      FLOW_STATUSES_FOR_QUERY.length,
      true,
    ).optional(),
    queue: queueName.optional(),
    since: timeParam().optional(),
    until: timeParam().optional(),
    name: param((raw) => (raw.length <= MAX_NAME ? raw : new Refusal(`must be at most ${MAX_NAME} characters, as flow names are`))).optional(),
    label: listParam(
      (raw): readonly [string, string] | Refusal => {
        const colon = raw.indexOf(':');
        return colon > 0 && raw.length <= 2 * MAX_NAME ? [raw.slice(0, colon), raw.slice(colon + 1)] : new Refusal(`must look like key:value (at most ${2 * MAX_NAME} characters), not ${quote(raw)}`);
      },
      MAX_LABELS,
      false,
    ).optional(),
    limit: wholeNumber(1, 1000).optional(),
    cursor: param((raw) => {
      const after = raw.length <= 64 ? Buffer.from(raw, 'base64url').toString('utf8') : '';
      return ULID_PATTERN.test(after) ? after : new Refusal('is not a cursor this API returned; start again without it');
    }).optional(),
  },
  ['status', 'label'],
);

const stateQuery = querySpec({ at: sequence(1, 'the stream sequence to replay the flow up to (see /events)') });
const graphQuery = querySpec({ format: oneOf(['dot', 'mermaid'] as const).optional() });

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

export function registerHistoryRoutes(app: FastifyInstance, flows: Flows, index: FlowIndex, ctx: ServiceContext): void {
  registerReadRoutes(app, flows, index, ctx);
  registerDerivingRoutes(app, flows);
}

/** Reading the history: the audit export, the flows list, a flow's state at a sequence, its graph. */
function registerReadRoutes(app: FastifyInstance, flows: Flows, index: FlowIndex, ctx: ServiceContext): void {
  /** Audit export of every event stored in [since, until), as NDJSON. */
  app.get<{ Querystring: z.output<typeof exportQuery.schema> }>('/api/v1/events', { config: { scope: 'read', query: exportQuery } }, async (request, reply) => {
    const { since, until = new Date() } = request.query;
    const events = await readEventsBetween(ctx.js, ctx.topo.eventsStream, allEventsFilter(ctx.topo.layout), since, until);
    return reply.type('application/x-ndjson').send(events.map((e) => JSON.stringify({ seq: e.seq, stored_at: e.stored_at, event: e.event })).join('\n') + (events.length ? '\n' : ''));
  });

  app.get<{ Querystring: z.output<typeof listQuery.schema> }>('/api/v1/flows', { config: { scope: 'read', query: listQuery } }, async (request) => {
    const q = request.query;
    const page = index.query({
      ...(q.status && q.status.length > 0 && { status: q.status }),
      ...(q.queue !== undefined && { queue: q.queue }),
      ...(q.since !== undefined && { since: q.since.toISOString() }),
      ...(q.until !== undefined && { until: q.until.toISOString() }),
      ...(q.name !== undefined && { name: q.name }),
      ...(q.label && q.label.length > 0 && { labels: q.label }),
      limit: q.limit ?? 50,
      ...(q.cursor !== undefined && { after: q.cursor }),
    });
    return { flows: page.flows, ...(page.next && { next_cursor: Buffer.from(page.next).toString('base64url') }) };
  });

  app.get<{ Params: z.output<typeof FLOW_PARAMS>; Querystring: z.output<typeof stateQuery.schema> }>(
    '/api/v1/flows/:id/state',
    { config: { scope: 'read', params: FLOW_PARAMS, query: stateQuery } },
    async (request) => {
      const { at } = request.query;
      const state = await flows.stateAt(request.params.id, at);
      return { flow_id: request.params.id, at_seq: at, folded_through_seq: state.last_seq, state: toFlowView(state) };
    },
  );

  app.get<{ Params: z.output<typeof FLOW_PARAMS>; Querystring: z.output<typeof graphQuery.schema> }>(
    '/api/v1/flows/:id/graph',
    { config: { scope: 'read', params: FLOW_PARAMS, query: graphQuery } },
    async (request, reply) => {
      const format = request.query.format ?? 'dot';
      const view = await flows.view(request.params.id);
      return reply.type(format === 'dot' ? 'text/vnd.graphviz; charset=utf-8' : 'text/plain; charset=utf-8').send(format === 'dot' ? toDot(view) : toMermaid(view));
    },
  );

}

/** New flows from a finished one: a rerun from its last event, a fork at any sequence with a patch. */
function registerDerivingRoutes(app: FastifyInstance, flows: Flows): void {
  app.post<{ Params: z.output<typeof FLOW_PARAMS>; Body: string | undefined }>('/api/v1/flows/:id/rerun', { config: { scope: 'submit', params: FLOW_PARAMS, query: NO_QUERY } }, async (request, reply) => {
    const { from } = parseBody(request.body, RerunBody);
    const parent = await flows.stateAt(request.params.id, Number.MAX_SAFE_INTEGER);
    if (!['succeeded', 'failed', 'cancelled'].includes(parent.status)) throw apiError('FLOW_NOT_FINISHED', parent.flow_id, parent.status);
    if (from !== undefined && !Object.hasOwn(parent.tasks, from)) {
      throw apiError('INVALID_PARAMETER', 'from', `must name a task of flow "${parent.flow_id}", not ${quote(from)}; its tasks: ${listIds(parent.order)}`);
    }
    const flowId = await flows.derive(parent, 'rerun', parent.last_seq, parent.definition, from === undefined ? [] : [from]);
    return reply.status(202).header('location', `/api/v1/flows/${flowId}`).send({ flow_id: flowId, rerun_of: parent.flow_id, status: 'submitted' });
  });

  app.post<{ Params: z.output<typeof FLOW_PARAMS>; Body: string | undefined }>('/api/v1/flows/:id/fork', { config: { scope: 'submit', params: FLOW_PARAMS, query: NO_QUERY } }, async (request, reply) => {
    const { at, patch } = parseBody(request.body, ForkBody, FORK_KEY_DEPTH);
    const parent = await flows.stateAt(request.params.id, at);
    const { definition, changed } = patch ? patchDefinition(parent.definition, patch) : { definition: parent.definition, changed: [] };
    const flowId = await flows.derive(parent, 'fork', at, definition, changed);
    return reply.status(202).header('location', `/api/v1/flows/${flowId}`).send({ flow_id: flowId, forked_from: parent.flow_id, at_seq: at, status: 'submitted' });
  });
}
