import { fold } from '@taskstream/domain';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceProcess, TestStack } from '../support/stack.js';

/** An endpoint that holds each request `holdMs` and records arrivals and the most in flight at once. */
async function meteredEndpoint(holdMs: number) {
  const arrivals: Array<{ at: number; tenant: string }> = [];
  let inFlight = 0;
  const perTenant = new Map<string, number>();
  const maxPerTenant = new Map<string, number>();
  let maxInFlight = 0;
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    const tenant = new URL(req.url!, 'http://x').searchParams.get('tenant') ?? '';
    arrivals.push({ at: Date.now(), tenant });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    perTenant.set(tenant, (perTenant.get(tenant) ?? 0) + 1);
    maxPerTenant.set(tenant, Math.max(maxPerTenant.get(tenant) ?? 0, perTenant.get(tenant)!));
    req.resume();
    setTimeout(() => {
      inFlight--;
      perTenant.set(tenant, perTenant.get(tenant)! - 1);
      res.end('{}');
    }, holdMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    arrivals,
    get maxInFlight() {
      return maxInFlight;
    },
    resetMax() {
      maxInFlight = 0;
    },
    maxPerTenant,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Most starts inside any window of `ms` milliseconds. */
function maxInWindow(times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

const httpTasks = (n: number, url: string, extra: (i: number) => Record<string, unknown> = () => ({})) =>
  Array.from({ length: n }, (_, i) => ({ id: `call-${i}`, executor: 'http', config: { url }, ...extra(i) }));

async function putQueue(base: { inject?: TestStack['inject'] } | string, name: string, policy: unknown) {
  if (typeof base === 'string') {
    const response = await fetch(`${base}/api/v1/queues/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(policy) });
    expect(response.status).toBe(200);
    return;
  }
  const response = await base.inject!({ method: 'PUT', url: `/api/v1/queues/${name}`, payload: JSON.stringify(policy), headers: { 'content-type': 'application/json' } });
  expect(response.statusCode, response.body).toBe(200);
}

function startTimes(events: any[]): number[] {
  return events.filter((e) => e.event.type === 'task.started').map((e) => Date.parse(e.event.time));
}

/** When each task was dispatched (admitted): the dispatch its work item records, carried by its first start. */
function dispatchTimes(events: any[]): number[] {
  // The fold records each task's dispatch from its first start.
  return Object.values(fold(events.map((e) => e.event))?.tasks ?? {}).flatMap((task) => (task.dispatched_at === undefined ? [] : [Date.parse(task.dispatched_at)]));
}

describe('queue limits through the embedded stack', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await TestStack.start({ concurrency: 32 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("holds Tasked's example: 50 calls at 10/s, burst 5, at most 5 at once", async () => {
    const endpoint = await meteredEndpoint(150);
    try {
      // Warm the pipeline so first-request latency does not bunch arrivals at the endpoint.
      await stack.settled(await stack.submit({ queue: 'api', tasks: httpTasks(10, `${endpoint.url}/warm`) }));
      endpoint.arrivals.length = 0;
      endpoint.resetMax();
      await putQueue(stack, 'api', { concurrency: 5, rate_limit: { per_second: 10, max_burst: 5 } });
      const submittedAt = Date.now();
      const id = await stack.submit({ queue: 'api', tasks: httpTasks(50, `${endpoint.url}/call`) });
      const view = await stack.settled(id, 30_000);
      const elapsed = Date.now() - submittedAt;
      expect(view.status).toBe('succeeded');
      expect(endpoint.arrivals).toHaveLength(50);
      expect(endpoint.maxInFlight).toBeLessThanOrEqual(5);
      // At the endpoint, delivery latency varies (up to ~0.5 s on a loaded CI machine), so a
      // one-second window of arrivals may hold admissions from 1.5 s: burst 5 + 10/s x 1.5 s = 20.
      // Three dispatchers over-admitting would each pass 15 and show far more.
      expect(maxInWindow(endpoint.arrivals.map((a) => a.at), 1000)).toBeLessThanOrEqual(20);
      expect(elapsed).toBeGreaterThanOrEqual(4500);
      const events = await stack.events(id);
      const dispatched = dispatchTimes(events);
      // Admissions in any interval T are at most 5 + 10 T. Dispatch and start times are stamped
      // after admission (publishing, the dispatch window, the executor's pull), which can bunch
      // them by up to ~0.2 s on a loaded machine: 5 + 10 x 1.2 = 17 in a one-second window.
      expect(maxInWindow(dispatched, 1000)).toBeLessThanOrEqual(17);
      expect(maxInWindow(startTimes(events), 1000)).toBeLessThanOrEqual(17);
      // Each held task says why, once.
      const throttled = events.filter((e) => e.event.type === 'task.throttled');
      expect(throttled.length).toBeGreaterThan(0);
      expect(new Set(throttled.map((e) => `${e.event.task_id}:${e.event.data.reason}`)).size).toBe(throttled.length);
      expect(throttled.every((e) => ['rate', 'concurrency'].includes(e.event.data.reason))).toBe(true);
      const queue = (await stack.inject({ method: 'GET', url: '/api/v1/queues/api' })).json();
      expect(queue).toMatchObject({ name: 'api', running: 0, policy: { concurrency: 5 } });
    } finally {
      await endpoint.close();
    }
  });

  it("shows why a task waits in the flow's status", async () => {
    await putQueue(stack, 'single', { concurrency: 1 });
    const id = await stack.submit({ queue: 'single', tasks: [{ id: 'first', executor: 'delay', config: { ms: 1500 } }, { id: 'second', executor: 'noop' }] });
    const waiting = await waitFor('the second task to be throttled', async () => {
      const view = await stack.view(id);
      return view.tasks[1].waiting_reason ? view.tasks[1] : undefined;
    });
    expect(waiting).toMatchObject({ status: 'ready', waiting_reason: 'concurrency' });
    const done = await stack.settled(id);
    expect(done.tasks[1].waiting_reason).toBeUndefined();
  });

  it('limits each concurrency key without letting one tenant starve another', async () => {
    const endpoint = await meteredEndpoint(200);
    try {
      await putQueue(stack, 'tenants', { per_key_concurrency: 2 });
      const a = await stack.submit({ queue: 'tenants', tasks: httpTasks(12, `${endpoint.url}/?tenant=A`, () => ({ concurrency_key: 'A' })) });
      const b = await stack.submit({ queue: 'tenants', tasks: httpTasks(4, `${endpoint.url}/?tenant=B`, () => ({ concurrency_key: 'B' })) });
      await stack.settled(a);
      await stack.settled(b);
      expect(endpoint.maxPerTenant.get('A')).toBeLessThanOrEqual(2);
      expect(endpoint.maxPerTenant.get('B')).toBeLessThanOrEqual(2);
      const lastA = Math.max(...endpoint.arrivals.filter((x) => x.tenant === 'A').map((x) => x.at));
      const lastB = Math.max(...endpoint.arrivals.filter((x) => x.tenant === 'B').map((x) => x.at));
      expect(lastB).toBeLessThan(lastA);
    } finally {
      await endpoint.close();
    }
  });

  it('lets a later high-priority task run before earlier low-priority ones', async () => {
    await putQueue(stack, 'prio', { concurrency: 1 });
    const blocker = await stack.submit({ queue: 'prio', tasks: [{ id: 'blocker', executor: 'delay', config: { ms: 1500 } }] });
    await waitFor('the blocker to run', async () => ((await stack.view(blocker)).tasks[0].status === 'running' ? true : undefined));
    const low = await stack.submit({ queue: 'prio', tasks: Array.from({ length: 4 }, (_, i) => ({ id: `low-${i}`, executor: 'noop', priority: 0 })) });
    const high = await stack.submit({ queue: 'prio', tasks: [{ id: 'urgent', executor: 'noop', priority: 10 }] });
    await waitFor('everyone to wait', async () => ((await stack.view(high)).tasks[0].waiting_reason ? true : undefined));
    await stack.settled(low);
    await stack.settled(high);
    const urgentStart = startTimes(await stack.events(high))[0]!;
    const lowStarts = startTimes(await stack.events(low));
    expect(lowStarts.every((t) => t >= urgentStart)).toBe(true);
  });

  it('applies the queue policy a flow carries, and its task defaults', async () => {
    const id = await stack.submit({
      queue: 'carried',
      queue_config: { concurrency: 2, max_retries: 2, backoff: { type: 'fixed', initial_delay_ms: 10 } },
      tasks: [{ id: 'flaky', executor: 'shell', config: { command: '[ "$TASKSTREAM_ATTEMPT" -ge 2 ]' } }],
    });
    const view = await stack.settled(id);
    expect(view.status).toBe('succeeded');
    expect(view.tasks[0].attempts).toHaveLength(2);
    const started = (await stack.events(id)).find((e) => e.event.type === 'task.started');
    expect(started.event.data.dispatch).toMatchObject({ queue: 'carried', retries: 2, backoff: { type: 'fixed', initial_delay_ms: 10 } });
    expect((await stack.inject({ method: 'GET', url: '/api/v1/queues/carried' })).json().policy).toMatchObject({ concurrency: 2 });
  });

  it('rejects an invalid queue policy, saying what to fix', async () => {
    const response = await stack.inject({
      method: 'PUT',
      url: '/api/v1/queues/bad',
      payload: JSON.stringify({ concurrency: 0, rate_limit: { per_second: -5 }, colour: 'red' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.code).toBe('INVALID_QUEUE_POLICY');
    expect(error.problems).toEqual(
      expect.arrayContaining([
        { path: 'concurrency', message: expect.stringContaining('at least 1') },
        { path: 'rate_limit.per_second', message: expect.stringContaining('at least 1/86400') },
        { path: 'colour', message: expect.stringContaining('unknown field "colour"') },
      ]),
    );
    const missing = await stack.inject({ method: 'GET', url: '/api/v1/queues/never-configured' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.message).toMatch(/runs with the default: no rate or concurrency limit/);
    const deleted = await stack.inject({ method: 'DELETE', url: '/api/v1/queues/prio' });
    expect(deleted.statusCode).toBe(204);
    const list = (await stack.inject({ method: 'GET', url: '/api/v1/queues' })).json();
    expect(list.queues.map((q: any) => q.name)).not.toContain('prio');
  });
});

describe('queue limits with several dispatcher processes', () => {
  let nats: NatsServer;
  let services: ServiceProcess[] = [];
  let gateway: string;

  beforeAll(async () => {
    nats = await NatsServer.start();
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    const env = { TASKSTREAM_NATS_URL: nats.url, TASKSTREAM_ACK_WAIT_MS: '3000' };
    services = [
      ServiceProcess.start('gateway', { ...env, TASKSTREAM_PORT: String(port) }),
      ServiceProcess.start('planner', env),
      ServiceProcess.start('projector', env),
      ServiceProcess.start('executor', { ...env, TASKSTREAM_QUEUE: 'api', TASKSTREAM_CONCURRENCY: '32' }),
      ServiceProcess.start('dispatcher', env),
      ServiceProcess.start('dispatcher', env),
      ServiceProcess.start('dispatcher', env),
    ];
    await waitFor('the gateway', async () => ((await fetch(`${gateway}/readyz`).catch(() => undefined))?.ok ? true : undefined));
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop('SIGKILL')));
    await nats?.stop();
  });

  async function run(flow: unknown) {
    const response = await fetch(`${gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
    const { flow_id } = (await response.json()) as any;
    return waitFor('the flow to end', async () => {
      const view = (await (await fetch(`${gateway}/api/v1/flows/${flow_id}`)).json()) as any;
      return ['succeeded', 'failed', 'cancelled'].includes(view.status) ? view : undefined;
    }, 60_000);
  }

  it('never over-admits with three dispatchers competing', async () => {
    const endpoint = await meteredEndpoint(150);
    try {
      // Warm the processes first: a cold executor delays its first requests by a few hundred
      // milliseconds, which would bunch arrivals at the endpoint without any over-admission.
      expect((await run({ queue: 'api', tasks: httpTasks(10, `${endpoint.url}/warm`) })).status).toBe('succeeded');
      endpoint.arrivals.length = 0;
      endpoint.resetMax();
      await putQueue(gateway, 'api', { concurrency: 5, rate_limit: { per_second: 10, max_burst: 5 } });
      const started = Date.now();
      const view = await run({ queue: 'api', tasks: httpTasks(50, `${endpoint.url}/call`) });
      expect(view.status).toBe('succeeded');
      expect(Date.now() - started).toBeGreaterThanOrEqual(4500);
      expect(endpoint.arrivals).toHaveLength(50);
      // Admissions, from the log: the limiter's own guarantee.
      const events = ((await (await fetch(`${gateway}/api/v1/flows/${view.flow_id}/events`)).json()) as any).events;
      const dispatched = dispatchTimes(events);
      expect(maxInWindow(dispatched, 1000)).toBeLessThanOrEqual(15);
      expect(endpoint.maxInFlight).toBeLessThanOrEqual(5);
      // At the endpoint, delivery latency varies (up to ~0.5 s on a loaded CI machine), so a
      // one-second window of arrivals may hold admissions from 1.5 s: burst 5 + 10/s x 1.5 s = 20.
      // Three dispatchers over-admitting would each pass 15 and show far more.
      expect(maxInWindow(endpoint.arrivals.map((a) => a.at), 1000)).toBeLessThanOrEqual(20);
    } finally {
      await endpoint.close();
    }
  });

  it('loses no waiting task and leaks no slot when a dispatcher is killed', async () => {
    const endpoint = await meteredEndpoint(100);
    try {
      await putQueue(gateway, 'api', { concurrency: 2 });
      const response = await fetch(`${gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ queue: 'api', tasks: httpTasks(30, `${endpoint.url}/call`) }) });
      const { flow_id } = (await response.json()) as any;
      await waitFor('a few calls', () => (endpoint.arrivals.length >= 4 ? true : undefined));
      await services[4]!.stop('SIGKILL');
      const view = await waitFor('the flow to end', async () => {
        const v = (await (await fetch(`${gateway}/api/v1/flows/${flow_id}`)).json()) as any;
        return ['succeeded', 'failed'].includes(v.status) ? v : undefined;
      }, 60_000);
      expect(view.status).toBe('succeeded');
      expect(endpoint.maxInFlight).toBeLessThanOrEqual(2);
      expect(endpoint.arrivals.length).toBeGreaterThanOrEqual(30);
      expect(view.tasks.every((t: any) => t.status === 'succeeded')).toBe(true);
      // Releases the killed dispatcher had in hand come back after the ack wait (3 s here).
      const queue = await waitFor('every slot to be given back', async () => {
        const q = (await (await fetch(`${gateway}/api/v1/queues/api`)).json()) as any;
        return q.running === 0 ? q : undefined;
      }, 20_000);
      expect(queue.name).toBe('api');
    } finally {
      await endpoint.close();
    }
  });
});

