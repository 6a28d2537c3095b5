import {
  formatPath,
  instantiateTemplate,
  jsonBytes,
  localIso,
  nextTimes,
  SCHEDULE_DEFAULTS,
  SCHEDULE_LIMITS,
  ScheduleChanges,
  ScheduleFields,
  scheduleFlow,
  TEMPLATE_NAME_RULE,
  TemplateName,
  validateFlow,
  type ScheduleProgress,
  type ScheduleRecord,
} from '@taskstream/domain';
import { newId, ScheduleStore, TemplateStore, TooManySchedulesError, type JetStreamClient, type Topology } from '@taskstream/nats';
import type { z } from 'zod';
import { ApiError, apiError, ERRORS, type Problem } from './errors.js';
import { readJson, shapeProblems, taskIdProblems } from './routes/input.js';

/** Fire times a schedule's view shows. */
const NEXT_RUNS = 5;

/** A schedule as the API shows it: its record, Tasked's fields, what it did last and its next fire times. */
export interface ScheduleView extends Omit<ScheduleRecord, 'active_since'> {
  queue_id: string | null;
  last_triggered_at: string | null;
  last_run: { scheduled_at: string; flow_id: string } | null;
  skipped: number;
  next_run_at: string | null;
  next_runs: string[];
}

/** How a schedule is created: Tasked's route takes its queue from the URL and runs overlapping as Tasked does. */
export interface CreateOptions {
  queue?: string;
  overlap?: ScheduleRecord['overlap'];
  createdBy?: string;
}

export function invalidSchedule(problems: Problem[]): ApiError {
  return new ApiError('INVALID_SCHEDULE', ERRORS.INVALID_SCHEDULE.status, ERRORS.INVALID_SCHEDULE.message(problems.length), { problems });
}

/**
 * Schedules, stored through their bucket's owner; their runs are started by the scheduler service.
 * Every schedule is checked as its runs will be: an inline flow as a submission is, a template's
 * params against its schema (the version pinned when the schedule is saved).
 */
export class Schedules {
  constructor(
    private readonly store: ScheduleStore,
    private readonly templates: TemplateStore,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<Schedules> {
    return new Schedules(await ScheduleStore.open(js, topo), await TemplateStore.open(js, topo));
  }

  async create(body: unknown, options: CreateOptions = {}, now = Date.now()): Promise<ScheduleView> {
    const fields = parseFields(body, ScheduleFields);
    const at = new Date(now).toISOString();
    const record: ScheduleRecord = await this.checked({
      id: newId(now),
      ...SCHEDULE_DEFAULTS,
      ...(options.overlap && { overlap: options.overlap }),
      ...withoutTemplate(fields),
      ...(options.queue !== undefined && { queue: options.queue }),
      active_since: at,
      created_at: at,
      updated_at: at,
      ...(options.createdBy !== undefined && { created_by: options.createdBy }),
    }, fields.template);
    try {
      await this.store.create(record);
    } catch (error) {
      if (error instanceof TooManySchedulesError) throw apiError('TOO_MANY_SCHEDULES', error.limit);
      throw error;
    }
    return this.view(record, undefined, now);
  }

  async get(id: string, now = Date.now()): Promise<ScheduleView> {
    const stored = await this.store.get(id);
    if (!stored) throw apiError('SCHEDULE_NOT_FOUND', id);
    return this.view(stored.schedule, (await this.store.progress(id)).progress, now);
  }

  async list(queue?: string, now = Date.now()): Promise<ScheduleView[]> {
    const records = (await this.store.list()).filter((s) => queue === undefined || s.queue === queue);
    return Promise.all(records.map(async (s) => this.view(s, (await this.store.progress(s.id)).progress, now)));
  }

  /** Changes the fields given (see `merged`), checked as a new schedule is. */
  async update(id: string, body: unknown, now = Date.now()): Promise<ScheduleView> {
    const changes = parseFields(body, ScheduleChanges);
    const at = new Date(now).toISOString();
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await this.store.get(id);
      if (!stored) throw apiError('SCHEDULE_NOT_FOUND', id);
      const current = stored.schedule;
      const next = merged(current, changes, at);
      // Pausing, resuming or a new cron needs no new check of the flow: a template gone since still lets a schedule be paused.
      const reshaped = changes.flow !== undefined || changes.template !== undefined || changes.params !== undefined || changes.queue !== undefined;
      const checked = reshaped ? await this.checked(next, changes.template ?? (changes.flow === undefined ? current.template : undefined)) : next;
      // Stored only over the record it was checked against; a racing change makes it check again.
      const updated = await this.store.update(id, (latest) => {
        if (latest.updated_at !== current.updated_at) throw new Changed();
        return checked;
      }).catch((error: unknown) => (error instanceof Changed ? undefined : Promise.reject(error)));
      if (updated) return this.view(updated, (await this.store.progress(id)).progress, now);
    }
    throw apiError('UNAVAILABLE', `schedule "${id}" is being changed by many requests at once`);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.store.delete(id))) throw apiError('SCHEDULE_NOT_FOUND', id);
  }

  /** The record with its flow or template checked (a template's version pinned), or the 400 listing every problem. */
  private async checked(record: ScheduleRecord, template: { name: string; version?: number } | undefined): Promise<ScheduleRecord> {
    const problems: Problem[] = [];
    if (template !== undefined && record.flow !== undefined) problems.push({ path: 'template', message: 'give either "flow" (the flow itself) or "template" (a stored template), not both' });
    else if (template === undefined && record.flow === undefined) problems.push({ path: 'flow', message: 'is required: give "flow" (a flow, as POST /api/v1/flows takes it) or "template" (a stored template\'s name)' });
    else if (template !== undefined) return this.withTemplate(record, template);
    else problems.push(...flowProblems(record));
    if (record.params !== undefined && template === undefined && problems.length === 0) {
      problems.push({ path: 'params', message: 'are the values of a template\'s params; an inline flow takes its values in "flow.params"' });
    }
    if (problems.length > 0) throw invalidSchedule(problems);
    return record;
  }

  private async withTemplate(record: ScheduleRecord, ref: { name: string; version?: number }): Promise<ScheduleRecord> {
    if (!TemplateName.safeParse(ref.name).success) throw invalidSchedule([{ path: 'template', message: `${JSON.stringify(ref.name.slice(0, 70))} is not a template name: a template name is ${TEMPLATE_NAME_RULE}` }]);
    const template = await this.templates.resolve(ref.name, ref.version);
    if (!template) {
      const which = ref.version === undefined ? `no template named "${ref.name}"` : `template "${ref.name}" has no version ${ref.version}`;
      throw invalidSchedule([{ path: 'template', message: `${which}; list them with GET /api/v1/templates` }]);
    }
    const made = instantiateTemplate(template, record.params ?? {});
    if (!made.ok) throw invalidSchedule(made.problems);
    return { ...record, template: { name: template.name, version: template.version } };
  }

  private view(record: ScheduleRecord, progress: ScheduleProgress | undefined, now: number): ScheduleView {
    const { active_since: _since, ...fields } = record;
    const next = record.enabled ? nextTimes(record.cron, record.timezone, Math.max(now, Date.parse(record.active_since)), NEXT_RUNS) : [];
    return {
      ...fields,
      queue_id: record.queue ?? null,
      last_triggered_at: progress?.last_run?.scheduled_at ?? null,
      last_run: progress?.last_run ?? null,
      skipped: progress?.skipped ?? 0,
      next_run_at: next[0] !== undefined ? new Date(next[0]).toISOString() : null,
      next_runs: next.map((t) => localIso(t, record.timezone)),
    };
  }
}

/** The record changed between its check and its write. */
class Changed extends Error {}

/**
 * A schedule with `changes` laid over it. A new flow drops the template and its params, a new
 * template the flow. Resuming (enabled false → true) or a new cron or time zone starts the schedule
 * afresh: times before the change are not caught up.
 */
function merged(current: ScheduleRecord, changes: z.output<typeof ScheduleChanges>, at: string): ScheduleRecord {
  const next: ScheduleRecord = { ...current, ...withoutTemplate(changes), updated_at: at };
  if (changes.flow !== undefined) {
    delete next.template;
    if (changes.params === undefined) delete next.params;
  }
  if (changes.template !== undefined && changes.flow === undefined) delete next.flow;
  if ((changes.enabled === true && !current.enabled) || next.cron !== current.cron || next.timezone !== current.timezone) next.active_since = at;
  return next;
}

function withoutTemplate<T extends { template?: unknown }>(fields: T): Omit<T, 'template'> {
  const { template: _template, ...rest } = fields;
  return rest;
}

/** A body's fields, or the 400 listing every problem with its path. */
function parseFields<S extends z.ZodType>(body: unknown, schema: S): z.output<S> {
  const value = readJson(body);
  const shape = shapeProblems(value, 2);
  if (shape.length > 0) throw invalidSchedule(shape);
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw invalidSchedule(
    result.error.issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: `unknown field ${JSON.stringify(key.slice(0, 64))}; remove it or check its spelling` }))
        : [{ path: formatPath(issue.path), message: issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message }],
    ),
  );
}

/** An inline flow's problems, with their paths under `flow`, as a submission of it would have them. */
function flowProblems(record: ScheduleRecord): Problem[] {
  const bytes = jsonBytes(record.flow);
  if (bytes > SCHEDULE_LIMITS.flowBytes) {
    return [{ path: 'flow', message: `is ${bytes} bytes as JSON, over the ${SCHEDULE_LIMITS.flowBytes / 1024} KiB a schedule's flow may have; store it as a template and schedule the template` }];
  }
  const flow = record.flow as Record<string, unknown> | null;
  if (flow !== null && typeof flow === 'object' && !Array.isArray(flow) && flow.queue_config !== undefined) {
    return [{ path: 'flow.queue_config', message: "a schedule's runs do not change queue policies; set the queue's policy once with PUT /api/v1/queues/{name}" }];
  }
  const checked = validateFlow(scheduleFlow(record));
  const problems = checked.ok ? taskIdProblems(checked.flow) : checked.problems;
  return problems.map((p) => ({ path: p.path === '$' ? 'flow' : `flow.${p.path}`, message: p.message }));
}
