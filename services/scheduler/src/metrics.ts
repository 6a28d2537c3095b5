import { counter, gauge, histogram, SECONDS_BUCKETS } from '@taskstream/runtime';

/** The scheduler's metrics (see docs/operations.md#metrics). No label holds a schedule or flow id. */

const submitted = counter({ name: 'taskstream_scheduler_runs_submitted_total', help: 'Scheduled runs this instance submitted (the instance whose conditional append was stored), by queue.', labelNames: ['queue'] });
const skipped = counter({ name: 'taskstream_scheduler_runs_skipped_total', help: 'Scheduled times skipped by a decision this instance stored: missed beyond the catch-up policy, or by the overlap policy.' });
const unbuildable = counter({ name: 'taskstream_scheduler_runs_unbuildable_total', help: 'Scheduled runs that could not be made (a template gone, a flow or params no longer valid); each is logged.' });
const conflicts = counter({ name: 'taskstream_scheduler_decision_conflicts_total', help: "Decisions not stored because another instance stored one first (expected with several instances: theirs stands)." });
const lateness = histogram({ name: 'taskstream_scheduler_run_lateness_seconds', help: 'From a run\'s scheduled time to its submission (caught-up runs included).', buckets: SECONDS_BUCKETS });
const schedules = gauge({ name: 'taskstream_scheduler_schedules', help: 'Schedules this instance follows, by whether they are enabled.', labelNames: ['enabled'] });

export function runSubmitted(queue: string, lateMs: number): void {
  submitted.inc({ queue });
  lateness.observe(Math.max(0, lateMs) / 1000);
}

export function runsSkipped(count: number): void {
  if (count > 0) skipped.inc(count);
}

export function runUnbuildable(): void {
  unbuildable.inc();
}

export function decisionConflict(): void {
  conflicts.inc();
}

export function schedulesFollowed(enabled: number, disabled: number): void {
  schedules.set({ enabled: 'true' }, enabled);
  schedules.set({ enabled: 'false' }, disabled);
}
