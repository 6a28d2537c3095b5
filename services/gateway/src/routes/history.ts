import { allEventsFilter, FLOW_STATUSES_FOR_QUERY, toDot, toFlowView, toMermaid, validateFlow, type FlowDefinition, type FlowStatus } from '@taskstream/domain';
import { readEventsBetween } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import { ApiError, apiError, ERRORS } from '../errors.js';
import type { FlowIndex } from '../flow-index.js';
import type { Flows } from '../flows.js';
import { sequenceParam } from './params.js';

interface ListQuery {
  status?: string;
  queue?: string;
  since?: string;
  until?: string;
  name?: string;
  label?: string | string[];
  limit?: string;
  cursor?: string;
}

function isoParam(name: string, raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  const time = Date.parse(raw);
  if (Number.isNaN(time)) throw apiError('INVALID_PARAMETER', name, `must be an ISO 8601 time such as 2026-11-23T05:00:00Z, not "${raw}"`);
  return new Date(time).toISOString();
}

function jsonBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'string' || body.trim() === '') return {};
  try {
    const parsed = JSON.parse(body);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a JSON object');
    return parsed;
  } catch (error) {
    throw apiError('INVALID_BODY', `not valid JSON: ${(error as Error).message}`);
  }
}

/** Applies a fork's patch: top-level fields replace, tasks merge by id (unknown ids are added). */
export function patchDefinition(definition: FlowDefinition, patch: Record<string, unknown>): { definition: FlowDefinition; changed: string[] } {
  const raw = structuredClone(definition) as unknown as Record<string, unknown> & { tasks: Array<Record<string, unknown>> };
  const changed: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (key !== 'tasks') {
      raw[key] = value;
      continue;
    }
    if (!Array.isArray(value)) throw apiError('INVALID_BODY', '"patch.tasks" must be a list of tasks, each with the "id" it changes or adds');
    for (const change of value as Array<Record<string, unknown>>) {
      const existing = raw.tasks.find((t) => t.id === change?.id);
      if (existing) Object.assign(existing, change);
      else raw.tasks.push(change);
      changed.push(String(change?.id));
    }
  }
  const result = validateFlow(raw);
  if (!result.ok) throw new ApiError('INVALID_FLOW', ERRORS.INVALID_FLOW.status, ERRORS.INVALID_FLOW.message(result.problems.length), { problems: result.problems });
  return { definition: result.flow, changed };
}

export function registerHistoryRoutes(app: FastifyInstance, flows: Flows, index: FlowIndex, ctx: ServiceContext): void {
  /** Audit export of every event stored in [since, until), as NDJSON. */
  app.get<{ Querystring: { since?: string; until?: string } }>('/api/v1/events', async (request, reply) => {
    const since = isoParam('since', request.query.since);
    if (since === undefined) throw apiError('INVALID_PARAMETER', 'since', 'is required: an ISO 8601 time to export from');
    const until = isoParam('until', request.query.until) ?? new Date().toISOString();
    const events = await readEventsBetween(ctx.js, ctx.topo.eventsStream, allEventsFilter(ctx.topo.layout), new Date(since), new Date(until));
    return reply.type('application/x-ndjson').send(events.map((e) => JSON.stringify({ seq: e.seq, stored_at: e.stored_at, event: e.event })).join('\n') + (events.length ? '\n' : ''));
  });

  app.get<{ Querystring: ListQuery }>('/api/v1/flows', async (request) => {
    const q = request.query;
    const statuses = q.status?.split(',').filter(Boolean) as FlowStatus[] | undefined;
    for (const s of statuses ?? []) {
      if (!FLOW_STATUSES_FOR_QUERY.includes(s)) throw apiError('INVALID_PARAMETER', 'status', `must be a comma-separated list of ${FLOW_STATUSES_FOR_QUERY.join(', ')}; "${s}" is none of them`);
    }
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw apiError('INVALID_PARAMETER', 'limit', 'must be a whole number from 1 to 1000');
    const labels: Record<string, string> = {};
    for (const label of [q.label ?? []].flat()) {
      const [key, ...rest] = label.split(':');
      if (!key || rest.length === 0) throw apiError('INVALID_PARAMETER', 'label', `must look like key:value, not "${label}"`);
      labels[key] = rest.join(':');
    }
    let after: string | undefined;
    if (q.cursor) {
      after = Buffer.from(q.cursor, 'base64url').toString('utf8');
      if (!/^[0-9A-Z]{26}$/.test(after)) throw apiError('INVALID_PARAMETER', 'cursor', 'is not a cursor this API returned; start again without it');
    }
    const since = isoParam('since', q.since);
    const until = isoParam('until', q.until);
    const page = index.query({
      ...(statuses && { status: statuses }),
      ...(q.queue !== undefined && { queue: q.queue }),
      ...(since !== undefined && { since }),
      ...(until !== undefined && { until }),
      ...(q.name !== undefined && { name: q.name }),
      ...(Object.keys(labels).length > 0 && { labels }),
      limit,
      ...(after !== undefined && { after }),
    });
    return { flows: page.flows, ...(page.next && { next_cursor: Buffer.from(page.next).toString('base64url') }) };
  });

  app.get<{ Params: { id: string }; Querystring: { at?: string } }>('/api/v1/flows/:id/state', async (request) => {
    if (request.query.at === undefined) throw apiError('INVALID_PARAMETER', 'at', 'is required: the stream sequence to replay the flow up to (see /events)');
    const at = sequenceParam('at', request.query.at);
    const state = await flows.stateAt(request.params.id, at);
    return { flow_id: request.params.id, at_seq: at, folded_through_seq: state.last_seq, state: toFlowView(state) };
  });

  app.get<{ Params: { id: string }; Querystring: { format?: string } }>('/api/v1/flows/:id/graph', async (request, reply) => {
    const format = request.query.format ?? 'dot';
    if (format !== 'dot' && format !== 'mermaid') throw apiError('INVALID_PARAMETER', 'format', 'must be dot or mermaid');
    const view = await flows.view(request.params.id);
    return reply.type(format === 'dot' ? 'text/vnd.graphviz; charset=utf-8' : 'text/plain; charset=utf-8').send(format === 'dot' ? toDot(view) : toMermaid(view));
  });

  app.post<{ Params: { id: string }; Body: string | undefined }>('/api/v1/flows/:id/rerun', async (request, reply) => {
    const body = jsonBody(request.body);
    const parent = await flows.stateAt(request.params.id, Number.MAX_SAFE_INTEGER);
    if (!['succeeded', 'failed', 'cancelled'].includes(parent.status)) throw apiError('FLOW_NOT_FINISHED', parent.flow_id, parent.status);
    const from = body.from;
    if (from !== undefined && (typeof from !== 'string' || !parent.tasks[from])) {
      throw apiError('INVALID_PARAMETER', 'from', `must name a task of flow "${parent.flow_id}": ${parent.order.join(', ')}`);
    }
    const flowId = await flows.derive(parent, 'rerun', parent.last_seq, parent.definition, from === undefined ? [] : [from]);
    return reply.status(202).header('location', `/api/v1/flows/${flowId}`).send({ flow_id: flowId, rerun_of: parent.flow_id, status: 'submitted' });
  });

  app.post<{ Params: { id: string }; Body: string | undefined }>('/api/v1/flows/:id/fork', async (request, reply) => {
    const body = jsonBody(request.body);
    if (body.at === undefined) throw apiError('INVALID_PARAMETER', 'at', 'is required: the stream sequence of the event to fork at (see /events)');
    const at = sequenceParam('at', body.at);
    const parent = await flows.stateAt(request.params.id, at);
    const patch = body.patch === undefined ? undefined : (body.patch as Record<string, unknown>);
    if (patch !== undefined && (patch === null || typeof patch !== 'object' || Array.isArray(patch))) throw apiError('INVALID_BODY', '"patch" must be an object of flow fields to replace');
    const { definition, changed } = patch ? patchDefinition(parent.definition, patch) : { definition: parent.definition, changed: [] };
    const flowId = await flows.derive(parent, 'fork', at, definition, changed);
    return reply.status(202).header('location', `/api/v1/flows/${flowId}`).send({ flow_id: flowId, forked_from: parent.flow_id, at_seq: at, status: 'submitted' });
  });
}
