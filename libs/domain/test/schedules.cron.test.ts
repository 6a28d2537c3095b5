import { describe, expect, it } from 'vitest';
import { checkCron, localIso, nextTimes, previousTimes, ScheduleFields, timezoneProblem } from '../src/index.js';

const at = (iso: string) => Date.parse(iso);
const isos = (times: number[]) => times.map((t) => new Date(t).toISOString());

describe('cron expressions', () => {
  it('reads 5 fields with second 0, 6 with seconds first, 7 with a year, and nicknames', () => {
    expect(isos(nextTimes('0 3 * * *', 'UTC', at('2026-01-01T00:00:00Z'), 2))).toEqual(['2026-01-01T03:00:00.000Z', '2026-01-02T03:00:00.000Z']);
    expect(isos(nextTimes('*/10 * * * * *', 'UTC', at('2026-01-01T00:00:00Z'), 3))).toEqual(['2026-01-01T00:00:10.000Z', '2026-01-01T00:00:20.000Z', '2026-01-01T00:00:30.000Z']);
    expect(isos(nextTimes('0 0 12 1 1 * 2027', 'UTC', at('2026-01-01T00:00:00Z'), 2))).toEqual(['2027-01-01T12:00:00.000Z']);
    expect(isos(nextTimes('@hourly', 'UTC', at('2026-01-01T00:30:00Z'), 1))).toEqual(['2026-01-01T01:00:00.000Z']);
  });

  it('counts times strictly after `after`, and previous times at or before the instant, latest first', () => {
    expect(isos(nextTimes('* * * * * *', 'UTC', at('2026-01-01T00:00:05Z'), 1))).toEqual(['2026-01-01T00:00:06.000Z']);
    expect(isos(previousTimes('* * * * * *', 'UTC', at('2026-01-01T00:00:05Z'), 2))).toEqual(['2026-01-01T00:00:05.000Z', '2026-01-01T00:00:04.000Z']);
  });

  it('reads the expression in the schedule\'s time zone', () => {
    expect(isos(nextTimes('0 9 * * *', 'Europe/Berlin', at('2026-07-01T00:00:00Z'), 1))).toEqual(['2026-07-01T07:00:00.000Z']);
    expect(isos(nextTimes('0 9 * * *', 'Europe/Berlin', at('2026-12-01T00:00:00Z'), 1))).toEqual(['2026-12-01T08:00:00.000Z']);
  });

  it('refuses wrong expressions with a message that says what to write', () => {
    expect(checkCron('  0   3 * * * ')).toEqual({ ok: true, cron: '0 3 * * *' });
    const cases: Array<[string, RegExp]> = [
      ['', /^is empty; write 5 fields/],
      ['* * * *', /^has 4 fields; write 5 fields \(minute hour day-of-month month day-of-week\), 6/],
      ['* * * * * * * *', /^has 8 fields/],
      ['61 * * * *', /^is not a valid cron expression \(.*minute.*\); write 5 fields/],
      ['0 0 30 2 *', /^never fires/],
      ['x'.repeat(200), /^is 200 characters; a cron expression may have at most 128$/],
    ];
    for (const [cron, message] of cases) {
      const checked = checkCron(cron);
      expect(checked.ok, cron).toBe(false);
      expect((checked as { message: string }).message, cron).toMatch(message);
    }
  });

  it('knows IANA time zones and refuses anything else', () => {
    for (const tz of ['UTC', 'Europe/Berlin', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5']) expect(timezoneProblem(tz), tz).toBeUndefined();
    for (const tz of ['Mars/Base', '+02:00', '', 'Europe/../Berlin', 'x'.repeat(80)]) expect(timezoneProblem(tz), tz).toMatch(/^must be an IANA time zone name/);
  });

  it('writes instants with the time zone\'s offset of the moment', () => {
    expect(localIso(at('2026-03-08T07:00:00Z'), 'America/New_York')).toBe('2026-03-08T03:00:00-04:00');
    expect(localIso(at('2026-03-08T06:59:59Z'), 'America/New_York')).toBe('2026-03-08T01:59:59-05:00');
    expect(localIso(at('2026-01-01T00:00:00.250Z'), 'UTC')).toBe('2026-01-01T00:00:00.250+00:00');
    expect(localIso(at('2026-06-01T12:00:00Z'), 'Asia/Kolkata')).toBe('2026-06-01T17:30:00+05:30');
  });
});

/*
 * Daylight saving time. America/New_York springs forward on 2026-03-08 (02:00 EST → 03:00 EDT, so
 * 02:00–02:59 does not exist) and falls back on 2026-11-01 (02:00 EDT → 01:00 EST, so 01:00–01:59
 * happens twice). Europe/Berlin springs forward on 2026-03-29 at 02:00 and falls back on 2026-10-25
 * at 03:00.
 */
describe('daylight saving time (docs/schedules.md)', () => {
  it('a fixed time in a spring-forward gap fires once, at the first instant after the gap, then at its own time again', () => {
    expect(isos(nextTimes('30 2 * * *', 'America/New_York', at('2026-03-07T12:00:00Z'), 3))).toEqual([
      '2026-03-08T07:00:00.000Z', // 03:00 EDT, the first instant after the gap
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
      '2026-03-10T06:30:00.000Z',
    ]);
    expect(isos(nextTimes('0 30 2 * * *', 'Europe/Berlin', at('2026-03-28T12:00:00Z'), 2))).toEqual(['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
  });

  it('a fixed time repeated by fall-back fires once, at its first occurrence', () => {
    expect(isos(nextTimes('30 1 * * *', 'America/New_York', at('2026-10-31T12:00:00Z'), 2))).toEqual([
      '2026-11-01T05:30:00.000Z', // 01:30 EDT; not again at 01:30 EST (06:30Z)
      '2026-11-02T06:30:00.000Z',
    ]);
    expect(isos(nextTimes('0 30 2 * * *', 'Europe/Berlin', at('2026-10-24T12:00:00Z'), 2))).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });

  it('a list of fixed times counts as fixed times', () => {
    expect(isos(nextTimes('30 2,4 * * *', 'America/New_York', at('2026-03-07T12:00:00Z'), 3))).toEqual(['2026-03-08T07:00:00.000Z', '2026-03-08T08:30:00.000Z', '2026-03-09T06:30:00.000Z']);
  });

  it('an interval follows real time: nothing in the gap, both passes of a repeated hour', () => {
    expect(isos(nextTimes('*/30 * * * *', 'America/New_York', at('2026-03-08T06:15:00Z'), 3))).toEqual([
      '2026-03-08T06:30:00.000Z', // 01:30 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT: 02:00 and 02:30 do not exist
      '2026-03-08T07:30:00.000Z',
    ]);
    expect(isos(nextTimes('0 */30 1 * * *', 'America/New_York', at('2026-11-01T04:45:00Z'), 4))).toEqual([
      '2026-11-01T05:00:00.000Z', // 01:00 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T06:00:00.000Z', // 01:00 EST
      '2026-11-01T06:30:00.000Z', // 01:30 EST
    ]);
  });

  it('previous times agree with next times across a transition', () => {
    const forward = nextTimes('30 2 * * *', 'America/New_York', at('2026-03-05T12:00:00Z'), 6);
    const backward = previousTimes('30 2 * * *', 'America/New_York', forward.at(-1)!, 6).reverse();
    expect(backward).toEqual(forward);
  });
});

describe('schedule fields', () => {
  it('states each problem with its path', () => {
    const result = ScheduleFields.safeParse({ cron: '* *', timezone: 'Nowhere', catchup: 'some', overlap: 'queue', catchup_window_secs: 10 ** 9, name: 'a\u0000b', extra: 1 });
    expect(result.success).toBe(false);
    const problems = Object.fromEntries(result.error!.issues.map((i) => [i.path.join('.') || (i as { keys?: string[] }).keys?.join(','), i.message]));
    expect(problems).toMatchObject({
      cron: expect.stringMatching(/^has 2 fields/),
      timezone: expect.stringMatching(/^must be an IANA time zone name/),
      catchup: expect.stringMatching(/^must be "none"/),
      overlap: expect.stringMatching(/^must be "skip"/),
      catchup_window_secs: 'must be at most 604800 seconds (7 days)',
      name: 'must not hold control characters',
      extra: expect.any(String),
    });
  });

  it('takes a template by name or by name and version', () => {
    expect(ScheduleFields.parse({ cron: '0 3 * * *', template: 'nightly' }).template).toEqual({ name: 'nightly' });
    expect(ScheduleFields.parse({ cron: '0 3 * * *', template: { name: 'nightly', version: 2 } }).template).toEqual({ name: 'nightly', version: 2 });
  });
});
