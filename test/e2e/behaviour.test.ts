import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNats, jetstreamManager, PARTITION_MAX_DELIVER, topology } from '@taskstream/nats';
import { waitFor } from '@taskstream/testing';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, recordingEndpoint, TestStack, timeline } from '../support/stack.js';

const shell = (id: string, command: string, extra: Record<string, unknown> = {}) => ({ id, executor: 'shell', config: { command }, ...extra });
const fast = { backoff: { type: 'fixed', initial_delay_ms: 20 } };

describe('flows through the embedded stack', () => {
  let stack: TestStack;
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-e2e-'));

  beforeAll(async () => {
    stack = await TestStack.start();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("gives each partition's event to the planner and the projector PARTITION_MAX_DELIVER times before it is set aside", async () => {
    const nc = await connectNats({ servers: stack.nats.url, name: 'consumers-check' });
    try {
      const jsm = await jetstreamManager(nc);
      const topo = topology();
      for (const consumer of ['planner-p0', 'projector-p15']) {
        const info = await waitFor(`consumer ${consumer}`, () => jsm.consumers.info(topo.eventsStream, consumer).catch(() => undefined));
        expect({ consumer, max_deliver: info.config.max_deliver }).toEqual({ consumer, max_deliver: PARTITION_MAX_DELIVER });
      }
    } finally {
      await nc.close();
    }
  });

  it('fails the descendants of a failing task, not its siblings, and the events say why', async () => {
    const id = await stack.submit({
      tasks: [
        shell('build', 'true'),
        shell('test-unit', 'echo "expected 2 to equal 3" >&2; exit 3', { depends_on: ['build'], retries: 0 }),
        shell('test-integ', 'sleep 0.2', { depends_on: ['build'] }),
        { id: 'deploy', executor: 'noop', depends_on: ['test-unit', 'test-integ'] },
        { id: 'notify', executor: 'noop', depends_on: ['deploy'] },
      ],
    });
    const view = await stack.settled(id);
    expect(view.status).toBe('failed');
    expect(Object.fromEntries(view.tasks.map((t: any) => [t.id, t.status]))).toEqual({
      build: 'succeeded',
      'test-unit': 'failed',
      'test-integ': 'succeeded',
      deploy: 'upstream_failed',
      notify: 'upstream_failed',
    });
    const failed = view.tasks.find((t: any) => t.id === 'test-unit');
    expect(failed.error).toMatchObject({ code: 'EXIT_CODE', exit_code: 3, stderr_tail: 'expected 2 to equal 3' });
    const events = await stack.events(id);
    const upstreamFailed = events.find((e) => e.event.type === 'task.upstream_failed' && e.event.task_id === 'deploy');
    expect(upstreamFailed.event.data).toEqual({ reason: 'upstream "test-unit" failed', upstream: ['test-unit'] });
    const end = events.at(-1).event;
    expect(end.type).toBe('flow.failed');
    expect(end.data).toMatchObject({ failed_tasks: ['test-unit'], skipped_tasks: [], upstream_failed_tasks: ['deploy', 'notify'], succeeded: 2, total: 5 });
  });

  it('retries a task that fails twice and then succeeds, recording each failed attempt', async () => {
    const id = await stack.submit({ tasks: [shell('flaky', '[ "$TASKSTREAM_ATTEMPT" -ge 3 ] || { echo "attempt $TASKSTREAM_ATTEMPT down" >&2; exit 1; }', { retries: 4, ...fast })] });
    const view = await stack.settled(id);
    expect(view.status).toBe('succeeded');
    const types = timeline(await stack.events(id));
    expect(types.filter((t) => t === 'task.attempt_failed:flaky')).toHaveLength(2);
    expect(types.filter((t) => t === 'task.retry_scheduled:flaky')).toHaveLength(2);
    expect(types.filter((t) => t === 'task.started:flaky')).toHaveLength(3);
    expect(view.tasks[0].attempts.map((a: any) => [a.attempt, a.outcome])).toEqual([
      [1, 'failed'],
      [2, 'failed'],
      [3, 'succeeded'],
    ]);
    expect(view.tasks[0].attempts[0].error.stderr_tail).toBe('attempt 1 down');
  });

  it('fails a task for good once its retries are used up', async () => {
    const id = await stack.submit({ tasks: [shell('broken', 'exit 1', { retries: 2, ...fast })] });
    const view = await stack.settled(id);
    expect(view.tasks[0].status).toBe('failed');
    expect(view.tasks[0].attempts).toHaveLength(3);
  });

  it('times out an attempt that runs past timeout_secs and kills its process', async () => {
    const pidFile = join(dir, 'timeout.pid');
    const id = await stack.submit({ tasks: [shell('slow', `echo $$ > ${pidFile}; exec sleep 30`, { timeout_secs: 0.5, retries: 0 })] });
    const view = await stack.settled(id);
    expect(view.status).toBe('failed');
    expect(view.tasks[0].status).toBe('timed_out');
    expect(view.tasks[0].error).toMatchObject({ code: 'TIMEOUT' });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor('the timed-out process to be gone', () => (alive(pid) ? undefined : true));
    const types = timeline(await stack.events(id));
    expect(types).toContain('task.attempt_failed:slow');
    expect(types).toContain('task.timed_out:slow');
  });

  it('cancels: stops running shell tasks and cancels pending ones', async () => {
    const pidFile = join(dir, 'cancel.pid');
    const id = await stack.submit({
      tasks: [shell('long', `echo $$ > ${pidFile}; exec sleep 30`), { id: 'after', executor: 'noop', depends_on: ['long'] }, { id: 'later', executor: 'noop', depends_on: ['after'] }],
    });
    await waitFor('the long task to run', async () => ((await stack.view(id)).tasks[0].status === 'running' && existsSync(pidFile) ? true : undefined));
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const cancel = await stack.inject({ method: 'POST', url: `/api/v1/flows/${id}/cancel`, payload: { reason: 'wrong branch' } });
    expect(cancel.statusCode).toBe(202);
    const view = await stack.settled(id);
    expect(view.status).toBe('cancelled');
    expect(view.tasks.map((t: any) => t.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(view.tasks[1].reason).toBe('wrong branch');
    await waitFor('the cancelled process to be gone', () => (alive(pid) ? undefined : true));
    const again = await stack.inject({ method: 'POST', url: `/api/v1/flows/${id}/cancel` });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.message).toMatch(/already cancelled; there is nothing left to cancel/);
  });

  it("fails a flow that runs past its own timeout_secs, stopping what still runs", async () => {
    const id = await stack.submit({ timeout_secs: 1, tasks: [{ id: 'first', executor: 'noop' }, { id: 'long', executor: 'delay', config: { ms: 20_000 }, depends_on: ['first'] }, { id: 'never', executor: 'noop', depends_on: ['long'] }] });
    const view = await stack.settled(id);
    expect(view.status).toBe('failed');
    expect(view.error).toBe("the flow's timeout of 1s passed: 2 of 3 tasks did not finish");
    expect(view.tasks.map((t: any) => t.status)).toEqual(['succeeded', 'cancelled', 'cancelled']);
    expect(timeline(await stack.events(id))).toContain('flow.deadline_passed');
  });

  it('runs http steps: 5xx is retried, 4xx fails at once, the response body is the output', async () => {
    const endpoint = await recordingEndpoint((req, n) => (req.url === '/missing' ? 404 : n <= 2 ? 503 : 200));
    try {
      const id = await stack.submit({
        tasks: [
          { id: 'call', executor: 'http', config: { url: `${endpoint.url}/ok`, method: 'post', body: { x: 1 } }, retries: 3, ...fast },
          { id: 'gone', executor: 'http', config: { url: `${endpoint.url}/missing` }, retries: 3, depends_on: ['call'] },
        ],
      });
      const view = await stack.settled(id);
      const [call, gone] = view.tasks;
      expect(call.status).toBe('succeeded');
      expect(call.attempts).toHaveLength(3);
      expect(call.output).toEqual({ status: 200, body: '{"ok":true,"n":3}', json: { ok: true, n: 3 } });
      expect(gone.status).toBe('failed');
      expect(gone.attempts).toHaveLength(1);
      expect(gone.error).toMatchObject({ code: 'HTTP_STATUS', http_status: 404, retryable: false });
      expect(new Set(endpoint.requests.filter((r) => r.url === '/ok').map((r) => r.headers['idempotency-key']))).toEqual(new Set([`${id}:call`]));
    } finally {
      await endpoint.close();
    }
  });

  it('gives one flow for one Idempotency-Key, and refuses the key for a different flow', async () => {
    const flow = { tasks: [{ id: 'a', executor: 'noop' }] };
    const headers = { 'idempotency-key': `key-${Date.now()}` };
    const first = await stack.submit(flow, headers);
    const second = await stack.inject({ method: 'POST', url: '/api/v1/flows', payload: JSON.stringify(flow), headers: { 'content-type': 'application/json', ...headers } });
    expect(second.statusCode).toBe(202);
    expect(second.json()).toMatchObject({ flow_id: first, replayed: true });
    await stack.settled(first);
    expect(timeline(await stack.events(first)).filter((t) => t === 'flow.submitted')).toHaveLength(1);
    const other = await stack.inject({ method: 'POST', url: '/api/v1/flows', payload: JSON.stringify({ tasks: [{ id: 'b', executor: 'noop' }] }), headers: { 'content-type': 'application/json', ...headers } });
    expect(other.statusCode).toBe(422);
    expect(other.json().error).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('streams the history then live events over WebSocket, in order, and resumes after a sequence', async () => {
    const id = await stack.submit({ tasks: [{ id: 'a', executor: 'delay', config: { ms: 300 } }, { id: 'b', executor: 'delay', config: { ms: 300 }, depends_on: ['a'] }] });
    await waitFor('the first task to start', async () => ((await stack.view(id)).tasks[0].status === 'running' ? true : undefined));
    const received = await new Promise<any[]>((resolve, reject) => {
      const messages: any[] = [];
      const socket = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/flows/${id}/feed`);
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString());
        messages.push(message);
        if (message.event.type === 'flow.succeeded') {
          socket.close();
          resolve(messages);
        }
      });
      socket.on('error', reject);
    });
    const history = await stack.events(id);
    expect(received.map((m) => m.seq)).toEqual(history.map((e) => e.seq));
    expect(received.map((m) => m.event.id)).toEqual(history.map((e) => e.event.id));

    const resumeFrom = history[3].seq;
    const resumed = await new Promise<any[]>((resolve, reject) => {
      const messages: any[] = [];
      const socket = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/flows/${id}/feed?after=${resumeFrom}`);
      socket.on('message', (data) => {
        messages.push(JSON.parse(data.toString()));
        if (messages.length === history.length - 4) {
          socket.close();
          resolve(messages);
        }
      });
      socket.on('error', reject);
    });
    expect(resumed.map((m) => m.seq)).toEqual(history.slice(4).map((e) => e.seq));
  });

  it('answers bad input with clear 4xx errors and keeps running', async () => {
    const post = (payload: string, type = 'application/json') => stack.inject({ method: 'POST', url: '/api/v1/flows', payload, headers: { 'content-type': type } });

    const invalidJson = await post('{"tasks": [');
    expect(invalidJson.statusCode).toBe(400);
    expect(invalidJson.json().error.code).toBe('INVALID_FLOW');
    expect(invalidJson.json().error.problems[0].message).toMatch(/^not valid JSON/);

    const invalidFlow = await post(JSON.stringify({ tasks: [{ id: 'a', executor: 'noop', depends_on: ['b'] }, { id: 'b', executor: 'noop', depends_on: ['a'] }] }));
    expect(invalidFlow.statusCode).toBe(400);
    expect(invalidFlow.json().error).toMatchObject({ code: 'INVALID_FLOW', problems: [{ path: 'tasks[0].depends_on', message: expect.stringContaining('a -> b -> a') }] });

    const yaml = await post('tasks:\n  - id: y\n    executor: noop\n', 'application/yaml');
    expect(yaml.statusCode).toBe(202);

    const huge = await post(JSON.stringify({ tasks: [{ id: 'a', executor: 'noop', config: { output: 'x'.repeat(11 * 1024 * 1024) } }] }));
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error).toMatchObject({ code: 'BODY_TOO_LARGE', message: expect.stringMatching(/larger than the 10240 KiB limit/) });

    const wrongType = await post('<flow/>', 'application/xml');
    expect(wrongType.statusCode).toBe(415);

    const empty = await post('');
    expect(empty.statusCode).toBe(400);

    for (const url of ['/api/v1/flows/01JAAAAAAAAAAAAAAAAAAAAAAA', '/api/v1/flows/not-an-id', '/api/v1/flows/01JAAAAAAAAAAAAAAAAAAAAAAA/events']) {
      const missing = await stack.inject({ method: 'GET', url });
      expect(missing.statusCode, url).toBe(404);
      expect(missing.json().error.code).toBe('FLOW_NOT_FOUND');
    }
    const cancelMissing = await stack.inject({ method: 'POST', url: '/api/v1/flows/01JAAAAAAAAAAAAAAAAAAAAAAA/cancel' });
    expect(cancelMissing.statusCode).toBe(404);
    const badAfter = await stack.inject({ method: 'GET', url: `/api/v1/flows/01JAAAAAAAAAAAAAAAAAAAAAAA/events?after=-1` });
    expect(badAfter.statusCode).toBe(400);
    const feedMissing = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${stack.url.replace('http', 'ws')}/api/v1/flows/01JAAAAAAAAAAAAAAAAAAAAAAA/feed`);
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode!));
      socket.on('open', () => resolve(101));
    });
    expect(feedMissing).toBe(404);
    expect((await stack.inject({ method: 'GET', url: '/nope' })).statusCode).toBe(404);

    const health = await stack.inject({ method: 'GET', url: '/readyz' });
    expect(health.json()).toMatchObject({ status: 'ready' });
    const id = await stack.submit({ tasks: [{ id: 'still', executor: 'noop' }] });
    expect((await stack.settled(id)).status).toBe('succeeded');
  });
});

describe('dead letters over the API', () => {
  it('lists, shows, retries and discards messages set aside, and says when one is unknown', async () => {
    const stack = await TestStack.start();
    const { connectNats, jetstream } = await import('@taskstream/nats');
    const nc = await connectNats({ servers: stack.nats.url, name: 'dlq-test' });
    try {
      await jetstream(nc).publish('ts.evt.3.01JAAAAAAAAAAAAAAAAAAAAAAA.task.ready', '{broken');
      const list = async () => (await stack.inject({ method: 'GET', url: '/api/v1/dlq?source=planner' })).json().letters;
      const [letter] = await waitFor('a planner dead letter', async () => ((await list()).length > 0 ? list() : undefined));
      expect(letter).toMatchObject({ source: 'planner', subject: 'ts.evt.3.01JAAAAAAAAAAAAAAAAAAAAAAA.task.ready', data: '{broken', reason: expect.stringMatching(/not valid JSON/) });
      expect((await stack.inject({ method: 'GET', url: `/api/v1/dlq/${letter.dlq_seq}` })).json().stream_seq).toBe(letter.stream_seq);

      // The log already holds that event: a retry would append a copy, so it is refused and says what to do.
      const retried = await stack.inject({ method: 'POST', url: `/api/v1/dlq/${letter.dlq_seq}/retry` });
      expect(retried.statusCode).toBe(409);
      expect(retried.json().error).toMatchObject({ code: 'EVENT_LETTER_NOT_RETRYABLE', message: expect.stringContaining('cancel and rerun') });
      const jsm = await jetstream(nc).jetstreamManager();
      expect((await jsm.streams.info('TS_EVENTS')).state.messages).toBe(1);

      expect((await stack.inject({ method: 'DELETE', url: `/api/v1/dlq/${letter.dlq_seq}` })).statusCode).toBe(204);
      expect((await stack.inject({ method: 'GET', url: `/api/v1/dlq/${letter.dlq_seq}` })).statusCode).toBe(404);
      const gone = await stack.inject({ method: 'DELETE', url: `/api/v1/dlq/${letter.dlq_seq}` });
      expect(gone.statusCode).toBe(404);
      expect(gone.json().error).toMatchObject({ code: 'DEAD_LETTER_NOT_FOUND', message: expect.stringContaining('list them with GET /api/v1/dlq') });
      expect((await stack.inject({ method: 'GET', url: '/api/v1/dlq?limit=0' })).statusCode).toBe(400);
    } finally {
      await nc.close();
      await stack.stop();
    }
  });
});

describe('an executor pool with shell steps off', () => {
  it('fails shell tasks with a message saying how to turn them on', async () => {
    const stack = await TestStack.start({ shellEnabled: false });
    try {
      const id = await stack.submit({ tasks: [shell('sh', 'echo hi', { retries: 3 })] });
      const view = await stack.settled(id);
      expect(view.tasks[0].status).toBe('failed');
      expect(view.tasks[0].attempts).toHaveLength(1);
      expect(view.tasks[0].error).toMatchObject({ code: 'SHELL_DISABLED', message: expect.stringContaining('--allow-shell') });
    } finally {
      await stack.stop();
    }
  });
});
