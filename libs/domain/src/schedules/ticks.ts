import { z } from 'zod';
import { nextTimes, previousTimes } from './cron.js';
import { SCHEDULE_LIMITS, type CatchupPolicy, type OverlapPolicy, type ScheduleRecord } from './schedule.js';

/**
 * Which scheduled times of a schedule run, as a pure function of the schedule, its progress and
 * the instant the caller passes. Every scheduler instance computes the same plan from the same
 * progress; the progress record is written by compare-and-set, so one plan wins each step.
 */

const Iso = z.iso.datetime({ offset: true });
export const ScheduledRun = z.object({ scheduled_at: Iso, flow_id: z.string() });
export type ScheduledRun = z.infer<typeof ScheduledRun>;

/** What a schedule has done: one record per schedule, changed only by compare-and-set. */
export const ScheduleProgress = z.object({
  /** Every scheduled time at or before this one has been decided: started, buffered or skipped. */
  through: Iso,
  /** The runs the last decision started: whoever reads this makes sure each was submitted. */
  started: z.array(ScheduledRun).max(SCHEDULE_LIMITS.runsPerDecision),
  /**
   * Every run in `started` is known to be in the log: a look made sure of it after the decision.
   * From then on a run the log no longer holds was removed by flow retention (it ended), and is
   * neither submitted again nor waited for.
   */
  submitted: z.literal(true).optional(),
  /** The latest run started: the one `overlap` looks at. */
  last_run: ScheduledRun.optional(),
  /** A scheduled time waiting for the previous run to end (`overlap: buffer_one`). */
  buffered: Iso.optional(),
  /** Scheduled times skipped so far (missed beyond the catch-up policy, or by overlap). */
  skipped: z.number().int().min(0),
  updated_at: Iso,
});
export type ScheduleProgress = z.infer<typeof ScheduleProgress>;

export type TickSchedule = Pick<ScheduleRecord, 'cron' | 'timezone' | 'catchup' | 'catchup_window_secs' | 'overlap' | 'active_since'>;

export interface TickInput {
  schedule: TickSchedule;
  progress: ScheduleProgress | undefined;
  now: number;
  /** How late a scheduled time may be noticed and still count as on time, not missed. */
  graceMs: number;
  /** Whether `progress.last_run` is still going (a run not yet submitted counts as going). */
  previousRunning: boolean;
  /** The id of the run for a scheduled time: the same in every instance. */
  runId: (scheduledAtMs: number) => string;
}

export interface TickPlan {
  /** Runs to start now, in order. */
  start: ScheduledRun[];
  /** Scheduled times dropped by this plan. */
  skipped: number;
  /** The progress to store, when it changed. */
  progress: ScheduleProgress | undefined;
  /** When to look again: the next scheduled time, or now when more is due. */
  wakeAt: number | undefined;
}

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();

/** Scheduled times after which this schedule's times count: its progress, or when it became active. */
export function progressStart(schedule: TickSchedule, progress: ScheduleProgress | undefined): number {
  return Math.max(ms(schedule.active_since), progress ? ms(progress.through) : -Infinity);
}

/**
 * The scheduled times due at `now` and not yet decided, oldest first, as the catch-up policy keeps
 * them: `none` the ones on time (at most `graceMs` late), `latest` those or else the latest missed
 * one, `all` every one within the catch-up window (at most the latest SCHEDULE_LIMITS.catchupRuns).
 * `dropped` counts the ones looked at and left out; `latest` is the latest looked at.
 */
export function dueTimes(schedule: TickSchedule, after: number, now: number, graceMs: number): { due: number[]; dropped: number; latest: number | undefined } {
  const policy: CatchupPolicy = schedule.catchup;
  const windowStart = now - Math.max(schedule.catchup_window_secs * 1000, graceMs);
  const onTimeFrom = now - graceMs;
  const limit = policy === 'all' ? SCHEDULE_LIMITS.catchupRuns : SCHEDULE_LIMITS.runsPerDecision;
  const found = timesBetween(schedule, Math.max(after, windowStart - 1), now, limit);
  const latest = found.at(-1);
  const onTime = found.filter((t) => t >= onTimeFrom);
  const due = policy === 'all' ? found : policy === 'latest' && onTime.length === 0 ? found.slice(-1) : onTime;
  return { due, dropped: found.length - due.length, latest };
}

/**
 * Scheduled times in (from, to], oldest first: read forward in small steps, so a look with one time
 * due costs one step; when more than `limit` are due, the latest `limit`, read backward from `to`.
 */
function timesBetween(schedule: TickSchedule, from: number, to: number, limit: number): number[] {
  const found: number[] = [];
  for (let cursor = from, step = 4; found.length <= limit; step = Math.min(step * 4, 256)) {
    const chunk = nextTimes(schedule.cron, schedule.timezone, cursor, step);
    for (const t of chunk) {
      if (t > to) return found;
      found.push(t);
    }
    if (chunk.length < step) return found;
    cursor = chunk.at(-1)!;
  }
  return previousTimes(schedule.cron, schedule.timezone, to, limit)
    .filter((t) => t > from)
    .reverse();
}

/** Starts, buffers and skips by the overlap policy: the queue is the buffered time, then the due ones. */
function applyOverlap(policy: OverlapPolicy, queue: number[], previousRunning: boolean): { start: number[]; buffered: number | undefined; skipped: number } {
  if (policy === 'allow') return { start: queue.slice(0, SCHEDULE_LIMITS.runsPerDecision), buffered: undefined, skipped: 0 };
  const start = previousRunning ? [] : queue.slice(0, 1);
  const rest = queue.slice(start.length);
  const keep = policy === 'buffer_one' ? rest.slice(0, 1) : [];
  return { start, buffered: keep[0], skipped: rest.length - keep.length };
}

/** The plan for one look at a schedule. */
export function planTicks(input: TickInput): TickPlan {
  const { schedule, progress, now } = input;
  const after = progressStart(schedule, progress);
  const found = dueTimes(schedule, after, now, input.graceMs);
  const { due, latest } = found;
  // A time buffered before a pause (or a new cron) is not the schedule's any more: it is skipped.
  const stale = progress?.buffered !== undefined && ms(progress.buffered) <= ms(schedule.active_since);
  const dropped = found.dropped + (stale ? 1 : 0);
  const buffered = progress?.buffered !== undefined && !stale ? ms(progress.buffered) : undefined;
  const queue = buffered !== undefined ? [buffered, ...due] : due;
  const next = nextTimes(schedule.cron, schedule.timezone, now, 1)[0];
  // Nothing to start, buffer or skip: nothing changes (a buffered time waits on while the previous run goes on).
  if ((queue.length === 0 && dropped === 0) || (buffered !== undefined && due.length === 0 && dropped === 0 && input.previousRunning)) {
    return { start: [], skipped: 0, progress: undefined, wakeAt: next };
  }
  const decided = applyOverlap(schedule.overlap, queue, input.previousRunning);
  const start = decided.start.map((t) => ({ scheduled_at: iso(t), flow_id: input.runId(t) }));
  // With more runs than one decision starts (overlap allow), the next decision starts the rest at once.
  const capped = schedule.overlap === 'allow' && queue.length > start.length;
  const through = capped ? ms(start.at(-1)!.scheduled_at) : Math.max(after, latest ?? after);
  const skipped = dropped + decided.skipped;
  return {
    start,
    skipped,
    progress: {
      through: iso(through),
      started: start,
      ...((start.at(-1) ?? progress?.last_run) && { last_run: start.at(-1) ?? progress!.last_run }),
      ...(decided.buffered !== undefined && { buffered: iso(decided.buffered) }),
      skipped: (progress?.skipped ?? 0) + skipped,
      updated_at: iso(now),
    },
    wakeAt: capped ? now : next,
  };
}

/** Whether a plan needs to know if the previous run still goes on (so the caller reads it only then). */
export function needsPreviousStatus(schedule: TickSchedule, progress: ScheduleProgress | undefined, now: number, graceMs: number): boolean {
  if (schedule.overlap === 'allow' || progress?.last_run === undefined) return false;
  return progress.buffered !== undefined || dueTimes(schedule, progressStart(schedule, progress), now, graceMs).due.length > 0;
}
