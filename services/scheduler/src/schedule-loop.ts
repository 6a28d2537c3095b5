import { needsPreviousStatus, planTicks, type ScheduleRecord } from '@taskstream/domain';
import type { Logger, ScheduleStore } from '@taskstream/nats';
import { decisionConflict, runsSkipped } from './metrics.js';
import { scheduledRunId, type ScheduledRuns } from './runs.js';

/** The longest sleep: a look at least this often whatever the clock does. */
const MAX_SLEEP_MS = 60_000;
/** How often a buffered run looks whether the previous run has ended. */
const BUFFER_POLL_MS = 1_000;
/** After a failed look (NATS unavailable), the next one. */
const RETRY_MS = 1_000;

export interface LoopDeps {
  store: ScheduleStore;
  runs: ScheduledRuns;
  graceMs: number;
  log: Logger;
  now?: () => number;
}

/**
 * One schedule, followed by one scheduler instance: sleeps until its next scheduled time, then
 * looks: makes sure the runs the last stored decision started were submitted (and records it), plans the next
 * decision (planTicks) and stores it by compare-and-set on the schedule's progress, then submits
 * the runs it started. Every instance does the same; the compare-and-set lets one decision through
 * for each step, and the conditional append one submission for each run.
 */
export class ScheduleLoop {
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private stopped = false;
  /** Changed while looking: the next sleep is skipped. */
  private changed = false;
  private readonly done: Promise<void>;
  private readonly now: () => number;

  constructor(
    private schedule: ScheduleRecord,
    private readonly deps: LoopDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.done = this.run();
  }

  /** The schedule changed: look again now. */
  update(schedule: ScheduleRecord): void {
    this.schedule = schedule;
    this.changed = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let wakeAt: number | undefined;
      try {
        wakeAt = await this.look(this.schedule);
      } catch (error) {
        this.deps.log.warn({ err: error, schedule_id: this.schedule.id }, 'could not look at a schedule; trying again');
        wakeAt = this.now() + RETRY_MS;
      }
      await this.sleepUntil(wakeAt);
    }
  }

  /** One look; returns when to look again (undefined: only when the schedule changes). */
  async look(schedule: ScheduleRecord): Promise<number | undefined> {
    const { store, runs, graceMs } = this.deps;
    const { progress, revision } = await store.progress(schedule.id);
    if (progress !== undefined && progress.started.length > 0 && progress.submitted !== true) {
      // The last decision's runs are submitted, and that is recorded, before anything else: once
      // it is, a run the log no longer holds was removed by flow retention, not lost, and is
      // neither submitted again nor waited for. Then look again, at the recorded progress.
      await runs.ensure(schedule, progress.started);
      if (!(await store.writeProgress(schedule.id, { ...progress, submitted: true }, revision))) decisionConflict();
      return this.now();
    }
    if (!schedule.enabled || this.stopped) return undefined;
    const now = this.now();
    const previousRunning = needsPreviousStatus(schedule, progress, now, graceMs) ? await runs.running(progress!.last_run!.flow_id) : false;
    const plan = planTicks({ schedule, progress, now, graceMs, previousRunning, runId: (t) => scheduledRunId(schedule.id, t) });
    if (!plan.progress) return progress?.buffered !== undefined ? Math.min(plan.wakeAt ?? Infinity, now + BUFFER_POLL_MS) : plan.wakeAt;
    if (!(await store.writeProgress(schedule.id, plan.progress, revision))) {
      decisionConflict();
      return this.now();
    }
    runsSkipped(plan.skipped);
    await runs.ensure(schedule, plan.start);
    // The next look records that they are submitted.
    if (plan.start.length > 0) return this.now();
    return plan.progress.buffered !== undefined ? Math.min(plan.wakeAt ?? Infinity, now + BUFFER_POLL_MS) : plan.wakeAt;
  }

  private sleepUntil(wakeAt: number | undefined): Promise<void> {
    if (this.stopped || this.changed) {
      this.changed = false;
      return Promise.resolve();
    }
    const delay = Math.min(MAX_SLEEP_MS, Math.max(0, (wakeAt ?? Infinity) - this.now()));
    return new Promise((resolve) => {
      this.wake = () => {
        clearTimeout(this.timer);
        this.wake = undefined;
        resolve();
      };
      this.timer = setTimeout(() => this.wake?.(), delay);
    });
  }
}
