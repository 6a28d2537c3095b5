import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attemptHistory, decideAttempt, decideRetry, STOPS, type AttemptHistory, type FlowEvent, type TaskError } from '../src/index.js';
import { ev, FLOW, stamp } from './fixtures.js';

const rules = { crashLimit: 4, durableRetryAfterMs: 5_000 };
const boom: TaskError = { message: 'exit 1', code: 'EXIT_CODE', retryable: true };
const interrupted = (attempt: number) =>
  stamp({ type: 'task.attempt_failed', flow_id: FLOW, task_id: 'a', attempt, data: { error: { message: 'executor stopping', code: 'INTERRUPTED', retryable: true }, duration_ms: 1 } });
const retryScheduled = (attempt: number, delay_ms: number) => stamp({ type: 'task.retry_scheduled', flow_id: FLOW, task_id: 'a', attempt, data: { next_attempt: attempt + 1, delay_ms } });
const fresh: AttemptHistory = { attempts: 0, interrupted: 0, crashed: 0, finished: false };

describe('attempt history from the log', () => {
  it('counts attempts, crashes (started, never reported) and interruptions (numbered, not spent)', () => {
    const history = attemptHistory([ev.taskStarted('a', 1), ev.attemptFailed('a', 1), ev.taskStarted('a', 2), interrupted(2), ev.taskStarted('a', 3), ev.taskStarted('b', 1)], 'a');
    expect(history).toEqual({ attempts: 3, interrupted: 1, crashed: 1, finished: false, lastError: expect.objectContaining({ code: 'EXIT_CODE' }) });
  });

  it('sees a scheduled retry still due, a terminal event, and the strongest stop of the flow', () => {
    const scheduled = retryScheduled(1, 60_000);
    const history = attemptHistory([ev.taskStarted('a', 1), ev.attemptFailed('a', 1), scheduled], 'a');
    expect(history.retryDueAt).toBe(Date.parse(scheduled.time) + 60_000);
    expect(attemptHistory([ev.taskStarted('a', 1), ev.succeeded('a', 1)], 'a').finished).toBe(true);
    const failFast = stamp({ type: 'flow.fail_fast', flow_id: FLOW, data: { task_id: 'x', reason: 'x failed' } });
    expect(attemptHistory([failFast], 'a').stop).toBe(STOPS['flow.fail_fast']);
    expect(attemptHistory([failFast, ev.cancelRequested()], 'a').stop).toBe(STOPS['flow.cancel_requested']);
    expect(attemptHistory([ev.cancelRequested(), failFast], 'a').stop).toBe(STOPS['flow.cancel_requested']);
  });
});

describe('what an executor does with a work item', () => {
  it('given a first delivery, runs attempt 1 at once', () => {
    expect(decideAttempt({ retries: 2 }, undefined, undefined, 0, rules)).toEqual({ kind: 'run', after: 0, unspent: 0, delayMs: 0 });
  });

  it('given a finished task, drops the item, even when its flow was cancelled since', () => {
    expect(decideAttempt({}, { ...fresh, attempts: 1, finished: true, stop: STOPS['flow.cancel_requested'] }, undefined, 0, rules)).toEqual({ kind: 'drop' });
  });

  it('given a stopped flow, cancels the task, before any crash or attempt is judged; fail_fast spares always tasks', () => {
    const crashed = { ...fresh, attempts: 9, crashed: 9 };
    expect(decideAttempt({}, crashed, STOPS['flow.cancel_requested'], 0, rules)).toEqual({ kind: 'cancel', reason: 'flow cancelled before the task started' });
    expect(decideAttempt({}, undefined, STOPS['flow.deadline_passed'], 0, rules)).toMatchObject({ kind: 'cancel' });
    expect(decideAttempt({ trigger_rule: 'always' }, undefined, STOPS['flow.fail_fast'], 0, rules)).toMatchObject({ kind: 'run' });
    expect(decideAttempt({ trigger_rule: 'always' }, undefined, STOPS['flow.cancel_requested'], 0, rules)).toMatchObject({ kind: 'cancel' });
  });

  it('given as many crashed attempts as the limit, fails the task as poison', () => {
    expect(decideAttempt({ retries: 10 }, { ...fresh, attempts: 4, crashed: 4 }, undefined, 0, rules)).toMatchObject({ kind: 'fail', attempt: 4, poison: true, error: { code: 'POISON' } });
    expect(decideAttempt({ retries: 10 }, { ...fresh, attempts: 3, crashed: 3 }, undefined, 0, rules)).toMatchObject({ kind: 'run', after: 3 });
  });

  it('given every attempt spent, fails with the last error, or LOST when the last one never reported', () => {
    expect(decideAttempt({ retries: 1 }, { ...fresh, attempts: 2, lastError: boom }, undefined, 0, rules)).toEqual({ kind: 'fail', attempt: 2, error: boom, poison: false });
    expect(decideAttempt({ retries: 0 }, { ...fresh, attempts: 1, crashed: 1 }, undefined, 0, rules)).toMatchObject({ kind: 'fail', error: { code: 'LOST' } });
    // Interrupted attempts are numbered but not spent.
    expect(decideAttempt({ retries: 0 }, { ...fresh, attempts: 1, interrupted: 1 }, undefined, 0, rules)).toEqual({ kind: 'run', after: 1, unspent: 1, delayMs: 0 });
  });

  it('given a retry not yet due, hands the item back for a long wait and waits in memory for a short one', () => {
    const history = { ...fresh, attempts: 1, lastError: boom, retryDueAt: 60_000 };
    expect(decideAttempt({ retries: 3 }, history, undefined, 10_000, rules)).toEqual({ kind: 'hand_back', delayMs: 50_000 });
    expect(decideAttempt({ retries: 3 }, history, undefined, 58_000, rules)).toEqual({ kind: 'run', after: 1, unspent: 0, delayMs: 2_000 });
    expect(decideAttempt({ retries: 3 }, history, undefined, 70_000, rules)).toEqual({ kind: 'run', after: 1, unspent: 0, delayMs: 0 });
  });

  it('matches a simple oracle over random histories', () => {
    const historyArb = fc.record({
      attempts: fc.nat(12),
      interrupted: fc.nat(4),
      crashed: fc.nat(6),
      finished: fc.boolean(),
      stopped: fc.constantFrom(undefined, 'flow.cancel_requested' as const, 'flow.fail_fast' as const),
      retryDueAt: fc.option(fc.nat(100_000), { nil: undefined }),
    });
    fc.assert(
      fc.property(historyArb, fc.nat(10), fc.boolean(), fc.nat(100_000), (h, retries, always, now) => {
        const interruptedCount = Math.min(h.interrupted, h.attempts);
        const history: AttemptHistory = { attempts: h.attempts, interrupted: interruptedCount, crashed: Math.min(h.crashed, h.attempts), finished: h.finished, ...(h.stopped && { stop: STOPS[h.stopped] }), ...(h.retryDueAt !== undefined && { retryDueAt: h.retryDueAt }) };
        const spec = { retries, ...(always && { trigger_rule: 'always' as const }) };
        const verdict = decideAttempt(spec, history, undefined, now, rules);
        const stopped = h.stopped === 'flow.cancel_requested' || (h.stopped === 'flow.fail_fast' && !always);
        const expected = history.finished
          ? 'drop'
          : stopped
            ? 'cancel'
            : history.crashed >= rules.crashLimit || history.attempts - history.interrupted >= retries + 1
              ? 'fail'
              : (history.retryDueAt ?? 0) - now >= rules.durableRetryAfterMs
                ? 'hand_back'
                : 'run';
        expect(verdict.kind).toBe(expected);
        if (verdict.kind === 'run') expect(verdict.after + 1 - verdict.unspent).toBeLessThanOrEqual(retries + 1);
      }),
    );
  });
});

describe('what follows a failed attempt', () => {
  const spec = { retries: 2, backoff: { type: 'exponential' as const, initial_delay_ms: 1000, max_delay_ms: 60_000, multiplier: 2, jitter: false } };
  it('retries a retryable failure while attempts remain, in memory or durably by the delay', () => {
    expect(decideRetry(spec, boom, 1, false, 0, rules)).toEqual({ kind: 'retry', delayMs: 1000 });
    expect(decideRetry({ ...spec, backoff: { ...spec.backoff, initial_delay_ms: 5000 } }, boom, 1, false, 0, rules)).toEqual({ kind: 'retry_later', delayMs: 5000 });
  });
  it('fails a non-retryable error, a stopped task, and the last attempt', () => {
    expect(decideRetry(spec, { ...boom, retryable: false }, 1, false, 0, rules)).toEqual({ kind: 'fail' });
    expect(decideRetry(spec, boom, 1, true, 0, rules)).toEqual({ kind: 'fail' });
    expect(decideRetry(spec, boom, 3, false, 0, rules)).toEqual({ kind: 'fail' });
  });
});

export type { FlowEvent };
