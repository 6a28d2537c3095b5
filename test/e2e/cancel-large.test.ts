import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestStack } from '../support/stack.js';

const TASKS = 2_000;

describe('cancelling a large flow', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(async () => stack?.stop());

  it('records exactly one terminal event per task, whoever writes it, when cancelled right after submission', async () => {
    const tasks = Array.from({ length: TASKS }, (_, i) => ({ id: `t${i}`, executor: 'delay', config: { ms: 300 } }));
    const id = await stack.submit({ tasks });
    const cancel = await stack.inject({ method: 'POST', url: `/api/v1/flows/${id}/cancel`, payload: '{}', headers: { 'content-type': 'application/json' } });
    expect(cancel.statusCode).toBe(202);
    const view = await stack.settled(id, 120_000);
    expect(view.status).toBe('cancelled');

    const terminal = new Map<string, string[]>();
    for (const { event } of await stack.events(id)) {
      if (!['task.succeeded', 'task.failed', 'task.timed_out', 'task.skipped', 'task.upstream_failed', 'task.cancelled'].includes(event.type)) continue;
      terminal.set(event.task_id, [...(terminal.get(event.task_id) ?? []), event.type]);
    }
    expect(terminal.size).toBe(TASKS);
    expect([...terminal].filter(([, types]) => types.length !== 1)).toEqual([]);
  }, 180_000);
});
