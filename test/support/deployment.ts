import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { evolve, toFlowView, type FlowState } from '@taskstream/domain';
import { freePort, NatsServer, StopWaiting, waitFor } from '@taskstream/testing';
import { afterEach, expect } from 'vitest';
import { OPEN_GATEWAY, ServiceProcess } from './stack.js';

/** Every service once, as a deployment runs them. */
export const ALL_SERVICES: Array<[string, string]> = [
  ['gateway', 'gateway'],
  ['planner', 'planner'],
  ['dispatcher', 'dispatcher'],
  ['executor', 'executor'],
  ['projector', 'projector'],
];

/** Fast failover for tests: 2 s leases, held messages back after 2 s, shell steps on. */
export const FAST_FAILOVER = { TASKSTREAM_LEASE_MS: '2000', TASKSTREAM_ACK_WAIT_MS: '2000', TASKSTREAM_ALLOW_SHELL: 'true' };

/** Adds what a fault test measured to test/faults/last-run.json (quoted in docs/guarantees.md). */
export function recordMeasurement(name: string, value: unknown): void {
  const file = join(import.meta.dirname, '..', 'faults', 'last-run.json');
  const measured = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  measured[name] = value;
  writeFileSync(file, JSON.stringify(measured, null, 2) + '\n');
}

/** Services as separate processes that a test can kill and restart by name. */
export class Deployment {
  readonly processes = new Map<string, ServiceProcess>();
  private readonly specs = new Map<string, { service: string; env: Record<string, string> }>();
  gatewayUrl = '';

  constructor(private natsUrls: string) {}

  static async start(natsUrls: string, services: Array<[name: string, service: string, env?: Record<string, string>]>, common: Record<string, string> = {}): Promise<Deployment> {
    const deployment = new Deployment(natsUrls);
    for (const [name, service, env] of services) {
      // Gateways run without API keys, on loopback, unless the test says otherwise.
      const extra: Record<string, string> = { ...(service === 'gateway' && OPEN_GATEWAY), ...common, ...env };
      if (service === 'gateway') {
        const port = extra.TASKSTREAM_PORT ?? String(await freePort());
        extra.TASKSTREAM_PORT = port;
        if (!deployment.gatewayUrl) deployment.gatewayUrl = `http://127.0.0.1:${port}`;
      }
      deployment.specs.set(name, { service, env: extra });
      deployment.launch(name);
    }
    await deployment.ready(deployment.gatewayUrl, true);
    return deployment;
  }

  private launch(name: string) {
    const spec = this.specs.get(name)!;
    this.processes.set(name, ServiceProcess.start(spec.service, { TASKSTREAM_NATS_URL: this.natsUrls, ...spec.env }));
  }

  /**
   * Waits for the gateway to be ready. On a three-node cluster every service's first start creates
   * each stream and bucket replicated three times, which takes tens of seconds on a loaded machine.
   */
  async ready(url = this.gatewayUrl, noneExited = false): Promise<void> {
    await waitFor(
      `the gateway at ${url}`,
      async () => {
        // At the first start every process should be running: one that exited will not become ready.
        const gone = noneExited ? [...this.processes].find(([, p]) => p.exited) : undefined;
        if (gone) throw new StopWaiting(`the ${gone[0]} exited (${gone[1].child.exitCode ?? gone[1].child.signalCode}) before the deployment was ready:\n${this.logs()}`);
        return (await fetch(`${url}/readyz`).catch(() => undefined))?.ok ? true : undefined;
      },
      90_000,
    );
  }

  async kill(name: string): Promise<void> {
    await this.processes.get(name)!.stop('SIGKILL');
  }

  async restart(name: string, env: Record<string, string> = {}): Promise<void> {
    await this.kill(name);
    const spec = this.specs.get(name)!;
    this.specs.set(name, { ...spec, env: { ...spec.env, ...env } });
    this.launch(name);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => p.stop('SIGKILL')));
  }

  logs(): string {
    return [...this.processes].map(([name, p]) => `--- ${name}\n${p.logs()}`).join('\n');
  }
}

/** An HTTP endpoint that records each effect once per Idempotency-Key, and counts every call. */
export async function idempotentSink() {
  const effects = new Map<string, number>();
  let calls = 0;
  const server = createServer((req, res) => {
    calls++;
    const key = String(req.headers['idempotency-key'] ?? '');
    effects.set(key, (effects.get(key) ?? 0) + 1);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/effect`,
    effects,
    get calls() {
      return calls;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export const faultFlow = (sinkUrl: string, i: number) => ({
  name: `fault-${i}`,
  tasks: [
    { id: 'a', executor: 'http', config: { url: sinkUrl, method: 'POST' }, retries: 3, backoff: 'fixed' },
    { id: 'b', executor: 'noop', depends_on: ['a'], retries: 3, backoff: 'fixed' },
    { id: 'c', executor: 'delay', config: { ms: 30 }, depends_on: ['a'], retries: 3, backoff: 'fixed' },
    { id: 'd', executor: 'http', config: { url: sinkUrl, method: 'POST' }, depends_on: ['b', 'c'], retries: 3, backoff: 'fixed' },
  ],
});

export async function submitAll(gateway: () => string, flows: unknown[]): Promise<string[]> {
  const batch = Math.random().toString(36).slice(2, 8);
  const ids: string[] = [];
  for (const [i, flow] of flows.entries()) {
    // A client that retries with its Idempotency-Key until a gateway answers.
    const id = await waitFor(`submission ${i}`, async () => {
      const response = await fetch(`${gateway()}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `submit-${batch}-${i}` }, body: JSON.stringify(flow) }).catch(() => undefined);
      return response?.status === 202 ? ((await response.json()) as { flow_id: string }).flow_id : undefined;
    }, 60_000, 100);
    ids.push(id);
  }
  return ids;
}

export interface Settled {
  recoveryMs: number;
  taskOutcomes: number;
  duplicateOutcomes: number;
  redeliveredAttempts: number;
}

/**
 * Every accepted flow reached a terminal state; each task's success or failure appears once in the
 * log; the stored view equals a fresh fold of the log.
 */
export async function expectSettled(gateway: () => string, ids: string[], status = 'succeeded', timeoutMs = 120_000): Promise<Settled> {
  const started = Date.now();
  let outcomes = 0;
  let duplicates = 0;
  let redelivered = 0;
  for (const id of ids) {
    let last: any;
    try {
      await waitFor(`flow ${id} to end`, async () => {
        const v = (await (await fetch(`${gateway()}/api/v1/flows/${id}`).catch(() => undefined))?.json().catch(() => undefined)) as any;
        last = v;
        return v && ['succeeded', 'failed', 'cancelled'].includes(v.status) ? v : undefined;
      }, timeoutMs, 100);
    } catch (error) {
      // Whether the log lacks the flow's end (the planner) or only the view does (the projector).
      const history = (await (await fetch(`${gateway()}/api/v1/flows/${id}/events`).catch(() => undefined))?.json().catch(() => undefined)) as { events?: Array<{ seq: number; event: { type: string; task_id?: string } }> } | undefined;
      const logged = history?.events?.slice(-8).map((e) => `${e.seq} ${e.event.type}${e.event.task_id ? ` ${e.event.task_id}` : ''}`);
      throw new Error(`${(error as Error).message}; it stands at ${JSON.stringify(last?.tasks?.map((t: any) => [t.id, t.status, t.attempts.length, t.error?.code]))}, view status ${last?.status} at seq ${last?.last_seq}; the log ends ${JSON.stringify(logged ?? 'unread')}`);
    }
  }
  const recoveryMs = Date.now() - started;
  for (const id of ids) {
    const { events } = (await (await fetch(`${gateway()}/api/v1/flows/${id}/events`)).json()) as { events: Array<{ seq: number; event: any }> };
    let state: FlowState | null = null;
    for (const e of events) state = evolve(state, e.event, e.seq);
    if (state!.status !== status) {
      const failed = Object.values(state!.tasks).filter((t) => t.status !== 'succeeded');
      console.log(`FLOW ${id} ${state!.status}: ${JSON.stringify(failed.map((t) => ({ id: t.id, status: t.status, error: t.error, attempts: t.attempts })))}`);
    }
    expect(state!.status, `flow ${id}`).toBe(status);
    const terminal = new Map<string, number>();
    for (const { event } of events) {
      if (['task.succeeded', 'task.failed', 'task.timed_out', 'task.skipped', 'task.cancelled'].includes(event.type)) terminal.set(event.task_id, (terminal.get(event.task_id) ?? 0) + 1);
      if (event.type === 'task.started' && event.attempt > 1) redelivered++;
    }
    outcomes += terminal.size;
    duplicates += [...terminal.values()].filter((n) => n > 1).length;
    const view = await waitFor(`view of ${id}`, async () => {
      const v = (await (await fetch(`${gateway()}/api/v1/flows/${id}`)).json()) as any;
      return v.last_seq === state!.last_seq ? v : undefined;
    }, 30_000);
    expect(view).toEqual(toFlowView(state!));
  }
  expect(duplicates, 'a task success or failure recorded twice').toBe(0);
  return { recoveryMs, taskOutcomes: outcomes, duplicateOutcomes: duplicates, redeliveredAttempts: redelivered };
}

/** Nothing is left running or waiting in the queue's statistics. */
export async function expectIdle(gateway: () => string, queue = 'default', timeoutMs = 30_000): Promise<void> {
  await waitFor(`queue ${queue} to be idle`, async () => {
    const stats = (await (await fetch(`${gateway()}/api/v1/queues/${queue}/stats`)).json()) as any;
    return stats.waiting === 0 && stats.running === 0 ? true : undefined;
  }, timeoutMs);
}

export type Cleanup = (...steps: Array<() => Promise<void>>) => void;

/** Registers steps run after each test, the last registered first, each whatever the others did. */
export function cleanupAfterEach(): Cleanup {
  let steps: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const step of steps.reverse()) await step().catch(() => undefined);
    steps = [];
  });
  return (...added) => void steps.push(...added);
}

/** A nats-server and every service as its own process, all stopped after the test. */
export async function startDeployment(cleanup: Cleanup, env: Record<string, string> = {}) {
  const nats = await NatsServer.start();
  cleanup(async () => nats.stop());
  const deployment = await Deployment.start(nats.url, ALL_SERVICES, { ...FAST_FAILOVER, ...env });
  cleanup(async () => deployment.stop());
  return { nats, deployment, gateway: () => deployment.gatewayUrl };
}
