import { TaskstreamClient, TaskstreamError, type StoredEvent, type WebSocketLike } from '@taskstream/client';
import { generateApiKey } from '@taskstream/nats';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ALL_SERVICES, Deployment, FAST_FAILOVER } from '../support/deployment.js';

/*
 * The TypeScript client against every service as its own process: a gateway with API keys on, a
 * real nats-server. The feed test drops the client's socket (a TCP reset, as a network drop) twice
 * in the middle of a flow and checks the events received against the stored history.
 */

const ADMIN = generateApiKey().key;

/** A `ws` factory that sends the key as a header and keeps every socket, so a test can drop them. */
function droppableSockets() {
  const sockets: WebSocket[] = [];
  const urls: string[] = [];
  return {
    sockets,
    urls,
    open: (url: string, headers: Record<string, string>) => {
      urls.push(url);
      const socket = new WebSocket(url, { headers });
      sockets.push(socket);
      return socket as unknown as WebSocketLike;
    },
  };
}

const chain = (n: number, ms: number) => ({
  name: 'sdk-chain',
  tasks: Array.from({ length: n }, (_, i) => ({ id: `step-${i}`, executor: 'delay', config: { ms }, ...(i > 0 && { depends_on: [`step-${i - 1}`] }) })),
});

async function failure(promise: Promise<unknown>): Promise<TaskstreamError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TaskstreamError);
    return error as TaskstreamError;
  }
  throw new Error('expected the call to fail');
}

/**
 * `call`, whose failure also says what the flow's log and view hold just after it: an ack that
 * fails with a code the client read from the view is told apart from one whose view was behind.
 */
async function explained<T>(client: TaskstreamClient, flowId: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    const history = await client.history(flowId).catch((e: Error) => e.message);
    const view = await client.get(flowId).catch((e: Error) => e.message);
    const events = typeof history === 'string' ? history : history.map((e) => ({ seq: e.seq, type: e.event.type, task: (e.event as { task_id?: string }).task_id, data: e.event.data }));
    (error as Error).message += `\nthe flow's history: ${JSON.stringify(events)}\nits view: ${JSON.stringify(view)}`;
    throw error;
  }
}

describe('the TypeScript client against the services', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;
  let admin: TaskstreamClient;

  beforeAll(async () => {
    nats = await NatsServer.start();
    const port = await freePort();
    deployment = await Deployment.start(nats.url, [...ALL_SERVICES.filter(([name]) => name !== 'gateway'), ['gateway', 'gateway', { TASKSTREAM_AUTH: 'keys', TASKSTREAM_BOOTSTRAP_ADMIN_KEY: ADMIN, TASKSTREAM_PORT: String(port) }]], FAST_FAILOVER);
    base = `http://127.0.0.1:${port}`;
    await deployment.ready(base);
    admin = new TaskstreamClient({ baseUrl: base, apiKey: ADMIN, webSocket: (url, headers) => new WebSocket(url, { headers }) as unknown as WebSocketLike });
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  it('submits with an idempotency key, reads the view, lists flows page by page, and answers typed errors', async () => {
    const first = await admin.submit(chain(2, 10), { idempotencyKey: 'sdk-once' });
    expect(first).toMatchObject({ status: 'submitted', tasks: 2, replayed: false });
    const again = await admin.submit(chain(2, 10), { idempotencyKey: 'sdk-once' });
    expect(again).toMatchObject({ flow_id: first.flow_id, replayed: true });
    const reused = await failure(admin.submit(chain(3, 10), { idempotencyKey: 'sdk-once' }));
    expect({ code: reused.code, status: reused.status }).toEqual({ code: 'IDEMPOTENCY_KEY_REUSED', status: 422 });

    const yaml = await admin.submit('name: sdk-yaml\ntasks:\n  - id: a\n    executor: noop\n', { format: 'yaml' });
    const done = await admin.wait(yaml.flow_id, { timeoutMs: 20_000 });
    expect(done.status).toBe('succeeded');
    expect((await admin.get(first.flow_id)).flow_id).toBe(first.flow_id);

    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await admin.submit({ name: 'sdk-page', tasks: [{ id: 'a', executor: 'noop' }] })).flow_id);
    // The list is the projector's: wait until it holds all three, then read it two at a time.
    const listed = await waitFor('the three flows in the list', async () => {
      const seen: string[] = [];
      for await (const flow of admin.list({ name: 'sdk-page', limit: 2 })) seen.push(flow.flow_id);
      return seen.length === 3 ? seen : undefined;
    }, 20_000);
    expect(listed).toEqual([...ids].reverse());
    const page = await admin.listPage({ name: 'sdk-page', limit: 2 });
    expect(page.flows).toHaveLength(2);
    expect(page.next_cursor).toBeDefined();

    const invalid = await failure(admin.submit({ tasks: [{ id: 'a', executor: 'noop', depends_on: ['x'] }, { id: 'a', executor: 'nope' }] } as never));
    expect(invalid.code).toBe('INVALID_FLOW');
    expect(invalid.status).toBe(400);
    expect(invalid.problems.length).toBeGreaterThanOrEqual(2);
    expect(invalid.problems.map((p) => p.path)).toContain('tasks[0].depends_on[0]');
    expect(invalid.describe()).toContain('tasks[0].depends_on[0]: ');

    const missing = await failure(admin.get('01JAAAAAAAAAAAAAAAAAAAAAAA'));
    expect({ code: missing.code, status: missing.status }).toEqual({ code: 'FLOW_NOT_FOUND', status: 404 });
    const anonymous = new TaskstreamClient({ baseUrl: base });
    const refused = await failure(anonymous.get(first.flow_id));
    expect({ code: refused.code, status: refused.status }).toEqual({ code: 'UNAUTHORIZED', status: 401 });
    const feedRefused = await failure(anonymous.events(first.flow_id, { maxReconnects: 1 }).next().then(() => undefined));
    expect(feedRefused.code).toBe('FEED_FAILED');

    const reader = new TaskstreamClient({ baseUrl: base, apiKey: (await admin.keys.create({ name: 'sdk-reader', scope: 'read' })).key });
    expect((await reader.get(first.flow_id)).flow_id).toBe(first.flow_id);
    const forbidden = await failure(reader.cancel(first.flow_id));
    expect({ code: forbidden.code, requiredScope: forbidden.requiredScope }).toEqual({ code: 'FORBIDDEN', requiredScope: 'submit' });

    const unreachable = new TaskstreamClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, retry: { retries: 2, initialDelayMs: 10 } });
    const network = await failure(unreachable.get(first.flow_id));
    expect(network.code).toBe('NETWORK');
  });

  it('follows a flow live through two dropped connections with no event lost or repeated', async () => {
    const sockets = droppableSockets();
    const client = new TaskstreamClient({ baseUrl: base, apiKey: ADMIN, webSocket: sockets.open });
    const { flow_id: id } = await client.submit(chain(8, 150));
    const received: StoredEvent[] = [];
    const feed = client.events(id);
    for await (const item of feed) {
      received.push(item);
      // A network drop (TCP reset, no close frame) after the 4th event and after the 12th.
      if (received.length === 4 || received.length === 12) sockets.sockets.at(-1)!.terminate();
    }
    expect(sockets.sockets.length).toBeGreaterThanOrEqual(3);
    // Each reconnection asked for the events after one it had received (the last, which may be ahead of what the loop has read).
    const seqs = received.map((e) => e.seq);
    for (const url of sockets.urls.slice(1)) expect(seqs).toContain(Number(new URL(url).searchParams.get('after')));
    expect(received.at(-1)!.event.type).toBe('flow.succeeded');
    const history = await client.history(id);
    expect(received.map((e) => e.seq)).toEqual(history.map((e) => e.seq));
    expect(received.map((e) => e.event.id)).toEqual(history.map((e) => e.event.id));
    expect(new Set(received.map((e) => e.event.id)).size).toBe(received.length);

    // A slow loop: the client holds at most two events, closing the socket and reopening it after the last one received once they are read.
    const slowSockets = droppableSockets();
    const slow = new TaskstreamClient({ baseUrl: base, apiKey: ADMIN, webSocket: slowSockets.open });
    const slowRead: number[] = [];
    for await (const item of slow.events(id, { maxBuffered: 2 })) {
      slowRead.push(item.seq);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(slowRead).toEqual(history.map((e) => e.seq));
    expect(slowSockets.urls.length).toBeGreaterThan(2);

    // Resuming a later feed from a sequence gives exactly what followed it.
    const middle = history[5]!.seq;
    const rest: number[] = [];
    for await (const item of client.events(id, { after: middle })) rest.push(item.seq);
    expect(rest).toEqual(history.filter((e) => e.seq > middle).map((e) => e.seq));
  });

  it('opens feeds with the key as a query parameter where WebSocket cannot send headers (browsers)', async () => {
    const global = globalThis as { WebSocket?: unknown };
    const before = global.WebSocket;
    global.WebSocket = WebSocket;
    try {
      const browserLike = new TaskstreamClient({ baseUrl: base, apiKey: ADMIN });
      const { flow_id: id } = await browserLike.submit(chain(2, 10));
      const types: string[] = [];
      for await (const item of browserLike.events(id)) types.push(item.event.type);
      expect(types[0]).toBe('flow.submitted');
      expect(types.at(-1)).toBe('flow.succeeded');
    } finally {
      global.WebSocket = before;
    }
  });

  it('approves and rejects, signals, cancels, reruns, forks and replays', async () => {
    const gated = {
      tasks: [
        { id: 'build', executor: 'noop' },
        { id: 'gate', executor: 'approval', depends_on: ['build'], config: { message: 'ship it?' } },
        { id: 'paid', executor: 'wait', depends_on: ['build'], config: { signal: 'sdk-paid', match: 'signal.ok' } },
        { id: 'deploy', executor: 'noop', depends_on: ['gate', 'paid'] },
      ],
    };
    const { flow_id: id } = await admin.submit(gated);
    await waitFor('the gate to wait', async () => ((await admin.get(id)).tasks.find((t) => t.id === 'gate')?.status === 'waiting' ? true : undefined), 20_000);
    const wrong = await failure(admin.approve(id, 'gate', { code: '0'.repeat(32) }));
    expect(wrong.code).toBe('INVALID_APPROVAL_CODE');
    await explained(admin, id, admin.approve(id, 'gate', { approvedBy: 'sdk-test' }));
    const twice = await failure(admin.approve(id, 'gate'));
    expect(twice.code).toBe('TASK_NOT_WAITING');
    await waitFor('the wait task to wait', async () => ((await admin.get(id)).tasks.find((t) => t.id === 'paid')?.status === 'waiting' ? true : undefined), 20_000);
    const sent = await admin.signal('sdk-paid', { ok: true }, { idempotencyKey: 'sdk-signal' });
    expect(sent).toMatchObject({ name: 'sdk-paid', replayed: false });
    expect(await admin.signal('sdk-paid', { ok: true }, { idempotencyKey: 'sdk-signal' })).toMatchObject({ signal_id: sent.signal_id, replayed: true });
    const done = await admin.wait(id, { timeoutMs: 20_000 });
    expect(done.status).toBe('succeeded');

    const rejected = (await admin.submit(gated)).flow_id;
    await waitFor('the gate to wait', async () => ((await admin.get(rejected)).tasks.find((t) => t.id === 'gate')?.status === 'waiting' ? true : undefined), 20_000);
    await explained(admin, rejected, admin.reject(rejected, 'gate', { reason: 'not today' }));
    const failed = await admin.wait(rejected, { timeoutMs: 20_000 });
    expect(failed.status).toBe('failed');
    expect(failed.tasks.find((t) => t.id === 'gate')?.error?.message).toBe('not today');
    const cancelled = (await admin.submit(gated)).flow_id;
    expect((await admin.cancel(cancelled, 'not needed')).status).toBe('cancelling');
    expect((await admin.wait(cancelled, { timeoutMs: 20_000 })).status).toBe('cancelled');

    const rerun = await admin.rerun(id);
    expect(rerun.rerun_of).toBe(id);
    expect((await admin.wait(rerun.flow_id, { timeoutMs: 20_000 })).tasks.every((t) => t.reused)).toBe(true);
    const history = await admin.history(id);
    const fork = await admin.fork(id, history[1]!.seq, { tasks: [{ id: 'deploy', executor: 'noop', depends_on: ['build'] }] });
    expect(fork.forked_from).toBe(id);
    const at = await admin.stateAt(id, history[1]!.seq);
    expect(at.state.flow_id).toBe(id);
    expect(at.folded_through_seq).toBe(history[1]!.seq);
    expect(await admin.graph(id, 'mermaid')).toContain('gate');
    const notFinished = await failure(admin.cancel(id));
    expect(notFinished.code).toBe('FLOW_ALREADY_FINISHED');
  });

  it('manages queues, templates, schedules, secrets by name and dead letters', async () => {
    const queue = await admin.queues.set('sdk-q', { concurrency: 2 });
    expect(queue.policy.concurrency).toBe(2);
    expect((await admin.queues.list()).map((q) => q.name)).toContain('sdk-q');
    expect((await admin.queues.stats('sdk-q')).queue).toBe('sdk-q');
    await admin.queues.delete('sdk-q');
    expect((await failure(admin.queues.get('sdk-q'))).code).toBe('QUEUE_NOT_FOUND');

    const stored = await admin.templates.put('sdk-hello', {
      flow: { tasks: [{ id: 'greet', executor: 'noop', config: { output: { to: '${params.who}' } } }] },
      params_schema: { type: 'object', properties: { who: { type: 'string' } }, required: ['who'] },
    });
    expect(stored).toMatchObject({ name: 'sdk-hello', version: 1, created: true });
    expect((await admin.templates.list()).map((t) => t.name)).toContain('sdk-hello');
    const badParams = await failure(admin.templates.run('sdk-hello', { who: 3 }));
    expect(badParams.code).toBe('INVALID_PARAMS');
    const run = await admin.templates.run('sdk-hello', { who: 'world' });
    expect(run.template).toEqual({ name: 'sdk-hello', version: 1 });
    expect((await admin.wait(run.flow_id, { timeoutMs: 20_000 })).status).toBe('succeeded');

    const schedule = await admin.schedules.create({ cron: '0 0 1 1 *', template: 'sdk-hello', params: { who: 'new year' }, enabled: false });
    expect(schedule.next_run_at).toBeNull();
    expect((await admin.schedules.list()).map((s) => s.id)).toContain(schedule.id);
    expect((await admin.schedules.update(schedule.id, { enabled: true })).enabled).toBe(true);
    await admin.schedules.delete(schedule.id);
    expect((await failure(admin.schedules.get(schedule.id))).code).toBe('SCHEDULE_NOT_FOUND');

    await admin.secrets.set('sdk-token', 's3cr3t-value');
    const secrets = await admin.secrets.list();
    expect(secrets.map((s) => s.name)).toContain('sdk-token');
    expect(JSON.stringify(secrets)).not.toContain('s3cr3t-value');
    await admin.secrets.delete('sdk-token');

    expect(Array.isArray(await admin.deadLetters.list({ limit: 10 }))).toBe(true);
    expect((await failure(admin.deadLetters.get(999_999))).code).toBe('DEAD_LETTER_NOT_FOUND');
  });
});
