import type { EventBody, WorkItem } from '@taskstream/domain';
import type { EventLog } from '@taskstream/nats';
import { describe, expect, it } from 'vitest';
import { InfrastructureError } from '../src/errors.js';
import { ENVELOPE_BYTES } from '../src/output.js';
import { eventBudget, fitEvent, Recorder } from '../src/recorder.js';
import { REDACTED } from '../src/run-time.js';

const item: WorkItem = {
  version: 1,
  flow_id: 'flow-1',
  task_id: 't',
  spec: { id: 't', depends_on: [], queue: 'default', priority: 0, executor: 'noop', config: {} },
  idempotency_key: 'flow-1:t',
  dispatched_at: new Date(0).toISOString(),
};

/** A recorder whose log keeps what it is given, or refuses everything with `refusal`. */
function recorder(refusal?: Error) {
  const appended: Array<{ event: EventBody<'id' | 'version' | 'time'>; msgID: string }> = [];
  const log = {
    appendNew: async (event: EventBody<'id' | 'version' | 'time'>, msgID: string) => {
      if (refusal) throw refusal;
      const duplicate = appended.some((a) => a.msgID === msgID);
      if (!duplicate) appended.push({ event, msgID });
      return { duplicate };
    },
  } as unknown as EventLog;
  return { recorder: new Recorder(log, () => 10_000), appended };
}

describe('the event budget', () => {
  it("is the smaller of the server's max_payload and the stream's max_msg_size, less the envelope", () => {
    expect(eventBudget(8 * 1024 * 1024, 4 * 1024 * 1024)).toBe(4 * 1024 * 1024 - ENVELOPE_BYTES);
    expect(eventBudget(64 * 1024, 4 * 1024 * 1024)).toBe(64 * 1024 - ENVELOPE_BYTES);
  });

  it('takes a stream without a limit as unlimited, and a server that does not say as 1 MiB', () => {
    expect(eventBudget(2 * 1024 * 1024, -1)).toBe(2 * 1024 * 1024 - ENVELOPE_BYTES);
    expect(eventBudget(undefined, 0)).toBe(1024 * 1024 - ENVELOPE_BYTES);
  });
});

describe('an event as it is recorded', () => {
  it('has the secret values redacted from its data, output and error alike', () => {
    const succeeded = fitEvent({ type: 'task.succeeded', attempt: 1, data: { output: { token: 's3cret' }, duration_ms: 1 } }, ['s3cret'], 10_000);
    expect(succeeded).toMatchObject({ data: { output: { token: REDACTED } } });
    const failed = fitEvent({ type: 'task.failed', attempt: 1, data: { error: { message: 'bad s3cret', code: 'X', retryable: false }, duration_ms: 1 } }, ['s3cret'], 10_000);
    expect(failed).toMatchObject({ data: { error: { message: `bad ${REDACTED}` } } });
  });

  it('has its error cut to the budget', () => {
    const event = fitEvent({ type: 'task.attempt_failed', attempt: 1, data: { error: { message: 'x'.repeat(5_000), code: 'X', retryable: true }, duration_ms: 1 } }, undefined, 1_000);
    expect(Buffer.byteLength(JSON.stringify((event as { data: { error: unknown } }).data.error))).toBeLessThanOrEqual(1_000);
  });
});

describe('the recorder', () => {
  it("stamps the item's flow and task, and names the event within the task by its idempotency key", async () => {
    const { recorder: r, appended } = recorder();
    expect(await r.append(item, { type: 'task.started', attempt: 2, data: { executor_id: 'x' } }, '2:task.started')).toEqual({ duplicate: false });
    expect(await r.append(item, { type: 'task.started', attempt: 2, data: { executor_id: 'x' } }, '2:task.started')).toEqual({ duplicate: true });
    expect(appended).toEqual([{ event: { type: 'task.started', attempt: 2, data: { executor_id: 'x' }, flow_id: 'flow-1', task_id: 't' }, msgID: 'flow-1:t:2:task.started' }]);
  });

  it('hides the secrets an item uses until it is released', async () => {
    const { recorder: r, appended } = recorder();
    const echo = (value: string) => ({ type: 'task.succeeded' as const, attempt: 1, data: { output: value, duration_ms: 1 } });
    r.hide(item, ['s3cret']);
    await r.append(item, echo('s3cret'), 'outcome');
    await r.append({ ...item, idempotency_key: 'other' }, echo('s3cret'), 'outcome');
    r.release(item);
    await r.append(item, echo('s3cret'), '2:outcome');
    expect(appended.map(({ event }) => (event as { data: { output: unknown } }).data.output)).toEqual([REDACTED, 's3cret', 's3cret']);
  });

  it('makes a refused append the infrastructure’s, naming the event', async () => {
    const { recorder: r } = recorder(new Error('timeout'));
    const failure = r.append(item, { type: 'task.cancelled', data: { reason: 'x' } }, 'outcome');
    await expect(failure).rejects.toBeInstanceOf(InfrastructureError);
    await expect(failure).rejects.toThrow('could not record task.cancelled: timeout');
  });
});
