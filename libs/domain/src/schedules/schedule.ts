import { z } from 'zod';
import { QueueName } from '../flow/definition.js';
import { checkCron, DEFAULT_TIMEZONE, timezoneProblem } from './cron.js';

/** Every bound of a schedule, as docs/schedules.md states them. */
export const SCHEDULE_LIMITS = {
  /** Schedules in one installation. */
  schedules: 1000,
  nameLength: 128,
  /** A schedule's inline flow as JSON (it is stored in the schedule's record). */
  flowBytes: 256 * 1024,
  /** A schedule's template parameters as JSON. */
  paramsBytes: 64 * 1024,
  /** How far back missed runs are caught up, at most (7 days). */
  catchupWindowSecs: 7 * 24 * 3600,
  /** Missed runs that `catchup: all` starts after an outage, at most: the latest ones. */
  catchupRuns: 1000,
  /** Runs one decision starts; more are started by the next decision, at once. */
  runsPerDecision: 100,
} as const;

export const DEFAULT_CATCHUP_WINDOW_SECS = 3600;

export const CATCHUP_POLICIES = ['none', 'latest', 'all'] as const;
export const OVERLAP_POLICIES = ['skip', 'buffer_one', 'allow'] as const;
export type CatchupPolicy = (typeof CATCHUP_POLICIES)[number];
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

const text = (what: string, max: number) => z.string({ error: `must be ${what} (a string)` }).max(max, `must be at most ${max} characters`);

export const ScheduleName = text('a name', SCHEDULE_LIMITS.nameLength)
  .min(1, 'must not be empty')
  .regex(/^[^\p{Cc}]*$/u, 'must not hold control characters');

export const CronExpression = z.string({ error: 'must be a cron expression (a string) such as "0 3 * * *"' }).transform((raw, ctx) => {
  const checked = checkCron(raw);
  if (checked.ok) return checked.cron;
  ctx.issues.push({ code: 'custom', message: checked.message, input: raw });
  return z.NEVER;
});

export const TimeZone = z.string({ error: 'must be an IANA time zone name (a string) such as "Europe/Berlin"' }).superRefine((raw, ctx) => {
  const problem = timezoneProblem(raw);
  if (problem) ctx.issues.push({ code: 'custom', message: problem, input: raw });
});

/** A template by name, at a version or (absent) its latest when the schedule is saved. */
export const TemplateRef = z.union(
  [
    text('a template name', 128).min(1, 'must not be empty').transform((name) => ({ name })),
    z.strictObject({ name: text('a template name', 128).min(1, 'must not be empty'), version: z.number({ error: 'must be a version number' }).int('must be a whole number').min(1, 'must be 1 or more').optional() }),
  ],
  { error: 'must be a template name, or {"name": "...", "version": N}' },
);
export type TemplateRef = { name: string; version?: number };

export const CatchupWindowSecs = z
  .number({ error: 'must be a number of seconds' })
  .int('must be a whole number of seconds')
  .min(1, 'must be at least 1 second')
  .max(SCHEDULE_LIMITS.catchupWindowSecs, `must be at most ${SCHEDULE_LIMITS.catchupWindowSecs} seconds (7 days)`);

const catchup = z.enum(CATCHUP_POLICIES, { error: 'must be "none" (missed runs are dropped), "latest" (the latest missed run starts) or "all" (every missed run within catchup_window_secs starts)' });
const overlap = z.enum(OVERLAP_POLICIES, { error: 'must be "skip" (no run while the previous one goes on), "buffer_one" (one run waits for the previous one) or "allow" (runs may overlap)' });
const enabled = z.boolean({ error: 'must be true or false' });

/**
 * The fields a schedule is created or changed with (`POST /api/v1/schedules`; `PUT` takes any of
 * them). The flow itself is validated apart, as a submitted flow is, so its problems carry its paths.
 */
export const ScheduleFields = z.strictObject(
  {
    name: ScheduleName.optional(),
    cron: CronExpression,
    timezone: TimeZone.optional(),
    flow: z.unknown().optional(),
    template: TemplateRef.optional(),
    params: z.record(z.string(), z.unknown(), { error: 'must be an object of parameter values' }).optional(),
    queue: QueueName.optional(),
    enabled: enabled.optional(),
    catchup: catchup.optional(),
    catchup_window_secs: CatchupWindowSecs.optional(),
    overlap: overlap.optional(),
  },
  { error: 'must be a JSON object such as {"name": "nightly", "cron": "0 3 * * *", "flow": {"tasks": [...]}}' },
);
export type ScheduleFields = z.output<typeof ScheduleFields>;
export const ScheduleChanges = ScheduleFields.partial();
export type ScheduleChanges = z.output<typeof ScheduleChanges>;

/** A schedule as stored: one record per schedule, written by the gateway, read by every scheduler. */
export const ScheduleRecord = z.object({
  id: z.string().min(1),
  name: z.string().optional(),
  cron: z.string(),
  timezone: z.string(),
  /** Tasked's route: the queue of the flow's tasks that name none. */
  queue: z.string().optional(),
  /** The flow as given (validated when saved, and again as each run is submitted). */
  flow: z.unknown().optional(),
  /** The template and the version pinned when the schedule was saved. */
  template: z.object({ name: z.string(), version: z.number().int().min(1) }).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  enabled: z.boolean(),
  catchup: z.enum(CATCHUP_POLICIES),
  catchup_window_secs: z.number().int().min(1),
  overlap: z.enum(OVERLAP_POLICIES),
  /** Scheduled times after this one are its own: set at creation, on resume and when the cron or time zone changes. */
  active_since: z.iso.datetime({ offset: true }),
  created_at: z.iso.datetime({ offset: true }),
  updated_at: z.iso.datetime({ offset: true }),
  created_by: z.string().optional(),
});
export type ScheduleRecord = z.infer<typeof ScheduleRecord>;

/** Defaults of a new schedule (docs/schedules.md). Tasked's route overrides overlap to match Tasked. */
export const SCHEDULE_DEFAULTS = { timezone: DEFAULT_TIMEZONE, enabled: true, catchup: 'latest', catchup_window_secs: DEFAULT_CATCHUP_WINDOW_SECS, overlap: 'skip' } as const;

/**
 * The flow a schedule's run submits, before validation: its inline flow with the schedule's queue
 * (Tasked's route) and name where the flow has none, never over the flow's own.
 */
export function scheduleFlow(schedule: Pick<ScheduleRecord, 'flow' | 'queue' | 'name'>): unknown {
  const flow = schedule.flow;
  if (flow === null || typeof flow !== 'object' || Array.isArray(flow)) return flow;
  const fields = flow as Record<string, unknown>;
  return {
    ...(schedule.queue !== undefined && fields.queue === undefined && { queue: schedule.queue }),
    ...(schedule.name !== undefined && fields.name === undefined && { name: schedule.name }),
    ...fields,
  };
}
