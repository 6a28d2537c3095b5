import { CATCHUP_POLICIES, OVERLAP_POLICIES, SCHEDULE_LIMITS } from '@taskstream/domain';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requester } from '../auth.js';
import { described } from '../openapi/registry.js';
import type { Schedules } from '../schedules.js';
import { NO_QUERY, param, queueName, readJson } from './input.js';

/** The body as the document states it; the route reads it itself (see Schedules), answering every problem at once. */
const ScheduleBody = z.object({
  name: z.string().max(SCHEDULE_LIMITS.nameLength).optional().describe('Shown in lists; the runs\' flow name when the flow has none.'),
  cron: z.string().describe('5 fields (minute hour day-of-month month day-of-week), 6 (a second first) or 7 (a year last).'),
  timezone: z.string().optional().describe('An IANA time zone name; default UTC.'),
  flow: z.looseObject({}).optional().describe('The flow each run submits, as POST /api/v1/flows takes it (at most 256 KiB). Either this or `template`.'),
  template: z.union([z.string(), z.object({ name: z.string(), version: z.number().int().optional() })]).optional().describe('A stored template; the version (the latest when none is given) is pinned when the schedule is saved.'),
  params: z.record(z.string(), z.unknown()).optional().describe("The template's params (at most 64 KiB)."),
  queue: z.string().optional().describe('The queue of tasks that name none (Tasked\'s route sets it from the URL).'),
  enabled: z.boolean().optional().describe('Default true; false pauses the schedule.'),
  catchup: z.enum(CATCHUP_POLICIES).optional().describe('Missed runs after an outage: none, latest (default) or all within catchup_window_secs.'),
  catchup_window_secs: z.number().int().min(1).max(SCHEDULE_LIMITS.catchupWindowSecs).optional().describe('How far back missed runs are caught up; default 3600.'),
  overlap: z.enum(OVERLAP_POLICIES).optional().describe('When the previous run still goes on: skip (default), buffer_one or allow.'),
});

const Run = z.object({ scheduled_at: z.string(), flow_id: z.string() });

export const ScheduleViewSchema = z.object({
  id: z.string(),
  name: z.string().optional(),
  cron: z.string(),
  timezone: z.string(),
  queue: z.string().optional(),
  queue_id: z.string().nullable().describe("Tasked's field: the queue of a schedule made by Tasked's route."),
  flow: z.unknown().optional(),
  template: z.object({ name: z.string(), version: z.number().int() }).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  enabled: z.boolean(),
  catchup: z.enum(CATCHUP_POLICIES),
  catchup_window_secs: z.number().int(),
  overlap: z.enum(OVERLAP_POLICIES),
  created_at: z.string(),
  updated_at: z.string(),
  created_by: z.string().optional(),
  last_triggered_at: z.string().nullable().describe('The scheduled time of the latest run started.'),
  last_run: Run.nullable(),
  skipped: z.number().int().describe('Scheduled times skipped so far (missed beyond the catch-up policy, or by overlap).'),
  next_run_at: z.string().nullable().describe('The next fire time (UTC); null when paused.'),
  next_runs: z.array(z.string()).describe('The next 5 fire times, ISO 8601 with the time zone\'s offset.'),
});

const ScheduleList = z.object({ schedules: z.array(ScheduleViewSchema) });

const scheduleId = described(
  // Any text: a malformed id names no schedule (404 SCHEDULE_NOT_FOUND).
  param((raw) => raw),
  'A schedule id, as answered when it was created.',
);
const ONE = z.object({ id: scheduleId });
const QUEUE = z.object({ name: described(queueName, 'A queue name: letters, digits, "-" and "_", at most 64 characters.') });
const read = { scope: 'read' } as const;
const submit = { scope: 'submit' } as const;
const tags = ['schedules'];
const ERRORS_IN = ['INVALID_BODY', 'INVALID_SCHEDULE'] as const;

const create = {
  config: submit,
  schema: {
    operationId: 'createSchedule',
    summary: 'Create a schedule',
    description: 'Starts the flow, or a run of the template, at each time of the cron expression in the time zone, once per scheduled time, by the scheduler service. Every problem is answered at once.',
    tags,
    querystring: NO_QUERY,
    requestBody: ScheduleBody,
    response: { 201: ScheduleViewSchema },
    replyHeaders: { Location: 'the schedule' },
    errors: [...ERRORS_IN, 'TOO_MANY_SCHEDULES'],
  },
} as const;
const list = { config: read, schema: { operationId: 'listSchedules', summary: 'Schedules', description: 'Oldest first.', tags, querystring: NO_QUERY, response: { 200: ScheduleList } } } as const;
const get = { config: read, schema: { operationId: 'getSchedule', summary: 'A schedule, its last run and its next fire times', tags, params: ONE, querystring: NO_QUERY, response: { 200: ScheduleViewSchema }, errors: ['SCHEDULE_NOT_FOUND'] } } as const;
const put = {
  config: submit,
  schema: {
    operationId: 'updateSchedule',
    summary: 'Change, pause or resume a schedule',
    description: '`{"enabled": false}` pauses, `{"enabled": true}` resumes (times while paused are not caught up); any other field replaces its value, checked as on creation.',
    tags,
    params: ONE,
    querystring: NO_QUERY,
    requestBody: ScheduleBody.partial(),
    response: { 200: ScheduleViewSchema },
    errors: ['SCHEDULE_NOT_FOUND', ...ERRORS_IN],
  },
} as const;
const remove = { config: submit, schema: { operationId: 'deleteSchedule', summary: 'Delete a schedule', description: 'Runs already started go on.', tags, params: ONE, querystring: NO_QUERY, response: { 204: z.undefined() }, errors: ['SCHEDULE_NOT_FOUND'] } } as const;
const taskedCreate = {
  config: submit,
  schema: {
    operationId: 'createQueueSchedule',
    summary: "Create a schedule on a queue (Tasked's route)",
    description: "Tasked's `{cron, flow, name?, enabled?}`: the flow's tasks run on this queue unless they name another. As Tasked, runs may overlap (`overlap: allow`) and after an outage the latest missed run starts (`catchup: latest`); the other fields are accepted too.",
    tags,
    params: QUEUE,
    querystring: NO_QUERY,
    requestBody: ScheduleBody,
    response: { 201: ScheduleViewSchema },
    replyHeaders: { Location: 'the schedule' },
    errors: [...ERRORS_IN, 'TOO_MANY_SCHEDULES'],
  },
} as const;
const taskedList = {
  config: read,
  schema: { operationId: 'listQueueSchedules', summary: "A queue's schedules (Tasked's route)", description: 'A bare list, as Tasked answers.', tags, params: QUEUE, querystring: NO_QUERY, response: { 200: z.array(ScheduleViewSchema) } },
} as const;

/** Tasked's optional fields as Tasked's clients send them: `"name": null` and `"enabled": null` mean absent. */
function withoutNulls(body: unknown): string {
  const value = readJson(body);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return JSON.stringify(value);
  const { name, enabled, ...rest } = value as Record<string, unknown>;
  return JSON.stringify({ ...rest, ...(name !== null && name !== undefined && { name }), ...(enabled !== null && enabled !== undefined && { enabled }) });
}

export function registerScheduleRoutes(app: FastifyInstance, schedules: Schedules): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.post('/api/v1/schedules', create, async (request, reply) => {
    const view = await schedules.create(request.body, { ...(requester(request) !== undefined && { createdBy: requester(request) }) });
    return reply.status(201).header('location', `/api/v1/schedules/${view.id}`).send(view);
  });
  api.get('/api/v1/schedules', list, async () => ({ schedules: await schedules.list() }));
  api.get('/api/v1/schedules/:id', get, async (request) => schedules.get(request.params.id));
  api.put('/api/v1/schedules/:id', put, async (request) => schedules.update(request.params.id, request.body));
  api.delete('/api/v1/schedules/:id', remove, async (request, reply) => {
    await schedules.delete(request.params.id);
    return reply.status(204).send();
  });
  api.post('/api/v1/queues/:name/schedules', taskedCreate, async (request, reply) => {
    const by = requester(request);
    const view = await schedules.create(withoutNulls(request.body), { queue: request.params.name, overlap: 'allow', ...(by !== undefined && { createdBy: by }) });
    return reply.status(201).header('location', `/api/v1/schedules/${view.id}`).send(view);
  });
  api.get('/api/v1/queues/:name/schedules', taskedList, async (request) => schedules.list(request.params.name));
}
