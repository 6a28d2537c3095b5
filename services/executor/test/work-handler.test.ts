import { STOPS, type AttemptHistory, type EventBody, type Stop, type TaskSpec, type WorkItem } from '@taskstream/domain';
import { HandBack, type DeadLetters, type EventLog, type JsMsg } from '@taskstream/nats';
import { createLogger } from '@taskstream/runtime';
import { describe, expect, it } from 'vitest';
import { executorConfig } from '../src/config.js';
import { Recorder } from '../src/recorder.js';
import { StepError, type StepRunner } from '../src/steps/index.js';
import { FlowStops } from '../src/stops.js';
import { WorkHandler } from '../src/work-handler.js';

const hang: StepRunner = (ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));

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

/** A handler over in-memory parts: the log's stops and the task's history are what the test says. */
function handlerFor(step: StepRunner | undefined, log: { stops?: () => Stop[]; history?: AttemptHistory; kept?: boolean } = {}) {
  const recorded: Array<{ event: EventBody<'id' | 'version' | 'time'>; msgID: string }> = [];
  let stopReads = 0;
  let keptReads = 0;
  const stops = new FlowStops(async () => {
    stopReads++;
    return log.stops?.() ?? [];
  });
  const eventLog = {
    // As JetStream does: a msgID already stored is dropped as a duplicate.
    appendNew: async (event: EventBody<'id' | 'version' | 'time'>, msgID: string) => {
      const duplicate = recorded.some((r) => r.msgID === msgID);
      if (!duplicate) recorded.push({ event, msgID });
      return { duplicate };
    },
  } as unknown as EventLog;
  const handler = new WorkHandler({
    config: executorConfig({ queue: 'default', durableRetryAfterMs: 1_000, env: {} }),
    log: createLogger('executor', 'silent'),
    recorder: new Recorder(eventLog, () => 100_000),
    stops,
    steps: step === undefined ? {} : { test: step },
    deadLetters: {} as DeadLetters,
    readHistory: async () => log.history!,
    flowKept: async () => {
      keptReads++;
      return log.kept ?? true;
    },
    readSecret: async () => undefined,
  });
  const handle = (item: WorkItem, deliveryCount = 1) => handler.handle(item, { info: { deliveryCount }, working: () => {} } as unknown as JsMsg);
  return { handler, handle, recorded, stops, stopReads: () => stopReads, keptReads: () => keptReads, outcome: () => recorded.find((r) => r.msgID === 'f:t:outcome')?.event };
}

describe('a work item from decision to outcome', () => {
  it('records the success of its attempt as the outcome', async () => {
    const { handle, outcome } = handlerFor(async () => ({ ok: true }));
    await handle(itemOf({}));
    expect(outcome()).toMatchObject({ type: 'task.succeeded', attempt: 1, data: { output: { ok: true } }, flow_id: 'f', task_id: 't' });
  });

  it('records a cancel instead of a success when the flow was stopped meanwhile', async () => {
    // The watch delivers the stop while the step runs, and the step ends before it could react.
    const { handle, outcome, stops } = handlerFor(async () => {
      stops.stop('f', STOPS['flow.cancel_requested']);
      return 1;
    });
    await handle(itemOf({}));
    expect(outcome()).toEqual({ type: 'task.cancelled', data: { reason: 'flow cancelled while the task was running' }, flow_id: 'f', task_id: 't' });
  });

  it("asks the log for a flow's stops when it takes the flow's first task, then after each start it stores", async () => {
    const { handle, stopReads } = handlerFor(async () => 1);
    await handle(itemOf({}));
    expect(stopReads()).toBe(2);
    await handle({ ...itemOf({ id: 'u' }), task_id: 'u', idempotency_key: 'f:u' });
    expect(stopReads()).toBe(3);
  });

  it('runs nothing of a flow whose stop is stored by the time the start is', async () => {
    let stored: Stop[] = [];
    const ran: string[] = [];
    const { handle, recorded } = handlerFor(
      async () => {
        ran.push('step');
        return 1;
      },
      { stops: () => stored },
    );
    await handle(itemOf({}));
    stored = [STOPS['flow.cancel_requested']];
    await handle({ ...itemOf({ id: 'u' }), task_id: 'u', idempotency_key: 'f:u' });
    expect(ran).toEqual(['step']);
    expect(recorded.find((r) => r.msgID === 'f:u:outcome')?.event).toMatchObject({ type: 'task.cancelled', task_id: 'u' });
  });

  it('runs nothing of a flow stopped before the task started', async () => {
    const { handle, recorded } = handlerFor(async () => 1, { stops: () => [STOPS['flow.deadline_passed']] });
    await handle(itemOf({}));
    expect(recorded.map((r) => r.event)).toEqual([{ type: 'task.cancelled', data: { reason: "the flow's timeout passed before the task started" }, flow_id: 'f', task_id: 't' }]);
  });

  it('drops, running and writing nothing, a work item older than the shortest retention whose flow the log no longer holds', async () => {
    const ran: string[] = [];
    const removed = handlerFor(async () => void ran.push('step'), { kept: false });
    await removed.handle(itemOf({}));
    expect([ran, removed.recorded, removed.stopReads()]).toEqual([[], [], 0]);
    // An old item of a flow still kept runs; a young one runs without the question being asked.
    const old = handlerFor(async () => void ran.push('old'));
    await old.handle(itemOf({}));
    const young = handlerFor(async () => void ran.push('young'), { kept: false });
    await young.handle({ ...itemOf({}), dispatched_at: new Date(Date.now() - 3_599_000).toISOString() });
    expect([ran, old.keptReads(), young.keptReads()]).toEqual([['old', 'young'], 1, 0]);
  });

  it('fails a task whose step this executor does not have', async () => {
    const { handle, outcome } = handlerFor(undefined);
    await handle(itemOf({}));
    expect(outcome()).toMatchObject({ type: 'task.failed', attempt: 1, data: { error: { code: 'UNKNOWN_EXECUTOR', retryable: false } } });
  });

  it('records a last attempt that timed out as timed_out, any other as failed', async () => {
    const timedOut = handlerFor(hang);
    await timedOut.handle(itemOf({ timeout_secs: 0.05 }));
    expect(timedOut.outcome()).toMatchObject({ type: 'task.timed_out', attempt: 1, data: { timeout_ms: 50, error: { code: 'TIMEOUT' } } });

    const failed = handlerFor(async () => {
      throw new StepError({ message: 'no', code: 'EXIT_CODE', retryable: false });
    });
    await failed.handle(itemOf({}));
    expect(failed.outcome()).toMatchObject({ type: 'task.failed', attempt: 1, data: { error: { code: 'EXIT_CODE' } } });
  });

});

describe('a work item handed back, or redelivered', () => {
  it('hands a long retry back to JetStream after recording it', async () => {
    const { handle, recorded } = handlerFor(async () => {
      throw new StepError({ message: 'again', code: 'EXIT_CODE', retryable: true });
    });
    const backoff = { type: 'fixed' as const, initial_delay_ms: 2_000, max_delay_ms: 2_000, multiplier: 1, jitter: false };
    const handedBack = await handle(itemOf({ retries: 1, backoff })).catch((e: unknown) => e);
    expect(handedBack).toBeInstanceOf(HandBack);
    expect((handedBack as HandBack).delayMs).toBe(2_000);
    expect(recorded.map((r) => r.msgID)).toEqual(['f:t:1:task.started', 'f:t:1:task.attempt_failed', 'f:t:1:task.retry_scheduled']);
  });

  it('hands back what it has not started once the executor is stopping', async () => {
    const { handler, handle, recorded } = handlerFor(async () => 1);
    handler.stopping = true;
    await expect(handle(itemOf({}))).rejects.toThrow(new HandBack('executor stopping'));
    expect(recorded).toEqual([]);
  });

  it('on a redelivery, follows the log: a finished task is left alone, a retry not due is handed back', async () => {
    const finished = handlerFor(async () => 1, { history: { attempts: 1, interrupted: 0, crashed: 0, finished: true } });
    await finished.handle(itemOf({}), 2);
    expect(finished.recorded).toEqual([]);

    const notDue = handlerFor(async () => 1, { history: { attempts: 1, interrupted: 0, crashed: 0, finished: false, retryDueAt: Date.now() + 60_000 } });
    const handedBack = await notDue.handle(itemOf({ retries: 1 }), 2).catch((e: unknown) => e);
    expect(handedBack).toBeInstanceOf(HandBack);
    expect(notDue.recorded).toEqual([]);
  });

  it('on a redelivery, continues the attempt numbers of the log', async () => {
    const { handle, outcome } = handlerFor(async () => 1, { history: { attempts: 2, interrupted: 1, crashed: 0, finished: false } });
    await handle(itemOf({ retries: 1 }), 3);
    expect(outcome()).toMatchObject({ type: 'task.succeeded', attempt: 3 });
  });
});
