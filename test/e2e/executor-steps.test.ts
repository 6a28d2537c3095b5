import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingEndpoint, TestStack } from '../support/stack.js';

/** Tasked's step semantics through the whole stack: submission fills the defaults, the executor runs them. */
describe('executor steps as Tasked defines them', () => {
  let stack: TestStack;
  let endpoint: Awaited<ReturnType<typeof recordingEndpoint>>;

  beforeAll(async () => {
    process.env.TS_TEST_CANARY = 'executor-secret';
    endpoint = await recordingEndpoint();
    stack = await TestStack.start();
  });
  afterAll(async () => {
    delete process.env.TS_TEST_CANARY;
    await stack?.stop();
    await endpoint?.close();
  });

  it('http POSTs the task input by default and outputs {status, body (text), json}', async () => {
    const id = await stack.submit({ tasks: [{ id: 'create', executor: 'http', config: { url: `${endpoint.url}/items` }, input: { name: 'widget', size: 3 } }] });
    const view = await stack.settled(id);
    expect(view.status).toBe('succeeded');
    const request = endpoint.requests.find((r) => r.url === '/items')!;
    expect(request).toMatchObject({ method: 'POST', body: '{"name":"widget","size":3}' });
    expect(request.headers['content-type']).toBe('application/json');
    const n = endpoint.requests.indexOf(request) + 1;
    expect(view.tasks[0].output).toEqual({ status: 200, body: JSON.stringify({ ok: true, n }), json: { ok: true, n } });
  });

  it("delay outputs {delayed_seconds}, or the config's output", async () => {
    const id = await stack.submit({
      tasks: [
        { id: 'wait', executor: 'delay', config: { seconds: 0.05 } },
        { id: 'wait-ms', executor: 'delay', config: { ms: 20, output: 'done' } },
      ],
    });
    const view = await stack.settled(id);
    expect(view.tasks.map((t: any) => [t.id, t.status, t.output])).toEqual([
      ['wait', 'succeeded', { delayed_seconds: 0.05 }],
      ['wait-ms', 'succeeded', 'done'],
    ]);
  });

  it("shell steps see PATH, their env (as text) and Taskstream's variables, none of the executor's own", async () => {
    const id = await stack.submit({ tasks: [{ id: 'env', executor: 'shell', config: { command: 'env | sort', env: { COUNT: 3, FLAG: true, NAME: 'x' } } }] });
    const view = await stack.settled(id);
    expect(view.status).toBe('succeeded');
    const lines: string[] = view.tasks[0].output.stdout.split('\n');
    expect(lines).toEqual(expect.arrayContaining(['COUNT=3', 'FLAG=true', 'NAME=x', `PATH=${process.env.PATH}`, `TASKSTREAM_FLOW_ID=${id}`, 'TASKSTREAM_TASK_ID=env', 'TASKSTREAM_ATTEMPT=1', `TASKSTREAM_IDEMPOTENCY_KEY=${id}:env`]));
    expect(lines.some((line) => line.startsWith('TS_TEST_CANARY='))).toBe(false);
    expect(lines.some((line) => line.startsWith('HOME='))).toBe(false);
  });

  it("transform outputs its expression's value over the task input", async () => {
    const id = await stack.submit({ tasks: [{ id: 'shape', executor: 'transform', config: { expr: '{"total": input.items.map(i, i.price).size(), "first": input.items[0].name}' }, input: { items: [{ name: 'a', price: 2 }, { name: 'b', price: 3 }] } }] });
    const view = await stack.settled(id);
    expect([view.tasks[0].status, view.tasks[0].output]).toEqual(['succeeded', { total: 2, first: 'a' }]);
  });
});
