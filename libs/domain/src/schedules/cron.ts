import { Cron } from 'croner';

/**
 * Cron expressions and time zones, through croner. Pure: every instant is an input (epoch
 * milliseconds), nothing reads the clock, and no croner job is ever started (`paused`, no callback).
 *
 * Fields: 5 (minute hour day-of-month month day-of-week, second 0), 6 (second first) or 7 (a year
 * last), as Tasked reads them; croner's nicknames (`@hourly`, `@daily`, ...) too.
 *
 * Daylight saving time, croner's rule (Vixie cron's), with lists counted as fixed times:
 * - a fixed-time expression (no `*` and no step in its second, minute and hour fields, such as
 *   `30 2 * * *` or `0 30 2,14 * * *`): a local time that does not exist (spring forward) fires
 *   once, at the first instant after the gap; a local time that happens twice (fall back) fires
 *   once, at its first occurrence;
 * - an interval expression (a `*` or a step there, such as `*\/15 * * * *`): it follows real time,
 *   so the times in a gap do not exist and do not fire, and a repeated hour fires on both passes.
 */

export const MAX_CRON_LENGTH = 128;
export const MAX_TIMEZONE_LENGTH = 64;
export const DEFAULT_TIMEZONE = 'UTC';

const FIELDS_RULE = '5 fields (minute hour day-of-month month day-of-week), 6 (a second first) or 7 (a year last), such as "0 3 * * *" or "*/10 * * * * *"';
const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/;

export type CronCheck = { ok: true; cron: string } | { ok: false; message: string };

function job(cron: string, timezone: string): Cron {
  return new Cron(cron, { paused: true, timezone, fixedTimeRule: 'no-wildcard' });
}

/** Why a time zone is not an IANA time zone name, or undefined when it is one. */
export function timezoneProblem(timezone: string): string | undefined {
  const rule = 'must be an IANA time zone name such as "UTC", "Europe/Berlin" or "America/New_York"';
  if (timezone.length > MAX_TIMEZONE_LENGTH || !IANA_NAME.test(timezone)) return `${rule}, not ${JSON.stringify(timezone.slice(0, MAX_TIMEZONE_LENGTH))}`;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return undefined;
  } catch {
    return `${rule}; ${JSON.stringify(timezone)} is not one this server knows`;
  }
}

/** The expression trimmed, with the message that says what is wrong when it is not a valid one that ever fires. */
export function checkCron(raw: string, timezone = DEFAULT_TIMEZONE, from = 0): CronCheck {
  const cron = raw.trim().replace(/\s+/g, ' ');
  if (cron === '') return { ok: false, message: `is empty; write ${FIELDS_RULE}` };
  if (cron.length > MAX_CRON_LENGTH) return { ok: false, message: `is ${cron.length} characters; a cron expression may have at most ${MAX_CRON_LENGTH}` };
  let parsed: Cron;
  try {
    parsed = job(cron, timezone);
  } catch (error) {
    const why = (error as Error).message.replace(/^CronPattern: /, '');
    const count = cron.startsWith('@') ? undefined : cron.split(' ').length;
    if (count !== undefined && (count < 5 || count > 7)) return { ok: false, message: `has ${count} field${count === 1 ? '' : 's'}; write ${FIELDS_RULE}` };
    return { ok: false, message: `is not a valid cron expression (${why}); write ${FIELDS_RULE}` };
  }
  if (parsed.nextRuns(1, new Date(from)).length === 0) return { ok: false, message: `never fires (no date matches ${JSON.stringify(cron)}); check the day-of-month, month and year fields` };
  return { ok: true, cron };
}

/** The next `count` fire times strictly after `after` (epoch ms), in the time zone's view of the expression. */
export function nextTimes(cron: string, timezone: string, after: number, count: number): number[] {
  return job(cron, timezone)
    .nextRuns(count, new Date(after))
    .map((d) => d.getTime());
}

/** The latest `count` fire times at or before `atOrBefore` (epoch ms), latest first. */
export function previousTimes(cron: string, timezone: string, atOrBefore: number, count: number): number[] {
  return job(cron, timezone)
    .previousRuns(count, new Date(atOrBefore + 1))
    .map((d) => d.getTime());
}

/** An instant as ISO 8601 with the time zone's offset there and then: `2026-03-08T03:00:00-04:00`. */
export function localIso(ms: number, timezone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'longOffset' })
      .formatToParts(ms)
      .map((p) => [p.type, p.value]),
  );
  const offset = parts.timeZoneName === 'GMT' ? '+00:00' : parts.timeZoneName!.replace('GMT', '');
  const millis = ms % 1000 === 0 ? '' : `.${String(((ms % 1000) + 1000) % 1000).padStart(3, '0')}`;
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${millis}${offset === 'Z' ? '+00:00' : offset}`;
}
