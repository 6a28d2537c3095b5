import type { FlowEvent, TaskError } from '../events/catalogue.js';
import { TERMINAL_TASK_EVENTS } from '../events/catalogue.js';
import type { Backoff, TaskSpec } from '../flow/definition.js';
import { DEFAULT_BACKOFF } from '../flow/definition.js';
import { retryDelayMs } from '../flow/backoff.js';

/*
 * The rules of a work item's attempts, pure: what the log says about a task's attempts, and what
 * an executor holding its work item does next. The executor only runs steps and records what these
 * decide; they are tested here on their own.
 */

/** The flow-level events that stop a flow's tasks, and whether `always` tasks are spared (fail_fast spares them). */
export const STOPS = {
  'flow.cancel_requested': { why: 'flow cancelled', sparesAlways: false },
  'flow.deadline_passed': { why: "the flow's timeout passed", sparesAlways: false },
  'flow.fail_fast': { why: 'fail_fast: another task of the flow failed', sparesAlways: true },
} as const;
export type StopEvent = keyof typeof STOPS;
export type Stop = (typeof STOPS)[StopEvent];
export const STOP_EVENTS = Object.keys(STOPS) as StopEvent[];

/** Why `spec` is stopped by `stop`, if it is. */
export function stopReason(stop: Stop | undefined, spec: Pick<TaskSpec, 'trigger_rule'>): string | undefined {
  if (stop === undefined || (stop.sparesAlways && spec.trigger_rule === 'always')) return undefined;
  return stop.why;
}

/** The stronger of two stops: one that stops everything beats one that spares `always` tasks; else the first. */
export function strongerStop(first: Stop | undefined, second: Stop | undefined): Stop | undefined {
  if (first === undefined) return second;
  if (second !== undefined && first.sparesAlways && !second.sparesAlways) return second;
  return first;
}

/** What a task's log says about its attempts. */
export interface AttemptHistory {
  /** Highest attempt number recorded. */
  attempts: number;
  /** Attempts stopped by an executor shutting down: numbered, but not spent. */
  interrupted: number;
  /** Attempts that started and never reported back: their executor stopped. */
  crashed: number;
  /** The task has a terminal event. */
  finished: boolean;
  /** The strongest stop of the flow in the log, if any. */
  stop?: Stop;
  /** The last real failure (not an interruption). */
  lastError?: TaskError;
  /** When the log holds a scheduled retry not yet started: when it is due (epoch ms). */
  retryDueAt?: number;
}

/** Folds a flow's events into the attempt history of one of its tasks. */
export function attemptHistory(events: Iterable<FlowEvent>, taskId: string): AttemptHistory {
  let attempts = 0;
  let interrupted = 0;
  let finished = false;
  let stop: Stop | undefined;
  let lastError: TaskError | undefined;
  let retry: { attempt: number; dueAt: number } | undefined;
  const started = new Set<number>();
  const reported = new Set<number>();
  for (const event of events) {
    if (Object.hasOwn(STOPS, event.type)) stop = strongerStop(stop, STOPS[event.type as StopEvent]);
    if (!('task_id' in event) || event.task_id !== taskId) continue;
    if ('attempt' in event) attempts = Math.max(attempts, event.attempt);
    if (event.type === 'task.started') started.add(event.attempt);
    if (event.type === 'task.attempt_failed') {
      if (event.data.error.code === 'INTERRUPTED') interrupted++;
      else lastError = event.data.error;
      reported.add(event.attempt);
    }
    if (event.type === 'task.retry_scheduled') retry = { attempt: event.attempt, dueAt: Date.parse(event.time) + event.data.delay_ms };
    if (TERMINAL_TASK_EVENTS.has(event.type)) finished = true;
  }
  const crashed = [...started].filter((a) => !reported.has(a)).length;
  const retryPending = retry !== undefined && retry.attempt === attempts && reported.has(attempts);
  return {
    attempts,
    interrupted,
    crashed,
    finished,
    ...(stop !== undefined && { stop }),
    ...(lastError !== undefined && { lastError }),
    ...(retryPending && { retryDueAt: retry!.dueAt }),
  };
}

export interface AttemptRules {
  /** Attempts of one item that may crash their executor before it is set aside as poison. */
  crashLimit: number;
  /** Retry waits at least this long go back to JetStream instead of waiting in memory. */
  durableRetryAfterMs: number;
}

/** What an executor does with a work item it holds. */
export type AttemptVerdict =
  /** The task already ended: acknowledge, record nothing. */
  | { kind: 'drop' }
  /** Its flow is stopped: record the cancel. */
  | { kind: 'cancel'; reason: string }
  /** Record the task failed with `error` at `attempt` (and set the item aside if `poison`). */
  | { kind: 'fail'; attempt: number; error: TaskError; poison: boolean }
  /** A retry is scheduled and not due for a while: hand the item back for `delayMs`. */
  | { kind: 'hand_back'; delayMs: number }
  /** Run attempts from `after + 1`; `unspent` of the attempts so far do not count; wait `delayMs` first. */
  | { kind: 'run'; after: number; unspent: number; delayMs: number };

/**
 * The fate of a work item, from its task's history (undefined on a first delivery), the stop known
 * for its flow, and the time. Order matters: a finished task is never touched again, a stopped
 * flow's task is cancelled rather than judged, and only then are crashes and attempts counted.
 */
export function decideAttempt(spec: Pick<TaskSpec, 'retries' | 'trigger_rule'>, history: AttemptHistory | undefined, stop: Stop | undefined, nowMs: number, rules: AttemptRules): AttemptVerdict {
  if (history?.finished) return { kind: 'drop' };
  const reason = stopReason(strongerStop(history?.stop, stop), spec);
  if (reason !== undefined) return { kind: 'cancel', reason: `${reason} before the task started` };
  if (history === undefined) return { kind: 'run', after: 0, unspent: 0, delayMs: 0 };
  if (history.crashed >= rules.crashLimit) {
    const message = `the work item was started ${history.crashed} times and its executor stopped each time; set aside as poison`;
    return { kind: 'fail', attempt: Math.max(1, history.attempts), error: { message, code: 'POISON', retryable: false }, poison: true };
  }
  const total = (spec.retries ?? 0) + 1;
  if (history.attempts - history.interrupted >= total) {
    const error = history.lastError ?? { message: 'the executor running the last attempt stopped before reporting it', code: 'LOST', retryable: false };
    return { kind: 'fail', attempt: history.attempts, error, poison: false };
  }
  const wait = history.retryDueAt !== undefined ? history.retryDueAt - nowMs : 0;
  if (wait >= rules.durableRetryAfterMs) return { kind: 'hand_back', delayMs: wait };
  return { kind: 'run', after: history.attempts, unspent: history.interrupted, delayMs: Math.max(0, wait) };
}

/** What follows a failed attempt. */
export type RetryVerdict =
  | { kind: 'fail' }
  /** Wait `delayMs` in this process, then run the next attempt. */
  | { kind: 'retry'; delayMs: number }
  /** Record the scheduled retry and hand the item back to JetStream for `delayMs`. */
  | { kind: 'retry_later'; delayMs: number };

/**
 * After attempt `attempt` failed with `error`: retry or not, and where to wait. `spent` attempts
 * count (interrupted ones do not); `random` in [0, 1) comes from the caller for jitter.
 */
export function decideRetry(
  spec: Pick<TaskSpec, 'retries' | 'backoff'>,
  error: TaskError,
  spent: number,
  stopped: boolean,
  random: number,
  rules: Pick<AttemptRules, 'durableRetryAfterMs'>,
): RetryVerdict {
  const total = (spec.retries ?? 0) + 1;
  if (!error.retryable || stopped || spent >= total) return { kind: 'fail' };
  const backoff: Backoff = spec.backoff ?? DEFAULT_BACKOFF;
  const delayMs = retryDelayMs(backoff, spent, random);
  return delayMs >= rules.durableRetryAfterMs ? { kind: 'retry_later', delayMs } : { kind: 'retry', delayMs };
}
