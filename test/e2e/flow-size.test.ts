import { DEFAULT_PARTITIONS, MAX_TASKS_PER_FLOW, MAX_TASK_SPEC_BYTES, partitionOf } from '@taskstream/domain';
import { connectNats, jetstream } from '@taskstream/nats';
import { waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestStack } from '../support/stack.js';

const noops = (n: number, extra: object = {}) => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, executor: 'noop', ...extra }));

describe('flow size limits', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(async () => stack?.stop());

  const post = (flow: unknown) => stack.inject({ method: 'POST', url: '/api/v1/flows', payload: JSON.stringify(flow), headers: { 'content-type': 'application/json' } });

  it('runs a flow at the task limit, its definition stored once and referenced by its submission', async () => {
    // A long queue name rides on every task once defaults are filled in: it must not matter.
    const id = await stack.submit({ queue: 'a-queue-with-a-long-name-x', tasks: noops(MAX_TASKS_PER_FLOW) });
    // Wait on the log, not the view: polling a view of 10,000 tasks would only slow the flow down.
    const nc = await connectNats({ servers: stack.nats.url, name: 'flow-size-test' });
    try {
      const jsm = await jetstream(nc).jetstreamManager();
      await waitFor('the flow to succeed', () => jsm.streams.getMessage('TS_EVENTS', { last_by_subj: `ts.evt.${partitionOf(id, DEFAULT_PARTITIONS)}.${id}.flow.succeeded` }).then((m) => m ?? undefined), 180_000, 500);
    } finally {
      await nc.close();
    }
    const view = await stack.settled(id);
    expect(view).toMatchObject({ status: 'succeeded', total: MAX_TASKS_PER_FLOW });
    expect(view.counts.succeeded).toBe(MAX_TASKS_PER_FLOW);
    const [submitted] = (await stack.inject({ method: 'GET', url: `/api/v1/flows/${id}/events?after=0` })).json().events;
    expect(submitted.event.type).toBe('flow.submitted');
    expect(submitted.event.data.definition).toBeUndefined();
    expect(submitted.event.data.definition_ref).toMatchObject({ object: id, tasks: MAX_TASKS_PER_FLOW, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  }, 240_000);

  it('refuses one task more than the limit with a 400 saying so', async () => {
    const response = await post({ tasks: noops(MAX_TASKS_PER_FLOW + 1) });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.problems).toEqual([{ path: 'tasks', message: expect.stringContaining(`at most ${MAX_TASKS_PER_FLOW}`) }]);
  });

  it('refuses a task too large for its own events with a 413 naming the task and the limit, and stores nothing', async () => {
    const before = (await stack.inject({ method: 'GET', url: '/api/v1/flows' })).json();
    const response = await post({ tasks: [{ id: 'small', executor: 'noop' }, { id: 'huge', executor: 'noop', config: { output: 'x'.repeat(MAX_TASK_SPEC_BYTES) } }] });
    expect(response.statusCode).toBe(413);
    expect(response.json().error).toMatchObject({ code: 'FLOW_TOO_LARGE', message: expect.stringMatching(new RegExp(`tasks\\[1\\] \\("huge"\\).*${MAX_TASK_SPEC_BYTES}-byte limit`)) });
    expect((await stack.inject({ method: 'GET', url: '/api/v1/flows' })).json()).toEqual(before);
  });

  it('answers a body over the body limit with a 413, never a 500', async () => {
    const response = await post({ tasks: [{ id: 'a', executor: 'noop', config: { output: 'x'.repeat(1_048_050) } }] });
    expect(response.statusCode).toBe(413);
    expect(response.json().error.code).toMatch(/BODY_TOO_LARGE|FLOW_TOO_LARGE/);
  });
});
