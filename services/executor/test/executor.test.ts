import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workSubject, type FlowEvent, type TaskSpec, type WorkItem } from '@taskstream/domain';
import { encodeJson, EventLog, newId, readFlowHistory } from '@taskstream/nats';
import { createContext, createLogger, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';
import { NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExecutor } from '../src/executor.js';
import { LOCAL_HTTP_ALLOW } from '../src/steps/address-policy.js';
import { alive, pidsIn } from './processes.js';

let nats: NatsServer;
let ctx: ServiceContext;
let executor: ServiceHandle;
let server: Server;
let baseUrl: string;
let dir: string;
const stopped: ServiceHandle[] = [];

/** Bodies the local endpoint answers with, by path. */
const answers = new Map<string, { type: string; body: string }>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'taskstream-executor-'));
  nats = await NatsServer.start();
  ctx = await createContext({ natsUrl: nats.url, name: 'executor-test', log: createLogger('executor', 'silent') });
  // Retries of a few seconds wait in memory, where a cancel must end them; a stubborn step gets a
  // long grace, so that it finishes on its own before it would be killed.
  executor = await startExecutor(ctx, { queue: 'default', shellEnabled: true, durableRetryAfterMs: 60_000, killGraceMs: 20_000, httpAllow: LOCAL_HTTP_ALLOW });
  server = createServer((req, res) => {
    req.resume();
    const answer = answers.get(req.url ?? '') ?? { type: 'text/plain', body: 'ok' };
    res.writeHead(200, { 'content-type': answer.type }).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  for (const handle of [executor, ...stopped]) await handle?.stop();
  await ctx?.nc.close();
  await nats?.stop();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  for (const pid of pidsIn(join(dir, 'pids'))) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function run(task: Partial<TaskSpec> & Pick<TaskSpec, 'executor' | 'config'>, queue = 'default'): Promise<string> {
  const flowId = newId();
  const spec: TaskSpec = { id: 't', depends_on: [], queue, priority: 0, ...task };
  const item: WorkItem = { version: 1, flow_id: flowId, task_id: 't', spec, idempotency_key: `${flowId}:t`, dispatched_at: new Date().toISOString() };
  await ctx.js.publish(workSubject(ctx.topo.layout, queue), encodeJson(item));
  return flowId;
}

async function events(flowId: string): Promise<FlowEvent[]> {
  return (await readFlowHistory(ctx.js, ctx.topo, flowId)).map((e) => e.event);
}

const TERMINAL = ['task.succeeded', 'task.failed', 'task.timed_out', 'task.cancelled'];

async function outcome(flowId: string): Promise<FlowEvent> {
  return waitFor(`task of flow ${flowId} to end`, async () => (await events(flowId)).find((e) => TERMINAL.includes(e.type)), 30_000);
}

async function cancel(flowId: string): Promise<void> {
  await new EventLog(ctx.js, ctx.topo).appendNew({ type: 'flow.cancel_requested', flow_id: flowId, data: { reason: 'test' } }, `${flowId}:cancel`);
}

describe('executor against a real nats-server', () => {
  it('a task timeout longer than Node holds in a timer (30 days) lets a short step finish', async () => {
    const flowId = await run({ executor: 'delay', config: { ms: 300 }, timeout_secs: 2_592_000 });
    expect(await outcome(flowId)).toMatchObject({ type: 'task.succeeded' });
    expect((await events(flowId)).filter((e) => e.type === 'task.attempt_failed')).toEqual([]);
  }, 40_000);

  it('an output nested 10,000 deep fails the task at once, naming the bound, without retrying', async () => {
    answers.set('/deep', { type: 'application/json', body: '['.repeat(10_000) + ']'.repeat(10_000) });
    const flowId = await run({ executor: 'http', config: { url: `${baseUrl}/deep`, method: 'GET' }, retries: 2 });
    const ended = await outcome(flowId);
    expect(ended).toMatchObject({ type: 'task.failed', data: { error: { code: 'OUTPUT_TOO_DEEP', retryable: false } } });
    expect((ended as { data: { error: { message: string } } }).data.error.message).toContain('64 levels');
    expect((await events(flowId)).filter((e) => e.type === 'task.started')).toHaveLength(1);
  }, 40_000);

  it('an output too large for one event fails the task with a clear error instead of failing to publish again and again', async () => {
    // 256 KiB of control characters: within the body cap, six times that as JSON, over 1 MiB.
    answers.set('/escaped', { type: 'text/plain', body: '\u0001'.repeat(256 * 1024) });
    const flowId = await run({ executor: 'http', config: { url: `${baseUrl}/escaped`, method: 'GET' } });
    const ended = await outcome(flowId);
    expect(ended).toMatchObject({ type: 'task.failed', data: { error: { code: 'OUTPUT_TOO_LARGE', retryable: false } } });
  }, 40_000);

  it('a failure whose output tails would not fit in an event is recorded cut to fit', async () => {
    const flowId = await run({ executor: 'shell', config: { command: "head -c 70000 /dev/zero | tr '\\000' '\\001'; head -c 70000 /dev/zero | tr '\\000' '\\002' >&2; exit 1" } });
    const ended = await outcome(flowId);
    expect(ended).toMatchObject({ type: 'task.failed', data: { error: { code: 'EXIT_CODE', exit_code: 1 } } });
    expect((await events(flowId)).filter((e) => e.type === 'task.attempt_failed')).toHaveLength(1);
  }, 40_000);

  it('a step that ignores the cancel and then succeeds is recorded cancelled, and no attempt of it failed or succeeded', async () => {
    const go = join(dir, 'go');
    const flowId = await run({ executor: 'shell', config: { command: `trap "" TERM; echo $$ >> ${join(dir, 'pids')}; touch ${join(dir, 'started')}; while [ ! -e ${go} ]; do sleep 0.05; done; echo done` } });
    await waitFor('the step to start', () => (existsSync(join(dir, 'started')) ? true : undefined), 20_000);
    await cancel(flowId);
    // The executor has seen the cancel once it signalled the step; the step finishes anyway.
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(go, '');
    expect(await outcome(flowId)).toMatchObject({ type: 'task.cancelled', data: { reason: 'flow cancelled while the task was running' } });
    const log = await events(flowId);
    expect(log.filter((e) => ['task.succeeded', 'task.attempt_failed', 'task.failed'].includes(e.type))).toEqual([]);
  }, 40_000);

  it('a cancel during a retry backoff ends the task there: no further attempt starts', async () => {
    const flowId = await run({ executor: 'shell', config: { command: 'exit 1' }, retries: 3, backoff: { type: 'fixed', initial_delay_ms: 4_000, max_delay_ms: 4_000, multiplier: 1, jitter: false } });
    await waitFor('a retry to be scheduled', async () => ((await events(flowId)).some((e) => e.type === 'task.retry_scheduled') ? true : undefined), 20_000);
    await cancel(flowId);
    expect(await outcome(flowId)).toMatchObject({ type: 'task.cancelled' });
    await new Promise((r) => setTimeout(r, 5_000));
    expect((await events(flowId)).filter((e) => e.type === 'task.started')).toHaveLength(1);
  }, 40_000);

  it('an executor that was not there when a flow was cancelled reads the cancel from the log and runs none of its tasks', async () => {
    const ran = join(dir, 'late-ran');
    const flowId = newId();
    await cancel(flowId);
    const late = await startExecutor(ctx, { queue: 'late', shellEnabled: true });
    stopped.push(late);
    const spec: TaskSpec = { id: 't', executor: 'shell', config: { command: `touch ${ran}` }, depends_on: [], queue: 'late', priority: 0 };
    await ctx.js.publish(workSubject(ctx.topo.layout, 'late'), encodeJson({ version: 1, flow_id: flowId, task_id: 't', spec, idempotency_key: `${flowId}:t`, dispatched_at: new Date().toISOString() } satisfies WorkItem));
    expect(await outcome(flowId)).toMatchObject({ type: 'task.cancelled', data: { reason: 'flow cancelled before the task started' } });
    expect(existsSync(ran)).toBe(false);
  }, 40_000);
});
