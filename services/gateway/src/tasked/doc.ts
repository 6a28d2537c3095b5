import { z } from 'zod';
import { described, named } from '../openapi/registry.js';
import { param } from '../routes/input.js';
import { TASKED_FLOW_STATES, TASKED_TASK_STATES } from '@taskstream/domain';

/**
 * How the OpenAPI document describes the Tasked-compatible routes (tag `tasked`): Tasked's shapes,
 * and Tasked's error body for every status these routes answer themselves. Requests node refuses
 * before any route (a timeout, headers too large) keep Taskstream's error shape.
 */

export const TaskedErrorBody = named(
  'TaskedError',
  z.object({
    error: z.string().describe("Tasked's snake_case code, e.g. flow_not_found."),
    message: z.string(),
    problems: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe('Every problem found (Tasked reports the first only).'),
  }),
  "Tasked's error body: `{error, message}`.",
);

export const FlowResponseSchema = named(
  'TaskedFlow',
  z.object({
    id: z.string(),
    queue_id: z.string(),
    state: z.enum(TASKED_FLOW_STATES),
    task_count: z.number().int(),
    tasks_succeeded: z.number().int(),
    tasks_failed: z.number().int(),
    fail_fast: z.boolean(),
    created_at: z.string(),
    updated_at: z.string(),
  }),
  "Tasked's FlowResponse.",
);

export const TaskResponseSchema = named(
  'TaskedTask',
  z.object({
    id: z.string(),
    flow_id: z.string(),
    queue_id: z.string(),
    state: z.enum(TASKED_TASK_STATES),
    executor_type: z.string(),
    input: z.unknown(),
    output: z.unknown(),
    error: z.string().nullable(),
    retries_remaining: z.number().int(),
    timeout_secs: z.number(),
    started_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    created_at: z.string(),
  }),
  "Tasked's TaskResponse.",
);

export const FlowDetailSchema = named('TaskedFlowDetail', FlowResponseSchema.extend({ tasks: z.array(TaskResponseSchema) }), 'A flow with its tasks, as Tasked answers it.');

export const QueueResponseSchema = named(
  'TaskedQueue',
  z.object({ id: z.string(), config: z.looseObject({}), created_at: z.string(), updated_at: z.string() }),
  "Tasked's QueueResponse: the queue's policy as Tasked's QueueConfig; both times are when the policy was last written.",
);

export const ScheduleResponseSchema = named(
  'TaskedSchedule',
  z.object({
    id: z.string(),
    queue_id: z.string(),
    name: z.string().nullable(),
    cron: z.string(),
    enabled: z.boolean(),
    last_triggered_at: z.string().nullable(),
    next_run_at: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  }),
  "Tasked's ScheduleResponse.",
);

export const ExportSchema = named(
  'TaskedExport',
  z.looseObject({ version: z.literal(1), flow: z.looseObject({}), tasks: z.array(z.looseObject({})), artifacts: z.array(z.looseObject({})).optional(), checksum: z.string(), exported_at: z.string() }),
  "Tasked's export document; `checksum` is the SHA-256 (hex) of the document's JSON without it.",
);

/** Any text: Tasked takes any id, and one that names nothing is a 404 in Tasked's shape. */
export const anyId = (what: string) => described(param((raw) => raw), what);

export const FLOW_ID = z.object({ id: anyId('A flow id, as answered when the flow was submitted.') });
export const QUEUE_ID = z.object({ qid: anyId('A queue id.') });

/** Statuses every Tasked route may answer in Tasked's shape, with the codes it uses for each. */
const ALWAYS: Record<number, string[]> = {
  401: ['unauthorized'],
  403: ['forbidden'],
  429: ['rate_limited'],
  500: ['internal_error'],
  503: ['service_unavailable'],
};

function errorResponse(codes: readonly string[]) {
  return { description: codes.map((code) => `- \`${code}\``).join('\n'), content: { 'application/json': { schema: TaskedErrorBody } } };
}

/**
 * A route's schema: Tasked's error answers by status (its own codes, and those every route may
 * answer), so the document states Tasked's shape for them rather than Taskstream's.
 */
export function taskedSchema<
  T extends {
    operationId: string;
    summary: string;
    description: string;
    params?: z.ZodObject;
    querystring?: z.ZodObject;
    requestBody?: z.ZodType;
    ok: Record<number, unknown>;
    errors?: Record<number, string[]>;
  },
>(parts: T): Omit<T, 'ok' | 'errors'> & { tags: string[]; response: Record<number, unknown> } {
  const { ok, errors: own = {}, ...rest } = parts;
  const errors: Record<number, string[]> = { 400: ['invalid_parameter'], ...structuredClone(ALWAYS) };
  if (parts.requestBody) {
    errors[400] = [...(errors[400] ?? []), 'invalid_json'];
    errors[413] = ['payload_too_large'];
    errors[415] = ['unsupported_media_type'];
  }
  for (const [status, codes] of Object.entries(own)) errors[Number(status)] = [...(errors[Number(status)] ?? []), ...codes];
  const response: Record<number, unknown> = { ...ok };
  for (const [status, codes] of Object.entries(errors)) response[Number(status)] = errorResponse([...new Set(codes)]);
  return { ...rest, tags: ['tasked'], response };
}
