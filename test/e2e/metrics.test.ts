import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventSubject } from '@taskstream/domain';
import { connectNats, jetstream, newId, topology } from '@taskstream/nats';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployment } from '../support/deployment.js';
import { ROOT } from '../support/stack.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of the samples named `name` whose labels include `labels`; undefined when there is none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(url);
  expect(response.status, url).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

async function submit(gateway: string, flow: unknown): Promise<string> {
  const response = await fetch(`${gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
  expect(response.status).toBe(202);
  return ((await response.json()) as { flow_id: string }).flow_id;
}

async function settled(gateway: string, flowId: string): Promise<{ status: string; last_seq: number }> {
  return waitFor(`flow ${flowId} to end`, async () => {
    const view = (await (await fetch(`${gateway}/api/v1/flows/${flowId}`)).json()) as { status: string; last_seq: number };
    if (!['succeeded', 'failed', 'cancelled'].includes(view.status)) return undefined;
    const { events } = (await (await fetch(`${gateway}/api/v1/flows/${flowId}/events`)).json()) as { events: Array<{ seq: number }> };
    return view.last_seq === events.at(-1)!.seq ? view : undefined;
  }, 30_000);
}

async function eventCount(gateway: string, flowId: string): Promise<number> {
  return ((await (await fetch(`${gateway}/api/v1/flows/${flowId}/events`)).json()) as { events: unknown[] }).events.length;
}

/**
 * The projector's count of folded events once it reaches `count`. A flow's view is served from its
 * log until the projector has written it, so a settled flow says nothing about the projector: a
 * restarted one takes its partitions over only when the dead instance's leases run out.
 */
async function projectedEvents(metricsUrl: string, count: number): Promise<number | undefined> {
  await waitFor(`the projector to count ${count} events`, async () => ((valueOf(await scrape(metricsUrl), 'taskstream_projector_events_total') ?? 0) >= count ? true : undefined), 30_000);
  return valueOf(await scrape(metricsUrl), 'taskstream_projector_events_total');
}

/** A shell step that fails on its first attempt and succeeds on the next, noop steps around it. */
function flakyFlow(marker: string) {
  return {
    name: 'metrics',
    tasks: [
      { id: 'first-step', executor: 'noop' },
      // Its retry waits 300 ms, over TASKSTREAM_DURABLE_RETRY_MS below: the work item is handed back and redelivered.
      { id: 'flaky-step', executor: 'shell', depends_on: ['first-step'], retries: 1, backoff: { type: 'fixed', delay_ms: 300 }, config: { command: `if [ -f '${marker}' ]; then echo again; else touch '${marker}'; exit 3; fi` } },
      { id: 'last-step', executor: 'noop', depends_on: ['flaky-step'] },
    ],
  };
}

const TASK_IDS = ['first-step', 'flaky-step', 'last-step'];
const SERVICES = ['gateway', 'planner', 'dispatcher', 'executor', 'projector'] as const;

/** Every label value of every sample of every scrape: none may name a flow or a task. */
function expectNoIds(scrapes: Sample[][], flowIds: string[]): void {
  const values = new Set(scrapes.flat().flatMap((s) => Object.values(s.labels)));
  for (const value of values) {
    expect(value).not.toMatch(/[0-9A-HJKMNP-TV-Z]{26}/);
    for (const id of [...flowIds, ...TASK_IDS]) expect(value).not.toContain(id);
  }
}

describe('each service serves Prometheus metrics on TASKSTREAM_METRICS_PORT', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  const ports = new Map<string, number>();
  const url = (service: string) => `http://127.0.0.1:${ports.get(service)}/metrics`;

  beforeAll(async () => {
    nats = await NatsServer.start();
    for (const service of SERVICES) ports.set(service, await freePort());
    const env = (service: string, extra: Record<string, string> = {}) => ({ TASKSTREAM_METRICS_PORT: String(ports.get(service)), ...extra });
    deployment = await Deployment.start(nats.url, [
      ['gateway', 'gateway', env('gateway')],
      ['planner', 'planner', env('planner')],
      // A free port of its own choosing, which it logs.
      ['dispatcher', 'dispatcher', { TASKSTREAM_METRICS_PORT: '0', TASKSTREAM_LOG_LEVEL: 'info' }],
      ['executor', 'executor', env('executor', { TASKSTREAM_ALLOW_SHELL: 'true', TASKSTREAM_DURABLE_RETRY_MS: '100' })],
      ['projector', 'projector', env('projector', { TASKSTREAM_LEASE_MS: '2000' })],
    ]);
    const logged = await waitFor('the dispatcher to log its metrics URL', () => /"url":"http:\/\/127\.0\.0\.1:(\d+)\/metrics"[^\n]*"msg":"serving metrics"/.exec(deployment.processes.get('dispatcher')!.logs())?.[1]);
    ports.set('dispatcher', Number(logged));
  });

  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  it('counts a flow in every service, with no flow or task id in any label', async () => {
    const gateway = deployment.gatewayUrl;
    const flowId = await submit(gateway, flakyFlow(join(mkdtempSync(join(tmpdir(), 'metrics-')), 'failed-once')));
    expect((await settled(gateway, flowId)).status, deployment.logs()).toBe('succeeded');

    const gw = await scrape(url('gateway'));
    expect(valueOf(gw, 'taskstream_gateway_flows_submitted_total', { queue: 'default' })).toBe(1);
    expect(valueOf(gw, 'taskstream_gateway_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/flows', status_class: '2xx' })).toBe(1);
    expect(valueOf(gw, 'taskstream_gateway_http_request_duration_seconds_count', { method: 'GET', route: '/api/v1/flows/:id', status_class: '2xx' })).toBeGreaterThan(0);
    expect(valueOf(gw, 'taskstream_gateway_feed_clients')).toBe(0);
    expect(valueOf(gw, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    // The same registry on the gateway's own port, without a key.
    expect(valueOf(parseMetrics(await (await fetch(`${gateway}/metrics`)).text()), 'taskstream_gateway_flows_submitted_total', { queue: 'default' })).toBe(1);

    const planner = await scrape(url('planner'));
    expect(valueOf(planner, 'taskstream_planner_flows_completed_total', { queue: 'default', status: 'succeeded' })).toBe(1);
    expect(valueOf(planner, 'taskstream_planner_decisions_total', { type: 'flow.started' })).toBe(1);
    expect(valueOf(planner, 'taskstream_planner_decisions_total', { type: 'task.ready' })).toBe(3);
    expect(valueOf(planner, 'taskstream_planner_decisions_total', { type: 'flow.succeeded' })).toBe(1);

    const dispatcher = await scrape(url('dispatcher'));
    expect(valueOf(dispatcher, 'taskstream_dispatcher_admissions_total', { queue: 'default' })).toBe(3);
    expect(valueOf(dispatcher, 'taskstream_dispatcher_ready_to_dispatch_seconds_count', { queue: 'default' })).toBe(3);
    expect(valueOf(dispatcher, 'taskstream_dispatcher_tasks_waiting', { queue: 'default' })).toBe(0);
    expect(valueOf(dispatcher, 'taskstream_dispatcher_throttles_total')).toBeUndefined();

    const executor = await scrape(url('executor'));
    expect(valueOf(executor, 'taskstream_executor_attempts_total', { executor: 'noop', queue: 'default', outcome: 'succeeded' })).toBe(2);
    expect(valueOf(executor, 'taskstream_executor_attempts_total', { executor: 'shell', queue: 'default', outcome: 'failed' })).toBe(1);
    expect(valueOf(executor, 'taskstream_executor_attempts_total', { executor: 'shell', queue: 'default', outcome: 'succeeded' })).toBe(1);
    expect(valueOf(executor, 'taskstream_executor_attempt_duration_seconds_count', { executor: 'shell', queue: 'default' })).toBe(2);
    expect(valueOf(executor, 'taskstream_executor_running_steps')).toBe(0);
    // The durable retry came back as a redelivery of its work item.
    expect(valueOf(executor, 'taskstream_redeliveries_total', { source: 'executor-default' })).toBe(1);

    const count = await eventCount(gateway, flowId);
    expect(await projectedEvents(url('projector'), count)).toBe(count);
    const projector = await scrape(url('projector'));
    expect(valueOf(projector, 'taskstream_projector_batch_write_seconds_count')).toBeGreaterThan(0);

    // Every consumer loop reports its lag, which is nothing once the flow is done.
    const lags = await waitFor('every consumer to be caught up', async () => {
      const scrapes = await Promise.all(SERVICES.map((s) => scrape(url(s))));
      const pending = scrapes.flat().filter((s) => s.name === 'taskstream_consumer_pending');
      return pending.every((s) => s.value === 0) ? pending : undefined;
    });
    const consumers = lags.map((s) => s.labels.consumer);
    expect(consumers).toEqual(expect.arrayContaining(['planner-p0', 'planner-p15', 'planner-timers', 'projector-p0', 'projector-p15', 'dispatcher', 'exec-default']));

    expectNoIds(await Promise.all(SERVICES.map((s) => scrape(url(s)))), [flowId]);
  });

  it('counts the messages set aside as dead letters, by source', async () => {
    const nc = await connectNats({ servers: nats.url, name: 'metrics-test' });
    try {
      await jetstream(nc).publish(eventSubject(topology().layout, newId(), 'task.ready'), new TextEncoder().encode('not an event'));
    } finally {
      await nc.close();
    }
    for (const [service, source] of [['planner', 'planner'], ['projector', 'projector'], ['dispatcher', 'dispatcher']] as const) {
      await waitFor(`the ${service} to set the message aside`, async () => ((valueOf(await scrape(url(service)), 'taskstream_dead_letters_total', { source }) ?? 0) >= 1 ? true : undefined));
      expect(valueOf(await scrape(url(service)), 'taskstream_dead_letters_total', { source })).toBe(1);
    }
  });

  it('does not count the log again when the projector rebuilds it', async () => {
    const gateway = deployment.gatewayUrl;
    await deployment.restart('projector', { TASKSTREAM_REBUILD: 'true' });
    // Live again once its consumer loops run: they start after the rebuild.
    await waitFor('the rebuilt projector to go live', async () => {
      const samples = await scrape(url('projector')).catch(() => undefined);
      return samples?.some((s) => s.name === 'taskstream_consumer_pending' && s.labels.source === 'projector') ? true : undefined;
    }, 30_000);
    const rebuilt = await scrape(url('projector'));
    expect(valueOf(rebuilt, 'taskstream_projector_events_total')).toBeUndefined();
    expect(valueOf(rebuilt, 'taskstream_projector_batch_write_seconds_count')).toBe(0);

    const flowId = await submit(gateway, { name: 'after-rebuild', tasks: [{ id: 'first-step', executor: 'noop' }] });
    expect((await settled(gateway, flowId)).status).toBe('succeeded');
    const count = await eventCount(gateway, flowId);
    expect(await projectedEvents(url('projector'), count)).toBe(count);
  });
});

describe('taskstream up', () => {
  it('prints where the five services share their metrics, and serves them at the gateway without a key', async () => {
    const nats = await NatsServer.start();
    const port = await freePort();
    const child = spawn(process.execPath, [join(ROOT, 'cli', 'bin', 'taskstream.js'), 'up', '--auth', '--port', String(port), '--nats', nats.url, '--log-level', 'warn'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const exited = new Promise((resolve) => child.on('exit', resolve));
    try {
      const metricsUrl = await waitFor(`the metrics URL in ${output}`, () => /^ {2}metrics (http:\/\/\S+)/m.exec(output)?.[1], 45_000, 100);
      expect(metricsUrl).toBe(`http://127.0.0.1:${port}/metrics`);
      const key = /^admin key: (ts_\S+)$/m.exec(output)![1]!;
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ tasks: [{ id: 'first-step', executor: 'noop' }] }) });
      expect(response.status).toBe(202);
      const samples = await waitFor('the flow to be counted by every service', async () => {
        const scraped = await scrape(metricsUrl);
        return valueOf(scraped, 'taskstream_planner_flows_completed_total', { status: 'succeeded' }) === 1 && (valueOf(scraped, 'taskstream_projector_events_total') ?? 0) >= 5 ? scraped : undefined;
      }, 30_000);
      expect(valueOf(samples, 'taskstream_gateway_flows_submitted_total', { queue: 'default' })).toBe(1);
      expect(valueOf(samples, 'taskstream_dispatcher_admissions_total', { queue: 'default' })).toBe(1);
      expect(valueOf(samples, 'taskstream_executor_attempts_total', { executor: 'noop', outcome: 'succeeded' })).toBe(1);
      expect(valueOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
      expect(new Set(samples.filter((s) => s.name === 'taskstream_consumer_pending').map((s) => s.labels.source))).toEqual(new Set(['planner', 'planner-timers', 'planner-signals', 'projector', 'dispatcher', 'dispatcher-release', 'executor-all', 'executor-webhooks']));
    } finally {
      child.kill('SIGINT');
      await exited;
      await nats.stop();
    }
  });
});
