import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { generateApiKey } from '@taskstream/nats';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployment, FAST_FAILOVER } from '../support/deployment.js';

/*
 * Tasked's REST API under /tasked, driven as Tasked's own client drives it (client/src/*.rs of
 * Tasked): its routes, its request bodies (every absent option written as null), and what it reads
 * back (its shapes, states, status codes and `{error, message}` bodies), through every service as
 * its own process.
 */

const ADMIN = generateApiKey().key;
const CODE = /^[0-9a-f]{32}$/;

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

/** A Tasked client: a base URL (…/tasked) and, optionally, a bearer token. */
function taskedClient(base: string, token?: string) {
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(token !== undefined && { authorization: `Bearer ${token}` }), ...headers },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : JSON.parse(text), headers: response.headers };
  };
  return {
    call,
    createQueue: (id: string, config?: unknown) => call('POST', '/api/v1/queues', { id, ...(config !== undefined && { config }) }),
    submitFlow: (queue: string, flow: unknown) => call('POST', `/api/v1/queues/${queue}/flows`, flow),
    getFlow: (id: string) => call('GET', `/api/v1/flows/${id}`),
    listFlows: (queue: string) => call('GET', `/api/v1/queues/${queue}/flows`),
    cancelFlow: (id: string) => call('DELETE', `/api/v1/flows/${id}`),
    ack: (id: string, task: string, body: unknown) => call('POST', `/api/v1/flows/${id}/tasks/${encodeURIComponent(task)}/ack`, body),
    exportFlow: (id: string, withArtifacts: boolean) => call('GET', `/api/v1/flows/${id}/export?with_artifacts=${withArtifacts}`),
    /** The SSE stream until it ends: each event's name and data, and comments. */
    events: async (id: string): Promise<Array<{ event: string; data: any }>> => {
      const response = await fetch(`${base}/api/v1/flows/${id}/events`, { headers: token !== undefined ? { authorization: `Bearer ${token}` } : {} });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      const text = await response.text();
      return text
        .split('\n\n')
        .filter((block) => block.startsWith('event:'))
        .map((block) => {
          const [, event, data] = /^event: (\w+)\ndata: (.*)$/s.exec(block)!;
          return { event: event!, data: JSON.parse(data!) };
        });
    },
  };
}

/** A task as Tasked's Rust client serialises a TaskDef: every absent option as null, spawn_output []. */
const taskDef = (fields: { id: string; executor: string; config?: unknown; depends_on?: string[]; retries?: number; timeout_secs?: number }) => ({
  id: fields.id,
  executor: fields.executor,
  config: fields.config ?? null,
  input: null,
  depends_on: fields.depends_on ?? [],
  timeout_secs: fields.timeout_secs ?? null,
  retries: fields.retries ?? null,
  backoff: null,
  condition: null,
  spawn_output: [],
});
const flowDef = (tasks: unknown[], failFast = false) => ({ tasks, webhooks: null, fail_fast: failFast });

describe("Tasked's REST API under /tasked", () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let client: ReturnType<typeof taskedClient>;
  let keyedBase: string;

  const finished = (id: string, timeoutMs = 30_000): Promise<any> =>
    waitFor(`flow ${id} to end`, async () => {
      const { body } = await client.getFlow(id);
      return body?.state !== 'running' ? body : undefined;
    }, timeoutMs);
  const stateOf = (flow: any) => Object.fromEntries(flow.tasks.map((t: any) => [t.id, t.state]));

  beforeAll(async () => {
    nats = await NatsServer.start();
    const keyedPort = await freePort();
    deployment = await Deployment.start(
      nats.url,
      [
        ['gateway', 'gateway'],
        ['planner', 'planner'],
        ['dispatcher', 'dispatcher'],
        ['executor', 'executor', { TASKSTREAM_QUEUE: '*' }],
        ['projector', 'projector'],
        ['scheduler', 'scheduler'],
        ['keyed', 'gateway', { TASKSTREAM_AUTH: 'keys', TASKSTREAM_BOOTSTRAP_ADMIN_KEY: ADMIN, TASKSTREAM_PORT: String(keyedPort) }],
      ],
      FAST_FAILOVER,
    );
    keyedBase = `http://127.0.0.1:${keyedPort}/tasked`;
    await deployment.ready(`http://127.0.0.1:${keyedPort}`);
    client = taskedClient(`${deployment.gatewayUrl}/tasked`);
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  it("creates queues with Tasked's defaults, refuses a second one and answers Tasked's errors", async () => {
    const created = await client.createQueue('tq-defaults');
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: 'tq-defaults',
      config: { concurrency: 10, max_retries: 3, timeout_secs: 300, backoff: { exponential: { initial_delay_ms: 1000 } }, rate_limit: null, retention_secs: null },
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    // As Tasked's client sends QueueConfig::default(), with a rate limit.
    const configured = await client.createQueue('tq-limited', { concurrency: 2, max_retries: 1, timeout_secs: 60, backoff: { fixed: { delay_ms: 100 } }, rate_limit: { max_burst: 5, per_second: 10 }, retention_secs: 2592000 });
    expect(configured.status).toBe(201);
    expect(configured.body.config).toMatchObject({ concurrency: 2, max_retries: 1, timeout_secs: 60, backoff: { fixed: { delay_ms: 100 } }, rate_limit: { max_burst: 5, per_second: 10 } });

    const again = await client.createQueue('tq-defaults');
    expect({ status: again.status, body: again.body }).toEqual({ status: 409, body: { error: 'queue_already_exists', message: "Queue 'tq-defaults' already exists" } });
    const bad = await client.createQueue('tq-bad', { concurrency: 0 });
    expect({ status: bad.status, error: bad.body.error }).toEqual({ status: 400, error: 'invalid_queue_config' });
    const pending = await client.createQueue('tq-bad', { max_pending_flows: 3 });
    expect(pending.body).toMatchObject({ error: 'invalid_queue_config', message: expect.stringContaining('max_pending_flows') });

    expect((await client.call('GET', '/api/v1/queues/tq-limited')).body.id).toBe('tq-limited');
    const listed = await client.call('GET', '/api/v1/queues');
    expect(listed.body.map((q: any) => q.id)).toEqual(expect.arrayContaining(['tq-defaults', 'tq-limited']));
    const missing = await client.call('GET', '/api/v1/queues/nope');
    expect({ status: missing.status, body: missing.body }).toEqual({ status: 404, body: { error: 'queue_not_found', message: "Queue 'nope' not found" } });
    expect((await client.call('DELETE', '/api/v1/queues/tq-limited')).status).toBe(204);
    expect((await client.call('GET', '/api/v1/queues/tq-limited')).status).toBe(404);
  });

  it("submits to a queue (201 FlowResponse), reports Tasked's states and counts, lists the queue's flows and streams events until flow_complete", async () => {
    await client.createQueue('tq-run');
    const submitted = await client.submitFlow(
      'tq-run',
      flowDef([
        taskDef({ id: 'build.linux', executor: 'noop' }),
        taskDef({ id: 'wait', executor: 'delay', config: { seconds: 0.2 }, depends_on: ['build.linux'] }),
        taskDef({ id: 'bad', executor: 'shell', config: { command: 'echo nope >&2; exit 3' }, retries: 0 }),
        taskDef({ id: 'after/bad', executor: 'noop', depends_on: ['bad'] }),
      ]),
    );
    expect(submitted.status).toBe(201);
    expect(submitted.headers.get('location')).toBe(`/tasked/api/v1/flows/${submitted.body.id}`);
    expect(submitted.body).toEqual({
      id: expect.any(String),
      queue_id: 'tq-run',
      state: 'running',
      task_count: 4,
      tasks_succeeded: 0,
      tasks_failed: 0,
      fail_fast: false,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    const id = submitted.body.id;

    const events = await client.events(id);
    const complete = events.at(-1)!;
    expect(complete).toEqual({ event: 'flow_complete', data: { flow_id: id, state: 'failed', task_count: 4, tasks_succeeded: 2, tasks_failed: 1 } });
    const lastState = (task: string) => events.filter((e) => e.event === 'task_state' && e.data.task_id === task).at(-1)!.data;
    expect(lastState('wait')).toMatchObject({ state: 'succeeded', output: { delayed_seconds: 0.2 }, error: null, started_at: expect.any(String), completed_at: expect.any(String) });
    expect(lastState('bad')).toMatchObject({ state: 'failed', error: expect.stringContaining('3') });
    expect(lastState('after/bad').state).toBe('cancelled');
    for (const e of events.filter((x) => x.event === 'task_state')) expect(['pending', 'ready', 'running', 'succeeded', 'failed', 'delayed', 'cancelled']).toContain(e.data.state);

    const flow = (await client.getFlow(id)).body;
    expect(flow).toMatchObject({ id, queue_id: 'tq-run', state: 'failed', task_count: 4, tasks_succeeded: 2, tasks_failed: 1 });
    expect(stateOf(flow)).toEqual({ 'build.linux': 'succeeded', wait: 'succeeded', bad: 'failed', 'after/bad': 'cancelled' });
    const bad = flow.tasks.find((t: any) => t.id === 'bad');
    expect(bad).toMatchObject({ flow_id: id, queue_id: 'tq-run', executor_type: 'shell', input: null, retries_remaining: 0, timeout_secs: 300, error: expect.any(String), created_at: flow.created_at });
    expect(flow.tasks.find((t: any) => t.id === 'wait')).toMatchObject({ retries_remaining: 3, output: { delayed_seconds: 0.2 } });

    const listed = await client.listFlows('tq-run');
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual([{ id, queue_id: 'tq-run', state: 'failed', task_count: 4, tasks_succeeded: 2, tasks_failed: 1, fail_fast: false, created_at: flow.created_at, updated_at: flow.updated_at }]);
    expect((await client.listFlows('nope')).body.error).toBe('queue_not_found');
  });

  it('shows a task between attempts as delayed, then failed with its retries used up', async () => {
    await client.createQueue('tq-retry');
    const { body } = await client.submitFlow('tq-retry', flowDef([{ ...taskDef({ id: 'flaky', executor: 'shell', config: { command: 'exit 1' }, retries: 1 }), backoff: { fixed: { delay_ms: 500 } } }]));
    const events = await client.events(body.id);
    const states = events.filter((e) => e.event === 'task_state').map((e) => e.data.state);
    expect(states).toEqual(expect.arrayContaining(['running', 'delayed', 'failed']));
    expect(states.indexOf('delayed')).toBeLessThan(states.lastIndexOf('failed'));
    expect(events.at(-1)!.data).toMatchObject({ state: 'failed', tasks_failed: 1 });
    expect((await client.getFlow(body.id)).body.tasks[0]).toMatchObject({ state: 'failed', retries_remaining: 0 });
  });

  it("acks a waiting approval with Tasked's body: a wrong code 403, a wrong status 400, then 204 and the flow goes on", async () => {
    await client.createQueue('tq-approve');
    const { body } = await client.submitFlow('tq-approve', flowDef([taskDef({ id: 'release/gate', executor: 'approval', config: { message: 'Ship it?' } }), taskDef({ id: 'deploy', executor: 'noop', depends_on: ['release/gate'] })]));
    const gate = await waitFor('the gate to wait', async () => {
      const task = (await client.getFlow(body.id)).body.tasks.find((t: any) => t.id === 'release/gate');
      return task.output?.awaiting_approval ? task : undefined;
    });
    expect(gate).toMatchObject({ state: 'running', output: { awaiting_approval: true, message: 'Ship it?', code: expect.stringMatching(CODE) } });

    const wrong = await client.ack(body.id, 'release/gate', { status: 'success', code: '0'.repeat(32) });
    expect({ status: wrong.status, error: wrong.body.error }).toEqual({ status: 403, error: 'invalid_approval_code' });
    const badStatus = await client.ack(body.id, 'release/gate', { status: 'approved', code: gate.output.code });
    expect({ status: badStatus.status, body: badStatus.body }).toEqual({ status: 400, body: { error: 'invalid_status', message: "Invalid ack status: 'approved'. Must be 'success' or 'failed'" } });
    const noTask = await client.ack(body.id, 'nope', { status: 'success' });
    expect({ status: noTask.status, body: noTask.body }).toEqual({ status: 404, body: { error: 'task_not_found', message: `Task 'nope' not found in flow '${body.id}'` } });

    // TaskAck::Success as Tasked's client sends it (no code field: the code rides in our extension).
    const ok = await client.ack(body.id, 'release/gate', { status: 'success', output: { ticket: 'OPS-1' }, approved_by: 'alice', code: gate.output.code });
    expect(ok.status).toBe(204);
    const done = await finished(body.id);
    expect(done.state).toBe('succeeded');
    expect(done.tasks.find((t: any) => t.id === 'release/gate').output).toEqual({ ticket: 'OPS-1', approved_by: 'alice', acked_at: expect.any(String) });
    const late = await client.ack(body.id, 'release/gate', { status: 'failed', error: 'too late', retryable: false, code: gate.output.code });
    expect({ status: late.status, error: late.body.error }).toEqual({ status: 409, error: 'invalid_state_transition' });
  });

  it('cancels with DELETE (204, the flow cancelled when answered), and again on a finished flow (204, state kept)', async () => {
    await client.createQueue('tq-cancel');
    const { body } = await client.submitFlow('tq-cancel', flowDef([taskDef({ id: 'long', executor: 'delay', config: { seconds: 60 }, timeout_secs: 120 })]));
    await waitFor('the delay to run', async () => ((await client.getFlow(body.id)).body.tasks[0].state === 'running' ? true : undefined));
    expect((await client.cancelFlow(body.id)).status).toBe(204);
    const cancelled = (await client.getFlow(body.id)).body;
    expect({ state: cancelled.state, task: cancelled.tasks[0].state }).toEqual({ state: 'cancelled', task: 'cancelled' });
    expect((await client.cancelFlow(body.id)).status).toBe(204);
    expect((await client.getFlow(body.id)).body.state).toBe('cancelled');
    const events = await client.events(body.id);
    expect(events.at(-1)).toEqual({ event: 'flow_complete', data: { flow_id: body.id, state: 'cancelled', task_count: 1, tasks_succeeded: 0, tasks_failed: 0 } });

    const unknown = await client.cancelFlow('01JAAAAAAAAAAAAAAAAAAAAAAA');
    expect({ status: unknown.status, body: unknown.body }).toEqual({ status: 404, body: { error: 'flow_not_found', message: "Flow '01JAAAAAAAAAAAAAAAAAAAAAAA' not found" } });
  });

  it('holds at most 100 event streams on a gateway, a closed one making room', async () => {
    await client.createQueue('tq-streams');
    const { body } = await client.submitFlow('tq-streams', flowDef([taskDef({ id: 'long', executor: 'delay', config: { seconds: 60 }, timeout_secs: 120 })]));
    const open = async () => {
      const abort = new AbortController();
      const response = await fetch(`${deployment.gatewayUrl}/tasked/api/v1/flows/${body.id}/events`, { signal: abort.signal });
      return { response, abort };
    };
    const streams = await Promise.all(Array.from({ length: 100 }, open));
    try {
      expect(streams.map((s) => s.response.status)).toEqual(Array(100).fill(200));
      const refused = await open();
      expect({ status: refused.response.status, body: await refused.response.json() }).toEqual({ status: 503, body: { error: 'too_many_connections', message: 'Too many concurrent SSE connections' } });
      streams.pop()!.abort.abort();
      const again = await waitFor('a stream to be let in once one closed', async () => {
        const next = await open();
        if (next.response.status === 200) return next;
        await next.response.body?.cancel();
        return undefined;
      });
      streams.push(again);
    } finally {
      for (const s of streams) s.abort.abort();
      await client.cancelFlow(body.id);
    }
  });

  it('waits for an event stream client that stops reading, without buffering for it, and frees the stream once it leaves', async () => {
    await client.createQueue('tq-slow');
    // About 11 MB of task_state events, more than loopback's socket buffers hold for a client not reading.
    const tasks = [
      taskDef({ id: 'seed', executor: 'noop', config: { output: 'x'.repeat(96 * 1024) } }),
      ...Array.from({ length: 60 }, (_, i) => taskDef({ id: `double-${i}`, executor: 'transform', config: { expr: 'tasks.seed.output + tasks.seed.output' }, depends_on: ['seed'] })),
    ];
    const { body } = await client.submitFlow('tq-slow', flowDef(tasks));
    await waitFor('the flow to end', async () => ((await client.getFlow(body.id)).body.state === 'succeeded' ? true : undefined), 30_000);
    const streamsOpen = async () => {
      const text = await (await fetch(`${deployment.gatewayUrl}/metrics`)).text();
      return Number(/^taskstream_gateway_tasked_event_streams (\d+)$/m.exec(text)?.[1]);
    };
    expect(await streamsOpen()).toBe(0);

    // A reader gets the whole stream and its end.
    const whole = await client.events(body.id);
    expect(whole.filter((e) => e.event === 'task_state' && e.data.state === 'succeeded')).toHaveLength(61);
    expect(whole.at(-1)!.event).toBe('flow_complete');

    const { port } = new URL(deployment.gatewayUrl);
    const slow = connect(Number(port), '127.0.0.1');
    slow.pause();
    slow.write(`GET /tasked/api/v1/flows/${body.id}/events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    await waitFor('the slow stream to open', async () => ((await streamsOpen()) === 1 ? true : undefined));
    // The reader above had all of it within this time: this stream is held by its client, not ended.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await streamsOpen()).toBe(1);
    slow.destroy();
    await waitFor('the stream to be freed once its client left', async () => ((await streamsOpen()) === 0 ? true : undefined));
  });

  it("creates, lists, reads, replaces and deletes schedules with Tasked's shapes", async () => {
    await client.createQueue('tq-sched');
    const flow = flowDef([taskDef({ id: 'tick', executor: 'noop' })]);
    const created = await client.call('POST', '/api/v1/queues/tq-sched/schedules', { cron: '0 3 * * *', flow, name: 'nightly', enabled: true });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      queue_id: 'tq-sched',
      name: 'nightly',
      cron: '0 3 * * *',
      enabled: true,
      last_triggered_at: null,
      next_run_at: expect.stringMatching(/T03:00:00/),
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
    const id = created.body.id;
    expect((await client.call('GET', '/api/v1/queues/tq-sched/schedules')).body).toEqual([created.body]);
    expect((await client.call('GET', `/api/v1/schedules/${id}`)).body).toEqual(created.body);
    const paused = await client.call('PUT', `/api/v1/schedules/${id}`, { cron: '0 4 * * *', flow, name: null, enabled: false });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ id, cron: '0 4 * * *', enabled: false, next_run_at: null });

    const badCron = await client.call('POST', '/api/v1/queues/tq-sched/schedules', { cron: 'every day', flow, enabled: true });
    expect({ status: badCron.status, error: badCron.body.error }).toEqual({ status: 400, error: 'invalid_cron_expression' });
    const noExecutor = await client.call('POST', '/api/v1/queues/tq-sched/schedules', { cron: '0 3 * * *', flow: flowDef([taskDef({ id: 'x', executor: 'teleport' })]), enabled: true });
    expect({ status: noExecutor.status, error: noExecutor.body.error }).toEqual({ status: 400, error: 'no_executor' });
    expect((await client.call('POST', '/api/v1/queues/nope/schedules', { cron: '0 3 * * *', flow, enabled: true })).body.error).toBe('queue_not_found');

    // A schedule every second (6 fields, seconds first, as Tasked reads them): its runs are flows of the queue, in Tasked's shape.
    const every = await client.call('POST', '/api/v1/queues/tq-sched/schedules', { cron: '* * * * * *', flow, name: null, enabled: true });
    expect(every.status).toBe(201);
    const runs = await waitFor('a scheduled run to end', async () => {
      const listed = (await client.listFlows('tq-sched')).body as any[];
      return listed.some((f) => f.state === 'succeeded') ? listed : undefined;
    }, 20_000);
    expect(runs[0]).toMatchObject({ queue_id: 'tq-sched', task_count: 1 });
    expect((await client.call('GET', `/api/v1/schedules/${every.body.id}`)).body).toMatchObject({ name: null, last_triggered_at: expect.any(String), next_run_at: expect.any(String) });
    expect((await client.call('DELETE', `/api/v1/schedules/${every.body.id}`)).status).toBe(204);

    expect((await client.call('DELETE', `/api/v1/schedules/${id}`)).status).toBe(204);
    const gone = await client.call('GET', `/api/v1/schedules/${id}`);
    expect({ status: gone.status, body: gone.body }).toEqual({ status: 404, body: { error: 'schedule_not_found', message: `Schedule '${id}' not found` } });
  });

  it("exports a flow as Tasked's document, its artifacts inlined when asked, the checksum verifiable", async () => {
    await client.createQueue('tq-export');
    const { body } = await client.submitFlow('tq-export', flowDef([taskDef({ id: 'write', executor: 'shell', config: { command: 'printf hello > "$TASKED_ARTIFACTS/out.txt"; echo done' } }), taskDef({ id: 'next', executor: 'noop', depends_on: ['write'] })]));
    await finished(body.id);
    const plain = await client.exportFlow(body.id, false);
    expect(plain.status).toBe(200);
    const { checksum, ...rest } = plain.body;
    expect(checksum).toBe(createHash('sha256').update(JSON.stringify(rest)).digest('hex'));
    expect(plain.body).toMatchObject({
      version: 1,
      flow: { id: body.id, queue_id: 'tq-export', state: 'succeeded', task_count: 2, tasks_succeeded: 2, tasks_failed: 0, trigger_depth: 0, flow_def: { fail_fast: false } },
      exported_at: expect.any(String),
    });
    expect(plain.body).not.toHaveProperty('artifacts');
    expect(plain.body.tasks.map((t: any) => [t.id, t.executor_type, t.state, t.depends_on])).toEqual([
      ['write', 'shell', 'succeeded', undefined],
      ['next', 'noop', 'succeeded', ['write']],
    ]);
    expect(plain.body.tasks[0].output).toMatchObject({ exit_code: 0, stdout: 'done\n' });

    const withArtifacts = await client.exportFlow(body.id, true);
    expect(withArtifacts.body.artifacts).toEqual([{ name: 'out.txt', size_bytes: 5, task: 'write', data_base64: Buffer.from('hello').toString('base64') }]);
    expect((await client.call('GET', `/api/v1/flows/${body.id}/artifacts`)).body).toEqual(['out.txt']);
    expect((await client.call('GET', `/api/v1/flows/${body.id}/export?format=zip`)).body.error).toBe('invalid_format');

    // format=tar: a gzipped tar of export.json and the artifacts, as Tasked's CLI writes it out.
    const tar = await fetch(`${deployment.gatewayUrl}/tasked/api/v1/flows/${body.id}/export?format=tar`);
    expect(tar.status).toBe(200);
    expect(tar.headers.get('content-type')).toBe('application/gzip');
    const dir = mkdtempSync(join(tmpdir(), 'tasked-export-'));
    try {
      writeFileSync(join(dir, 'export.tar.gz'), Buffer.from(await tar.arrayBuffer()));
      execFileSync('tar', ['-xzf', join(dir, 'export.tar.gz'), '-C', dir]);
      expect(readFileSync(join(dir, 'artifacts', 'out.txt'), 'utf8')).toBe('hello');
      const archived = JSON.parse(readFileSync(join(dir, 'export.json'), 'utf8'));
      expect(archived).toMatchObject({ version: 1, flow: { id: body.id }, artifacts: [{ name: 'out.txt', size_bytes: 5, task: 'write', path: 'artifacts/out.txt' }] });
      const { checksum: archivedChecksum, ...unsigned } = archived;
      expect(archivedChecksum).toBe(createHash('sha256').update(JSON.stringify(unsigned)).digest('hex'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("answers bad requests with Tasked's codes and statuses", async () => {
    await client.createQueue('tq-errors');
    const unknown = await client.getFlow('01JAAAAAAAAAAAAAAAAAAAAAAA');
    expect({ status: unknown.status, body: unknown.body }).toEqual({ status: 404, body: { error: 'flow_not_found', message: "Flow '01JAAAAAAAAAAAAAAAAAAAAAAA' not found" } });
    expect((await client.getFlow('not-a-flow-id')).body.error).toBe('flow_not_found');
    // An id that is no flow id never reaches a subject filter: `*` names no flow, not every flow.
    for (const path of ['/api/v1/flows/*/export', '/api/v1/flows/*/events', '/api/v1/flows/a.b/artifacts']) expect((await client.call('GET', path)).body, path).toEqual({ error: 'flow_not_found', message: expect.stringMatching(/^Flow '.*' not found$/) });
    const noQueue = await client.submitFlow('nope', flowDef([taskDef({ id: 'a', executor: 'noop' })]));
    expect({ status: noQueue.status, body: noQueue.body }).toEqual({ status: 404, body: { error: 'queue_not_found', message: "Queue 'nope' not found" } });
    const notJson = await client.call('POST', '/api/v1/queues/tq-errors/flows', '{"tasks": [');
    expect({ status: notJson.status, error: notJson.body.error }).toEqual({ status: 400, error: 'invalid_json' });
    const noExecutor = await client.submitFlow('tq-errors', flowDef([taskDef({ id: 'a', executor: 'teleport' })]));
    expect({ status: noExecutor.status, error: noExecutor.body.error }).toEqual({ status: 400, error: 'no_executor' });
    const cycle = await client.submitFlow('tq-errors', flowDef([taskDef({ id: 'a', executor: 'noop', depends_on: ['b'] }), taskDef({ id: 'b', executor: 'noop', depends_on: ['a'] })]));
    expect({ status: cycle.status, error: cycle.body.error, problems: cycle.body.problems.length }).toEqual({ status: 400, error: 'invalid_graph', problems: 1 });
    const missingExecutor = await client.submitFlow('tq-errors', { tasks: [{ id: 'a' }] });
    expect({ status: missingExecutor.status, error: missingExecutor.body.error }).toEqual({ status: 422, error: 'invalid_flow' });
    const media = await client.call('POST', '/api/v1/queues/tq-errors/flows', '<flow/>', { 'content-type': 'application/xml' });
    expect({ status: media.status, error: media.body?.error }).toEqual({ status: 415, error: 'unsupported_media_type' });
    const once = flowDef([taskDef({ id: 'a', executor: 'noop' })]);
    const first = await client.call('POST', '/api/v1/queues/tq-errors/flows', once, { 'idempotency-key': 'tasked-once' });
    const retried = await client.call('POST', '/api/v1/queues/tq-errors/flows', once, { 'idempotency-key': 'tasked-once' });
    expect({ status: retried.status, id: retried.body.id }).toEqual({ status: 201, id: first.body.id });
    expect((await client.call('POST', '/api/v1/queues/tq-errors/flows', once, { 'idempotency-key': 'é' })).body.error).toBe('invalid_parameter');
    const route = await client.call('GET', '/api/v1/nowhere');
    expect({ status: route.status, error: route.body.error }).toEqual({ status: 404, error: 'not_found' });
    for (const answer of [unknown, noQueue, notJson, noExecutor, cycle, route]) expect(typeof answer.body.message).toBe('string');
  });

  it('asks a key of every route but /tasked/healthz when keys are on, and takes the same API keys', async () => {
    const anonymous = taskedClient(keyedBase);
    expect(await anonymous.call('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const refused = await anonymous.call('GET', '/api/v1/queues');
    expect({ status: refused.status, body: refused.body }).toEqual({ status: 401, body: { error: 'unauthorized', message: 'Invalid or missing API key' } });
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    expect((await taskedClient(keyedBase, 'ts_wrong_key').call('GET', '/api/v1/queues')).status).toBe(401);
    expect((await anonymous.call('GET', '/api/v1/nowhere')).status).toBe(401);

    const admin = taskedClient(keyedBase, ADMIN);
    expect((await admin.createQueue('tq-keyed')).status).toBe(201);
    const readKey = await fetch(`${keyedBase.replace(/\/tasked$/, '')}/api/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'reader', scope: 'read' }) });
    const reader = taskedClient(keyedBase, ((await readKey.json()) as any).key);
    expect((await reader.listFlows('tq-keyed')).status).toBe(200);
    const forbidden = await reader.submitFlow('tq-keyed', flowDef([taskDef({ id: 'a', executor: 'noop' })]));
    expect({ status: forbidden.status, error: forbidden.body.error }).toEqual({ status: 403, error: 'forbidden' });
    const submitted = await admin.submitFlow('tq-keyed', flowDef([taskDef({ id: 'a', executor: 'noop' })]));
    expect(submitted.status).toBe(201);
    const events = await reader.events(submitted.body.id);
    expect(events.at(-1)!.event).toBe('flow_complete');
  });
});
