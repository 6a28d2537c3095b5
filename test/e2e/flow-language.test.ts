import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer, waitFor } from '@taskstream/testing';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment } from '../support/deployment.js';
import { ROOT, timeline } from '../support/stack.js';

/*
 * Tasked's flow-language scenarios, run from the flows in examples/ through every service as its
 * own process. Examples that call http name http://127.0.0.1:8787 (the demo's endpoint) and write
 * files under /tmp/taskstream-example-*: the tests point both at their own endpoint and directory.
 */

const EXAMPLE_URL = 'http://127.0.0.1:8787';
const EXAMPLE_FILES = '/tmp/taskstream-example-';
/** Distinct, so finding it anywhere it must not be is unambiguous. */
const SECRET = 'tok-Qm7Zr4Lx9Wv2Kp';
const TERMINAL_FLOW_EVENTS = ['flow.succeeded', 'flow.failed', 'flow.cancelled'];

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A loopback endpoint: GET /count answers {"n": 21} as JSON, anything else {"ok": true}; every request is kept. */
async function startEndpoint(): Promise<{ url: string; requests: Received[]; server: Server }> {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url === '/count' ? '{"n": 21}' : '{"ok": true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, requests, server };
}

/** An example flow, its endpoint and files pointed at the test's own. */
function example(file: string, to: { url?: string; dir?: string } = {}): any {
  let text = readFileSync(join(ROOT, 'examples', file), 'utf8');
  if (text.includes(EXAMPLE_URL)) {
    if (to.url === undefined) throw new Error(`${file} calls ${EXAMPLE_URL}: give the test's endpoint`);
    text = text.split(EXAMPLE_URL).join(to.url);
  }
  if (text.includes(EXAMPLE_FILES)) {
    if (to.dir === undefined) throw new Error(`${file} writes ${EXAMPLE_FILES}*: give the test's directory`);
    text = text.split(EXAMPLE_FILES).join(`${to.dir}/`);
  }
  return JSON.parse(text);
}

const tasksOf = (view: any): Record<string, any> => Object.fromEntries(view.tasks.map((t: any) => [t.id, t]));
const statusesOf = (view: any): Record<string, string> => Object.fromEntries(view.tasks.map((t: any) => [t.id, t.status]));

describe("the flow language: Tasked's scenarios through the services", () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;
  let endpoint: Awaited<ReturnType<typeof startEndpoint>>;
  /** Everything the services print once running, whole (the deployment keeps only a tail). */
  const logs: string[] = [];
  const dirs: string[] = [];
  const tempDir = (prefix: string) => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };

  const post = (flow: unknown) => fetch(`${base}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
  const submit = async (flow: unknown): Promise<string> => {
    const response = await post(flow);
    const text = await response.text();
    if (response.status !== 202) throw new Error(`submission failed: ${response.status} ${text}`);
    return JSON.parse(text).flow_id;
  };
  const viewText = async (id: string) => (await fetch(`${base}/api/v1/flows/${id}`)).text();
  const eventsText = async (id: string) => (await fetch(`${base}/api/v1/flows/${id}/events`)).text();
  const events = async (id: string): Promise<any[]> => JSON.parse(await eventsText(id)).events;
  const settled = (id: string, timeoutMs = 20_000): Promise<any> =>
    waitFor(`flow ${id} to finish`, async () => {
      const view = JSON.parse(await viewText(id));
      return ['succeeded', 'failed', 'cancelled'].includes(view.status) ? view : undefined;
    }, timeoutMs);
  /** Every message of the flow's WebSocket feed, history then live, up to its terminal event. */
  const feed = (id: string): Promise<string[]> =>
    new Promise((resolve, reject) => {
      const messages: string[] = [];
      const socket = new WebSocket(`${base.replace('http', 'ws')}/api/v1/flows/${id}/feed`);
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`the feed of ${id} did not reach the flow's end: ${messages.length} messages`));
      }, 10_000);
      socket.on('message', (data) => {
        const text = data.toString();
        messages.push(text);
        if (TERMINAL_FLOW_EVENTS.includes(JSON.parse(text).event?.type)) {
          clearTimeout(timer);
          socket.close();
          resolve(messages);
        }
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  const requestsOf = (id: string, task: string) => endpoint.requests.filter((r) => r.headers['idempotency-key'] === `${id}:${task}`);
  const serviceLogs = () => `${deployment.logs()}\n${logs.join('')}`;

  beforeAll(async () => {
    nats = await NatsServer.start();
    // Debug logging, so every line a flow could produce is there to be searched for the secret.
    deployment = await Deployment.start(nats.url, ALL_SERVICES, { TASKSTREAM_ALLOW_SHELL: 'true', TASKSTREAM_LOG_LEVEL: 'debug' });
    for (const service of deployment.processes.values()) {
      service.child.stdout?.on('data', (c: Buffer) => logs.push(c.toString()));
      service.child.stderr?.on('data', (c: Buffer) => logs.push(c.toString()));
    }
    base = deployment.gatewayUrl;
    endpoint = await startEndpoint();
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
    await new Promise<void>((resolve) => (endpoint ? endpoint.server.close(() => resolve()) : resolve()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('skips a task whose condition is false, and its dependents still run', async () => {
    const id = await submit(example('condition-skip.json'));
    const view = await settled(id);
    expect(view.status).toBe('succeeded');
    expect(statusesOf(view)).toEqual({ check: 'succeeded', deploy: 'skipped', notify: 'succeeded' });
    const tasks = tasksOf(view);
    expect(tasks.deploy.output).toEqual({ skipped: true, condition: 'tasks.check.output.changed == true' });
    expect(tasks.deploy.attempts).toEqual([]);
    expect(tasks.notify.output).toEqual({ exit_code: 0, stdout: 'notified\n', stderr: '' });
    const history = await events(id);
    expect(history.find((e) => e.event.type === 'task.skipped').event).toMatchObject({ task_id: 'deploy', data: { reason: 'condition is false', condition: 'tasks.check.output.changed == true' } });
    expect(timeline(history)).not.toContain('task.started:deploy');
  });

  it('fails a task whose condition errors with CONDITION_ERROR; its dependents are upstream_failed and the flow fails', async () => {
    const id = await submit(example('condition-error.json'));
    const view = await settled(id);
    expect(view.status).toBe('failed');
    expect(statusesOf(view)).toEqual({ check: 'succeeded', deploy: 'failed', notify: 'upstream_failed' });
    const { deploy, notify } = tasksOf(view);
    expect(deploy.error).toMatchObject({ code: 'CONDITION_ERROR', retryable: false });
    expect(deploy.error.message).toMatch(/^condition evaluation failed: .*"approved"/);
    expect(notify.upstream).toEqual(['deploy']);
    const history = await events(id);
    // Decided by the planner: the task never reached an executor.
    expect(timeline(history).filter((t) => t.endsWith(':deploy'))).toEqual(['task.failed:deploy']);
    expect(history.at(-1).event).toMatchObject({ type: 'flow.failed', data: { failed_tasks: ['deploy'], upstream_failed_tasks: ['notify'] } });
  });

  it('passes an object into an http body through a whole-string reference, keeping its types', async () => {
    const flow = example('reference-object-body.json', { url: endpoint.url });
    const id = await submit(flow);
    const view = await settled(id);
    expect(view.status).toBe('succeeded');
    const [request] = requestsOf(id, 'deploy');
    expect(request).toMatchObject({ method: 'POST', url: '/deploy', headers: { 'content-type': 'application/json' } });
    const body = JSON.parse(request!.body);
    expect(body).toEqual({
      release: { version: '2.4.1', replicas: 3, canary_ratio: 0.25, auto_rollback: true, regions: ['eu-west-1', 'us-east-1'], owner: null },
      replicas: 3,
      note: 'v2.4.1 x3',
    });
    expect(typeof body.replicas).toBe('number');
    expect(typeof body.release.canary_ratio).toBe('number');
  });

  it('prints a reference inside shell text exactly, and never runs a hostile value', async () => {
    const id = await submit(example('reference-in-text.json'));
    const view = await settled(id);
    expect(view.status).toBe('succeeded');
    const { greet, quote } = tasksOf(view);
    // Shell stdout keeps its trailing newline, so the quoted text ends with two.
    expect(greet.output.stdout).toBe('hello,  world\n');
    expect(quote.output.stdout).toBe('pre-hello,  world\n\n');

    const dir = tempDir('taskstream-injection-');
    const flow = example('shell-injection.json', { dir });
    const hostile: string = flow.tasks[0].config.output.title;
    for (const part of ['; touch', '$(touch', '`touch', '&& touch', '| touch', `'`, '"']) expect(hostile).toContain(part);
    const hostileId = await submit(flow);
    const hostileView = await settled(hostileId);
    expect(hostileView.status).toBe('succeeded');
    expect(tasksOf(hostileView).echo.output).toEqual({ exit_code: 0, stdout: `pre-${hostile}\n`, stderr: '' });
    expect(readdirSync(dir)).toEqual([]);
    for (const name of ['semicolon', 'subshell', 'backtick', 'and', 'pipe']) expect(existsSync(join(dir, name))).toBe(false);
  });

  it('fails a task whose reference names a missing path with REFERENCE_ERROR, naming the reference', async () => {
    const id = await submit(example('reference-missing.json'));
    const view = await settled(id);
    expect(view.status).toBe('failed');
    expect(statusesOf(view)).toEqual({ fetch: 'succeeded', use: 'failed', report: 'upstream_failed' });
    const { use } = tasksOf(view);
    expect(use.error).toMatchObject({ code: 'REFERENCE_ERROR', retryable: false });
    expect(use.error.message).toContain('${tasks.fetch.output.item_count}');
    expect(use.error.message).toContain('has no field "item_count" (fields: items, total)');
    expect(timeline(await events(id)).filter((t) => t.endsWith(':use'))).toEqual(['task.failed:use']);
  });

  it('gives a task its secrets and keeps their values out of the events, the view, the feed and the logs', async () => {
    const set = await fetch(`${base}/api/v1/secrets/API_TOKEN`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: SECRET }) });
    expect(set.status).toBe(200);
    const dir = tempDir('taskstream-secrets-');
    const id = await submit(example('secrets.json', { url: endpoint.url, dir }));
    const missingId = await submit({
      name: 'secret-missing',
      tasks: [
        { id: 'use', executor: 'shell', config: { command: 'echo "${secrets.NOT_SET_ANYWHERE}"' }, retries: 0 },
        { id: 'complain', executor: 'shell', config: { command: 'echo "bad token ${secrets.API_TOKEN}" >&2; exit 1' }, retries: 0 },
      ],
    });
    const [view, missing] = await Promise.all([settled(id), settled(missingId)]);

    // The tasks saw the value.
    expect(view.status).toBe('succeeded');
    expect(readFileSync(join(dir, 'token.txt'), 'utf8')).toBe(SECRET);
    expect(requestsOf(id, 'call').map((r) => r.headers.authorization)).toEqual([`Bearer ${SECRET}`]);
    // A step that prints it records it redacted.
    expect(tasksOf(view).leak.output).toEqual({ exit_code: 0, stdout: 'token=[redacted]\n', stderr: '' });

    // Nothing anyone can read afterwards holds it.
    const feedText = (await feed(id)).join('\n');
    expect(feedText).toContain('flow.succeeded');
    const audit = await (await fetch(`${base}/api/v1/events?since=1970-01-01`)).text();
    expect(audit).toContain(id);
    const readable = {
      events: await eventsText(id),
      view: await viewText(id),
      feed: feedText,
      'audit export': audit,
      "failing flow's events": await eventsText(missingId),
      "failing flow's view": await viewText(missingId),
    };
    for (const [where, text] of Object.entries(readable)) expect(text.includes(SECRET), `the secret in the ${where}`).toBe(false);

    // An unknown secret fails its task, naming it.
    expect(missing.status).toBe('failed');
    expect(tasksOf(missing).use.error).toMatchObject({ code: 'SECRET_NOT_FOUND', retryable: false, message: expect.stringContaining('"NOT_SET_ANYWHERE"') });
    // A failing step's error quotes what it printed, redacted too.
    expect(tasksOf(missing).complain.error).toMatchObject({ code: 'EXIT_CODE', stderr_tail: 'bad token [redacted]', message: 'command exited with code 1: bad token [redacted]' });

    await new Promise((r) => setTimeout(r, 300)); // lines about the last events reach the pipes
    const text = serviceLogs();
    expect(text).toContain('/api/v1/secrets/API_TOKEN');
    expect(text.includes(SECRET), 'the secret in the service logs').toBe(false);
  });

  it('runs always (cleanup) and one_failed (alert) tasks after a failure, and the flow still fails', async () => {
    const id = await submit(example('cleanup-and-alert.json'));
    const view = await settled(id);
    expect(view.status).toBe('failed');
    expect(statusesOf(view)).toEqual({ build: 'failed', deploy: 'upstream_failed', alert: 'succeeded', celebrate: 'upstream_failed', cleanup: 'succeeded' });
    const { build, alert, cleanup } = tasksOf(view);
    expect(alert.output.stdout).toBe('paging: the build failed\n');
    expect(cleanup.output.stdout).toBe('removing the workspace\n');
    expect(Date.parse(alert.started_at)).toBeGreaterThanOrEqual(Date.parse(build.finished_at));
    expect((await events(id)).at(-1).event).toMatchObject({ type: 'flow.failed', data: { failed_tasks: ['build'], upstream_failed_tasks: ['deploy', 'celebrate'], succeeded: 2, total: 5 } });
  });

  it('fail_fast: a failure stops a running shell step and cancels pending tasks; the always task still runs and the flow fails', async () => {
    const started = Date.now();
    const id = await submit(example('fail-fast.json'));
    const view = await settled(id, 25_000);
    const elapsed = Date.now() - started;
    expect(view.status).toBe('failed');
    expect(statusesOf(view)).toEqual({ slow: 'cancelled', broken: 'failed', 'after-slow': 'cancelled', cleanup: 'succeeded' });
    const { slow, cleanup } = tasksOf(view);
    // `slow` was running its `sleep 30`, and was stopped well before it would have ended.
    expect(slow.started_at).toBeDefined();
    expect(Date.parse(slow.finished_at) - Date.parse(slow.started_at)).toBeLessThan(10_000);
    expect(elapsed).toBeLessThan(15_000);
    expect(tasksOf(view)['after-slow'].attempts).toEqual([]);
    expect(Date.parse(cleanup.started_at)).toBeGreaterThanOrEqual(Date.parse(slow.finished_at));
    expect(view.error).toContain('fail_fast');
    const history = await events(id);
    expect(history.find((e) => e.event.type === 'flow.fail_fast').event.data).toMatchObject({ task_id: 'broken' });
    expect(history.at(-1).event).toMatchObject({ type: 'flow.failed', data: { failed_tasks: ['broken'] } });
  });

  it("feeds a transform's output, computed from an http JSON answer, into a later http body", async () => {
    const id = await submit(example('transform-to-http.json', { url: endpoint.url }));
    const view = await settled(id);
    expect(view.status).toBe('succeeded');
    const { count, double } = tasksOf(view);
    expect(count.output).toEqual({ status: 200, body: '{"n": 21}', json: { n: 21 } });
    expect(double.output).toEqual({ total: 42, half: 10.5, status: 200 });
    expect(requestsOf(id, 'count').map((r) => r.method)).toEqual(['GET']);
    const [report] = requestsOf(id, 'report');
    expect(report).toMatchObject({ method: 'POST', url: '/report' });
    expect(JSON.parse(report!.body)).toEqual({ total: 42, half: 10.5, status: 200 });
  });

  it('refuses invalid expressions, non-ancestor references and unknown executors at submission, listing every problem', async () => {
    const invalid = await post(example('invalid-references.json'));
    expect(invalid.status).toBe(400);
    const { error } = (await invalid.json()) as any;
    expect(error.code).toBe('INVALID_FLOW');
    expect(error.problems).toEqual([
      { path: 'tasks[1].condition', message: expect.stringMatching(/^at column 27: /) },
      { path: 'tasks[2].config.command', message: expect.stringContaining('${tasks.report.output.url} refers to "report", which is not upstream of "use"') },
      { path: 'tasks[4].config.expr', message: expect.stringContaining('unknown_name') },
    ]);

    const container = await post({ name: 'tasked-container', tasks: [{ id: 'build', executor: 'container', config: { image: 'alpine:3', command: ['make'] } }] });
    expect(container.status).toBe(400);
    expect(((await container.json()) as any).error).toMatchObject({
      code: 'INVALID_FLOW',
      problems: [{ path: 'tasks[0].executor', message: `Tasked's "container" executor is not available in Taskstream; available: shell, http, noop, delay, transform, approval, wait, trigger, spawn` }],
    });
  });

  it('accepts unknown fields with warnings naming them, recorded in flow.submitted', async () => {
    const response = await post(example('unknown-fields.json'));
    expect(response.status).toBe(202);
    const answer = (await response.json()) as any;
    expect(answer.warnings).toEqual([
      'priorty: unknown field "priorty" ignored; remove it or check its spelling',
      expect.stringMatching(/^tasks\[0\]\.retires: unknown field "retires" ignored/),
    ]);
    const view = await settled(answer.flow_id);
    expect(view.status).toBe('succeeded');
    const submitted = (await events(answer.flow_id)).find((e) => e.event.type === 'flow.submitted').event;
    expect(submitted.data.definition.warnings).toEqual(answer.warnings);
  });

  it('runs tasks whose ids hold dots and slashes, and references reach their outputs', async () => {
    const id = await submit(example('odd-task-ids.json'));
    const view = await settled(id);
    expect(view.status).toBe('succeeded');
    expect(statusesOf(view)).toEqual({ 'build.linux': 'succeeded', 'gen/x': 'succeeded', package: 'succeeded' });
    expect(tasksOf(view).package.output.stdout).toBe('linux-amd64.tar.gz\n|x_grpc.pb.go');
  });

  it('leaves the secret in no service log by the end', () => {
    expect(serviceLogs().includes(SECRET)).toBe(false);
  });
});
