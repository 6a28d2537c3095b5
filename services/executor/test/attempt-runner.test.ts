import type { TaskSpec, WorkItem } from '@taskstream/domain';
import { describe, expect, it } from 'vitest';
import { AttemptRunner, type AttemptDeps, type AttemptStart } from '../src/attempt-runner.js';
import { DeferredRetry, InfrastructureError, Interrupted } from '../src/errors.js';
import type { TaskEvent } from '../src/recorder.js';
import { StepError, type StepRunner } from '../src/steps/index.js';

const fixed = (ms: number) => ({ type: 'fixed' as const, initial_delay_ms: ms, max_delay_ms: ms, multiplier: 1, jitter: false });

function itemOf(spec: Partial<TaskSpec>): WorkItem {
  return {
    version: 1,
    flow_id: 'f',
    task_id: 't',
    spec: { id: 't', depends_on: [], queue: 'default', priority: 0, executor: 'test', config: {}, ...spec },
    idempotency_key: 'f:t',
    dispatched_at: new Date(0).toISOString(),
  };
}

/** A runner over a recorder that keeps events in memory and a flow that is stopped only when `stopped` says so. */
function runnerFor(spec: Partial<TaskSpec>, step: StepRunner, options: { start?: AttemptStart; stopped?: () => string | undefined; secrets?: Record<string, string> } = {}) {
  const recorded: Array<{ event: TaskEvent; msgID: string }> = [];
  const hidden: string[][] = [];
  const deps: AttemptDeps = {
    config: { executorId: 'test-executor', durableRetryAfterMs: 1_000, env: {} },
    recorder: {
      append: async (_item, event, msgID) => {
        // As JetStream does: a msgID already stored is a duplicate.
        const duplicate = recorded.some((r) => r.msgID === msgID);
        if (!duplicate) recorded.push({ event, msgID });
        return { duplicate };
      },
      hide: (_item, values) => void hidden.push(values),
      budget: () => 100_000,
    },
    stops: { reasonFor: () => options.stopped?.(), storedStop: async () => options.stopped?.(), knownStop: async () => options.stopped?.() },
    readSecret: async (name) => options.secrets?.[name],
  };
  const controller = new AbortController();
  const runner = new AttemptRunner(deps, itemOf(spec), step, controller, options.start ?? { after: 0, unspent: 0, delayMs: 0 });
  return { runner, controller, recorded, hidden, msgIDs: () => recorded.map((r) => r.msgID) };
}

const failing = (retryable: boolean): StepRunner => async () => {
  throw new StepError({ message: 'boom', code: 'EXIT_CODE', retryable });
};

describe('the attempts of one work item', () => {
  it('retries a retryable failure after its backoff, each attempt and retry an event', async () => {
    let calls = 0;
    const step: StepRunner = async (ctx) => (++calls === 1 ? failing(true)(ctx) : { attempt: ctx.attempt });
    const { runner, msgIDs, recorded } = runnerFor({ retries: 2, backoff: fixed(10) }, step);
    expect(await runner.run()).toEqual({ attempt: 2 });
    expect(msgIDs()).toEqual(['1:task.started', '1:task.attempt_failed', '1:task.retry_scheduled', '2:task.started']);
    // The first start carries the dispatch its work item records: when, on which queue, with which retries and backoff.
    const dispatch = { at: new Date(0).toISOString(), queue: 'default', retries: 2, backoff: fixed(10) };
    expect(recorded[0]!.event).toEqual({ type: 'task.started', attempt: 1, data: { executor_id: 'test-executor', dispatch } });
    expect(recorded[3]!.event).toEqual({ type: 'task.started', attempt: 2, data: { executor_id: 'test-executor' } });
    expect(recorded[2]!.event).toEqual({ type: 'task.retry_scheduled', attempt: 1, data: { next_attempt: 2, delay_ms: 10 } });
    expect(runner.attempt).toBe(2);
  });

  it('does not retry a failure that is not retryable, nor past the retries', async () => {
    const once = runnerFor({ retries: 3 }, failing(false));
    await expect(once.runner.run()).rejects.toBeInstanceOf(StepError);
    expect(once.msgIDs()).toEqual(['1:task.started', '1:task.attempt_failed']);
    expect(once.runner.lastError).toMatchObject({ code: 'EXIT_CODE' });

    const spent = runnerFor({ retries: 1, backoff: fixed(1) }, failing(true));
    await expect(spent.runner.run()).rejects.toBeInstanceOf(StepError);
    expect(spent.msgIDs()).toEqual(['1:task.started', '1:task.attempt_failed', '1:task.retry_scheduled', '2:task.started', '2:task.attempt_failed']);
  });

  it('continues the numbers of the log, not counting interrupted attempts', async () => {
    const { runner, msgIDs } = runnerFor({ retries: 1, backoff: fixed(1) }, failing(true), { start: { after: 2, unspent: 1, delayMs: 0 } });
    await expect(runner.run()).rejects.toBeInstanceOf(StepError);
    expect(msgIDs()).toEqual(['3:task.started', '3:task.attempt_failed']);
  });

  it('hands a long backoff to the caller as a deferred retry, recording no retry itself', async () => {
    const { runner, msgIDs } = runnerFor({ retries: 1, backoff: fixed(5_000) }, failing(true));
    const error = await runner.run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeferredRetry);
    expect((error as DeferredRetry).delayMs).toBe(5_000);
    expect(msgIDs()).toEqual(['1:task.started', '1:task.attempt_failed']);
  });

});

describe('how an attempt is stopped', () => {
  it('ends an attempt at its timeout, a retryable TIMEOUT', async () => {
    const hang: StepRunner = (ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    const { runner, recorded } = runnerFor({ timeout_secs: 0.05 }, hang);
    await expect(runner.run()).rejects.toBeInstanceOf(StepError);
    expect(runner.lastError).toMatchObject({ code: 'TIMEOUT', retryable: true, message: 'attempt 1 timed out after 0.05s' });
    expect(recorded.map((r) => r.event.type)).toEqual(['task.started', 'task.attempt_failed']);
    expect(runner.timeoutMs).toBe(50);
  });

  it('records no failed attempt for a stopped flow: the cancel is the outcome', async () => {
    let reason: string | undefined = undefined;
    const hang: StepRunner = (ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    const { runner, controller, msgIDs } = runnerFor({ retries: 3 }, hang, { stopped: () => reason });
    const running = runner.run();
    await new Promise((r) => setTimeout(r, 20));
    reason = 'flow cancelled';
    controller.abort(new Error(reason));
    await expect(running).rejects.toThrow('flow cancelled');
    expect(msgIDs()).toEqual(['1:task.started']);
    expect(runner.cancelReason()).toBe('flow cancelled');
    expect(runner.stepStarted).toBe(true);
  });

  it('runs no step when the log holds a stop this executor has not seen: the start is recorded, the step is not run', async () => {
    let ran = false;
    const step: StepRunner = async () => {
      ran = true;
      return null;
    };
    const { runner, msgIDs } = runnerFor({ retries: 3 }, step);
    // Only the log knows the stop (stored before the start; the live watch has not delivered it).
    const deps = (runner as unknown as { deps: AttemptDeps }).deps;
    deps.stops = { reasonFor: () => undefined, storedStop: async () => 'flow cancelled', knownStop: async () => 'flow cancelled' };
    await expect(runner.run()).rejects.toThrow('flow cancelled');
    expect(ran).toBe(false);
    expect(runner.stepStarted).toBe(false);
    expect(msgIDs()).toEqual(['1:task.started']);
  });

  it('runs no step under an attempt number the log already has: its history was behind, so the item goes back', async () => {
    let ran = false;
    const step: StepRunner = async () => {
      ran = true;
      return null;
    };
    // Told that no attempt happened, while the log already holds attempt 1's start.
    const { runner, recorded } = runnerFor({ retries: 3 }, step);
    recorded.push({ event: { type: 'task.started', attempt: 1, data: { executor_id: 'earlier' } } as TaskEvent, msgID: '1:task.started' });
    await expect(runner.run()).rejects.toBeInstanceOf(InfrastructureError);
    expect(ran).toBe(false);
    expect(recorded).toHaveLength(1);
  });

  it('records an attempt stopped by a shutdown as INTERRUPTED, and it is no cancel', async () => {
    const hang: StepRunner = (ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
    const { runner, controller, recorded } = runnerFor({ retries: 3 }, hang);
    const running = runner.run();
    await new Promise((r) => setTimeout(r, 20));
    controller.abort(new Interrupted('executor stopping'));
    await expect(running).rejects.toBeInstanceOf(StepError);
    expect(recorded.at(-1)!.event).toMatchObject({ type: 'task.attempt_failed', data: { error: { code: 'INTERRUPTED' } } });
    expect(runner.interrupted).toBe(true);
    expect(runner.cancelReason()).toBeUndefined();
  });

});

describe("the task's secrets", () => {
  it('reads the secrets once, hides their values, and gives the step the resolved spec', async () => {
    const seen: unknown[] = [];
    const step: StepRunner = async (ctx) => {
      seen.push(ctx.spec.config);
      if (seen.length === 1) throw new StepError({ message: 'again', code: 'X', retryable: true });
      return null;
    };
    const { runner, hidden } = runnerFor({ retries: 1, backoff: fixed(1), config: { token: '${secrets.TOKEN}' }, run_time_strings: [['config', 'token']] }, step, { secrets: { TOKEN: 'abc123' } });
    await runner.run();
    expect(seen).toEqual([{ token: 'abc123' }, { token: 'abc123' }]);
    expect(hidden).toEqual([['abc123']]);
  });

  it('fails a task whose secret is not set, without retrying', async () => {
    const { runner, msgIDs } = runnerFor({ retries: 3, config: { token: '${secrets.MISSING}' }, run_time_strings: [['config', 'token']] }, async () => null);
    await expect(runner.run()).rejects.toBeInstanceOf(StepError);
    expect(runner.lastError).toMatchObject({ code: 'SECRET_NOT_FOUND', retryable: false });
    expect(msgIDs()).toEqual(['1:task.started', '1:task.attempt_failed']);
  });
});
