import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { needsPreviousStatus, planTicks, SCHEDULE_LIMITS, type ScheduleProgress, type TickSchedule } from '../src/index.js';

const T0 = Date.parse('2026-05-01T00:00:00Z');
const sec = (n: number) => T0 + n * 1000;
const iso = (t: number) => new Date(t).toISOString();
const runId = (t: number) => `run-${(t - T0) / 1000}`;

/** Every second, active from T0. */
const everySecond = (extra: Partial<TickSchedule> = {}): TickSchedule => ({ cron: '* * * * * *', timezone: 'UTC', catchup: 'all', catchup_window_secs: 3600, overlap: 'allow', active_since: iso(T0), ...extra });

const plan = (schedule: TickSchedule, progress: ScheduleProgress | undefined, now: number, previousRunning = false, graceMs = 2000) => planTicks({ schedule, progress, now, graceMs, previousRunning, runId });
const started = (p: ReturnType<typeof plan>) => p.start.map((r) => (Date.parse(r.scheduled_at) - T0) / 1000);

describe('planTicks: on time', () => {
  it('starts the time just due, once, with its derived id, and sleeps until the next', () => {
    const first = plan(everySecond(), undefined, sec(1) + 5);
    expect(first.start).toEqual([{ scheduled_at: iso(sec(1)), flow_id: 'run-1' }]);
    expect(first.progress).toMatchObject({ through: iso(sec(1)), last_run: { flow_id: 'run-1' }, skipped: 0 });
    expect(first.wakeAt).toBe(sec(2));
    // Looking again at the same instant, or a little later, starts nothing new.
    const again = plan(everySecond(), first.progress, sec(1) + 900);
    expect(again).toEqual({ start: [], skipped: 0, progress: undefined, wakeAt: sec(2) });
  });

  it('never starts a time at or before active_since', () => {
    const since = everySecond({ active_since: iso(sec(10)) });
    expect(started(plan(since, undefined, sec(10)))).toEqual([]);
    expect(started(plan(since, undefined, sec(11)))).toEqual([11]);
  });
});

describe('planTicks: catch-up after an outage', () => {
  // Last decided second 3; nothing looked between; now is second 20 (17 times missed, 2 s grace).
  const progress: ScheduleProgress = { through: iso(sec(3)), started: [], last_run: { scheduled_at: iso(sec(3)), flow_id: 'run-3' }, skipped: 0, updated_at: iso(sec(3)) };

  it('none: only the times still on time', () => {
    const p = plan(everySecond({ catchup: 'none' }), progress, sec(20));
    expect(started(p)).toEqual([18, 19, 20]);
    expect(p.skipped).toBe(14);
    expect(p.progress!.through).toBe(iso(sec(20)));
  });

  it('none: missed times only, none on time: all are skipped and recorded as decided', () => {
    const p = plan(everySecond({ catchup: 'none' }), progress, sec(20) + 500, false, 0);
    expect(p.start).toEqual([]);
    expect(p.skipped).toBe(17);
    expect(p.progress).toMatchObject({ through: iso(sec(20)), skipped: 17, last_run: { flow_id: 'run-3' } });
    expect(plan(everySecond({ catchup: 'none' }), p.progress, sec(20) + 700, false, 0).progress).toBeUndefined();
  });

  it('latest: the times on time, or else the latest missed one', () => {
    expect(started(plan(everySecond({ catchup: 'latest' }), progress, sec(20)))).toEqual([18, 19, 20]);
    const hourly = { ...everySecond({ catchup: 'latest', catchup_window_secs: 4 * 3600 }), cron: '0 * * * *' };
    const p = plan(hourly, { ...progress, through: iso(T0) }, T0 + 3.5 * 3600_000);
    expect(p.start.map((r) => r.scheduled_at)).toEqual([iso(T0 + 3 * 3600_000)]);
    expect(p.skipped).toBe(2);
  });

  it('all: every missed time within the window, oldest first', () => {
    const p = plan(everySecond({ catchup: 'all' }), progress, sec(20));
    expect(started(p)).toEqual(Array.from({ length: 17 }, (_, i) => i + 4));
    const windowed = plan(everySecond({ catchup: 'all', catchup_window_secs: 5 }), progress, sec(20));
    expect(started(windowed)).toEqual([15, 16, 17, 18, 19, 20]);
  });

  it('all: one decision starts at most SCHEDULE_LIMITS.runsPerDecision runs, and the next one goes on at once', () => {
    const p = plan(everySecond({ catchup: 'all' }), progress, sec(3 + 250));
    expect(p.start).toHaveLength(SCHEDULE_LIMITS.runsPerDecision);
    expect(p.wakeAt).toBe(sec(253));
    const next = plan(everySecond({ catchup: 'all' }), p.progress, sec(253));
    expect(started(next)[0]).toBe(3 + SCHEDULE_LIMITS.runsPerDecision + 1);
  });
});

describe('planTicks: overlap', () => {
  const after = (overlap: TickSchedule['overlap'], buffered?: number): ScheduleProgress => ({
    through: iso(sec(5)),
    started: [],
    last_run: { scheduled_at: iso(sec(5)), flow_id: 'run-5' },
    ...(buffered !== undefined && { buffered: iso(sec(buffered)) }),
    skipped: 0,
    updated_at: iso(sec(5)),
  });

  it('skip: nothing while the previous run goes on; the first due time once it ended', () => {
    const busy = plan(everySecond({ overlap: 'skip' }), after('skip'), sec(6), true);
    expect(busy.start).toEqual([]);
    expect(busy.progress).toMatchObject({ through: iso(sec(6)), skipped: 1, last_run: { flow_id: 'run-5' } });
    expect(started(plan(everySecond({ overlap: 'skip' }), after('skip'), sec(8), false))).toEqual([6]);
  });

  it('buffer_one: keeps one time waiting, skips the others, starts it when the previous run ends', () => {
    const busy = plan(everySecond({ overlap: 'buffer_one' }), after('buffer_one'), sec(8), true);
    expect(busy.start).toEqual([]);
    expect(busy.progress).toMatchObject({ buffered: iso(sec(6)), through: iso(sec(8)), skipped: 2 });
    // Still going, nothing new due: nothing changes.
    expect(plan(everySecond({ overlap: 'buffer_one' }), busy.progress, sec(8) + 500, true).progress).toBeUndefined();
    const ended = plan(everySecond({ overlap: 'buffer_one' }), busy.progress, sec(9), false);
    expect(started(ended)).toEqual([6]);
    expect(ended.progress).toMatchObject({ buffered: iso(sec(9)), through: iso(sec(9)), last_run: { flow_id: 'run-6' } });
  });

  it('buffer_one: a time buffered before a pause is skipped once the schedule is resumed', () => {
    const resumed = everySecond({ overlap: 'buffer_one', active_since: iso(sec(20)) });
    const p = plan(resumed, after('buffer_one', 6), sec(20) + 500, false);
    expect(p.start).toEqual([]);
    expect(p.progress).toMatchObject({ skipped: 1, through: iso(sec(20)) });
    expect(p.progress!.buffered).toBeUndefined();
    expect(started(plan(resumed, p.progress, sec(21), false))).toEqual([21]);
  });

  it('allow: every due time starts whatever the previous run does', () => {
    expect(started(plan(everySecond({ overlap: 'allow' }), after('allow'), sec(7), true))).toEqual([6, 7]);
  });

  it('needs the previous run\'s status only when something could start and overlap is not allow', () => {
    const s = everySecond({ overlap: 'skip' });
    expect(needsPreviousStatus(s, after('skip'), sec(5) + 500, 2000)).toBe(false);
    expect(needsPreviousStatus(s, after('skip'), sec(6), 2000)).toBe(true);
    expect(needsPreviousStatus(everySecond({ overlap: 'allow' }), after('allow'), sec(6), 2000)).toBe(false);
    expect(needsPreviousStatus(s, undefined, sec(6), 2000)).toBe(false);
  });
});

describe('planTicks: properties', () => {
  const policies = fc.record({
    catchup: fc.constantFrom('none' as const, 'latest' as const, 'all' as const),
    overlap: fc.constantFrom('skip' as const, 'buffer_one' as const, 'allow' as const),
    catchup_window_secs: fc.integer({ min: 1, max: 120 }),
  });
  /** Looks at the schedule at these instants (seconds after T0, increasing), the previous run busy or not. */
  const looks = fc.array(fc.record({ at: fc.integer({ min: 0, max: 200 }), busy: fc.boolean(), graceMs: fc.integer({ min: 0, max: 5000 }) }), { maxLength: 12 }).map((l) => l.sort((a, b) => a.at - b.at));

  it('whatever instances look when: no scheduled time starts twice, none after the instant, none before active_since', () => {
    fc.assert(
      fc.property(policies, looks, (policy, sequence) => {
        const schedule = everySecond(policy);
        let progress: ScheduleProgress | undefined;
        const seen = new Set<string>();
        for (const look of sequence) {
          const now = sec(look.at) + 250;
          const p = planTicks({ schedule, progress, now, graceMs: look.graceMs, previousRunning: look.busy, runId });
          for (const run of p.start) {
            expect(seen.has(run.scheduled_at)).toBe(false);
            seen.add(run.scheduled_at);
            expect(Date.parse(run.scheduled_at)).toBeLessThanOrEqual(now);
            expect(Date.parse(run.scheduled_at)).toBeGreaterThan(T0);
          }
          if (p.progress) {
            expect(Date.parse(p.progress.through)).toBeGreaterThanOrEqual(progress ? Date.parse(progress.through) : T0);
            progress = p.progress;
          }
        }
      }),
      { numRuns: 40 },
    );
  }, 60_000);

  it('with instances looking every second, all + allow starts every scheduled time exactly once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.array(fc.integer({ min: 0, max: 999 }), { minLength: 1, maxLength: 3 }), (seconds, offsets) => {
        const schedule = everySecond();
        let progress: ScheduleProgress | undefined;
        const starts: string[] = [];
        for (let s = 0; s <= seconds; s++) {
          for (const offset of offsets) {
            const p = planTicks({ schedule, progress, now: sec(s) + offset, graceMs: 2000, previousRunning: false, runId });
            starts.push(...p.start.map((r) => r.scheduled_at));
            progress = p.progress ?? progress;
          }
        }
        expect(starts).toEqual(Array.from({ length: seconds }, (_, i) => iso(sec(i + 1))));
      }),
      { numRuns: 25 },
    );
  }, 60_000);
});
