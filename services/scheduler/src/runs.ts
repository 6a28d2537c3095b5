import { eventSubject, instantiateTemplate, scheduleFlow, validateFlow, type FlowDefinition, type FlowOrigin, type ScheduledRun, type ScheduleRecord } from '@taskstream/domain';
import { derivedFlowId, submitFlow, TemplateStore, type Logger } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { runSubmitted, runUnbuildable } from './metrics.js';

/** The id of a schedule's run for a scheduled time: the same in every scheduler instance. */
export function scheduledRunId(scheduleId: string, scheduledAtMs: number): string {
  return derivedFlowId(`schedule:${scheduleId}:${new Date(scheduledAtMs).toISOString()}`, scheduledAtMs);
}

const ENDS = ['flow.succeeded', 'flow.failed', 'flow.cancelled'] as const;

/** A schedule's flow for one run: its inline flow (queue and name filled in), or its template with its params. */
export type Built = { ok: true; definition: FlowDefinition; origin: FlowOrigin } | { ok: false; reason: string };

/**
 * Submits a schedule's runs and reads whether one has ended, from the log (the truth, not a view
 * that trails it). A run's submission is conditional on its flow having none yet, so every
 * instance may submit the same run: one append is stored.
 */
export class ScheduledRuns {
  private templates: Promise<TemplateStore> | undefined;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly log: Logger,
  ) {}

  /** Makes sure each run was submitted (a run decided by an instance that died before submitting it is submitted here). */
  async ensure(schedule: ScheduleRecord, runs: readonly ScheduledRun[]): Promise<void> {
    for (const run of runs) {
      if (await this.submitted(run.flow_id)) continue;
      const built = await this.build(schedule, run.scheduled_at);
      if (!built.ok) {
        runUnbuildable();
        this.log.error({ schedule_id: schedule.id, scheduled_at: run.scheduled_at, reason: built.reason }, 'a scheduled run could not be made; it is skipped');
        continue;
      }
      const { created } = await submitFlow(this.ctx.js, this.ctx.topo, { definition: built.definition, flowId: run.flow_id, origin: built.origin });
      if (created) runSubmitted(built.definition.queue, Date.now() - Date.parse(run.scheduled_at));
    }
  }

  /**
   * Whether the run still goes on: in the log and not ended. Asked only once its decision's runs
   * are known to be submitted (see ScheduleLoop), so a run the log no longer holds was removed by
   * flow retention: it ended.
   */
  async running(flowId: string): Promise<boolean> {
    for (const type of ENDS) if (await this.last(flowId, type)) return false;
    return this.submitted(flowId);
  }

  private async submitted(flowId: string): Promise<boolean> {
    return this.last(flowId, 'flow.submitted');
  }

  private async last(flowId: string, type: 'flow.submitted' | (typeof ENDS)[number]): Promise<boolean> {
    const message = await this.ctx.jsm.streams.getMessage(this.ctx.topo.eventsStream, { last_by_subj: eventSubject(this.ctx.topo.layout, flowId, type) });
    return message !== null;
  }

  /** The flow to submit for one scheduled time. */
  async build(schedule: ScheduleRecord, scheduledAt: string): Promise<Built> {
    const origin: FlowOrigin = { schedule: { id: schedule.id, scheduled_at: scheduledAt } };
    if (schedule.template) {
      this.templates ??= TemplateStore.open(this.ctx.js, this.ctx.topo);
      const template = await (await this.templates).get(schedule.template.name, schedule.template.version);
      if (!template) return { ok: false, reason: `template "${schedule.template.name}" version ${schedule.template.version} no longer exists` };
      const made = instantiateTemplate(template, schedule.params ?? {});
      if (!made.ok) return { ok: false, reason: `template "${template.name}" version ${template.version} refuses the schedule's params: ${made.problems.map((p) => `${p.path} ${p.message}`).join('; ')}` };
      return { ok: true, definition: made.definition, origin: { ...origin, template: { name: template.name, version: template.version } } };
    }
    const checked = validateFlow(scheduleFlow(schedule));
    if (!checked.ok) return { ok: false, reason: `its flow is not valid: ${checked.problems.map((p) => `${p.path} ${p.message}`).join('; ')}` };
    return { ok: true, definition: checked.flow, origin };
  }
}
