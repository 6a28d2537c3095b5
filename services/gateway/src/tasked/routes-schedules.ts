import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requester } from '../auth.js';
import { anyId, QUEUE_ID, ScheduleResponseSchema, taskedSchema } from './doc.js';
import { TaskedError } from './errors.js';
import type { TaskedServices } from './index.js';
import { fromTaskedFlow, scheduleResponse } from './shapes.js';
import { existingQueue, jsonBody, tasked } from './support.js';

const ScheduleRequest = z.object({
  cron: z.string().describe('5 fields (a second 0 is put first), or 6 or 7 (seconds first, a year last); UTC.'),
  flow: z.looseObject({}).describe("Tasked's FlowDef, submitted to the schedule's queue at each time."),
  name: z.string().nullable().optional(),
  enabled: z.boolean().optional().describe('Default true.'),
});

const SCHEDULE_ID = z.object({ sid: anyId('A schedule id, as answered when it was created.') });
const INVALID = { 400: ['invalid_cron_expression', 'no_executor', 'invalid_graph'], 422: ['invalid_request', 'invalid_flow'] };

const create = {
  config: { scope: 'submit' },
  schema: taskedSchema({
    operationId: 'taskedCreateSchedule',
    summary: "Create a schedule on a queue (Tasked's route)",
    description: "Tasked's `{cron, flow, name?, enabled?}`; the queue must exist. Runs may overlap, as Tasked's; after an outage the latest missed time runs (Tasked back-fills none).",
    params: QUEUE_ID,
    requestBody: ScheduleRequest,
    ok: { 201: ScheduleResponseSchema },
    errors: { ...INVALID, 404: ['queue_not_found'], 409: ['limit_reached'] },
  }),
} as const;
const list = {
  config: { scope: 'read' },
  schema: taskedSchema({ operationId: 'taskedListSchedules', summary: "A queue's schedules (Tasked's route)", description: 'A bare list.', params: QUEUE_ID, ok: { 200: z.array(ScheduleResponseSchema) } }),
} as const;
const get = {
  config: { scope: 'read' },
  schema: taskedSchema({ operationId: 'taskedGetSchedule', summary: "A schedule (Tasked's route)", description: "Tasked's ScheduleResponse.", params: SCHEDULE_ID, ok: { 200: ScheduleResponseSchema }, errors: { 404: ['schedule_not_found'] } }),
} as const;
const put = {
  config: { scope: 'submit' },
  schema: taskedSchema({
    operationId: 'taskedUpdateSchedule',
    summary: "Replace a schedule (Tasked's route)",
    description: "Tasked's `{cron, flow, name?, enabled?}` replaces the schedule's; `enabled` defaults to true, as Tasked's.",
    params: SCHEDULE_ID,
    requestBody: ScheduleRequest,
    ok: { 200: ScheduleResponseSchema },
    errors: { ...INVALID, 404: ['schedule_not_found'] },
  }),
} as const;
const remove = {
  config: { scope: 'submit' },
  schema: taskedSchema({ operationId: 'taskedDeleteSchedule', summary: "Delete a schedule (Tasked's route)", description: 'Runs already started go on.', params: SCHEDULE_ID, ok: { 204: z.undefined() }, errors: { 404: ['schedule_not_found'] } }),
} as const;

/** Tasked's schedule request as the body Taskstream's schedules take (JSON text, which they read). */
function scheduleBody(body: unknown, replacing: boolean): string {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new TaskedError(422, 'invalid_request', 'the body must be a JSON object such as {"cron": "0 * * * *", "flow": {"tasks": [...]}}');
  const { cron, flow, name, enabled } = body as Record<string, unknown>;
  if (cron === undefined || cron === null) throw new TaskedError(422, 'invalid_request', 'missing field `cron`');
  if (flow === undefined || flow === null) throw new TaskedError(422, 'invalid_request', 'missing field `flow`');
  return JSON.stringify({
    cron,
    flow: fromTaskedFlow(flow),
    ...(name !== undefined && name !== null && { name }),
    ...(enabled !== undefined && enabled !== null ? { enabled } : replacing && { enabled: true }),
  });
}

export function registerTaskedScheduleRoutes(app: FastifyInstance, s: TaskedServices): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post('/api/v1/queues/:qid/schedules', create, async (request, reply) => {
    const { qid } = request.params;
    await existingQueue(s.queues, qid);
    const by = requester(request);
    const view = await s.schedules.create(scheduleBody(jsonBody(request.body), false), { queue: qid, overlap: 'allow', ...(by !== undefined && { createdBy: by }) });
    return reply.status(201).header('location', `/tasked/api/v1/schedules/${view.id}`).send(scheduleResponse(view));
  });
  api.get('/api/v1/queues/:qid/schedules', list, async (request) => (await s.schedules.list(request.params.qid)).map(scheduleResponse));
  api.get('/api/v1/schedules/:sid', get, async (request) => scheduleResponse(await tasked(() => s.schedules.get(request.params.sid), { schedule: request.params.sid })));
  api.put('/api/v1/schedules/:sid', put, async (request) => {
    const { sid } = request.params;
    const body = scheduleBody(jsonBody(request.body), true);
    return scheduleResponse(await tasked(() => s.schedules.update(sid, body), { schedule: sid }));
  });
  api.delete('/api/v1/schedules/:sid', remove, async (request, reply) => {
    await tasked(() => s.schedules.delete(request.params.sid), { schedule: request.params.sid });
    return reply.status(204).send();
  });
}
