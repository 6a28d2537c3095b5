import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, NatsServer, StopWaiting, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordingEndpoint, ROOT, ServiceProcess, timeline } from '../support/stack.js';

describe('the five services as separate processes', () => {
  let nats: NatsServer;
  let services: ServiceProcess[] = [];
  let gateway: string;
  let endpoint: Awaited<ReturnType<typeof recordingEndpoint>>;

  beforeAll(async () => {
    nats = await NatsServer.start();
    endpoint = await recordingEndpoint();
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    const env = { TASKSTREAM_NATS_URL: nats.url };
    services = [
      ServiceProcess.start('gateway', { ...env, TASKSTREAM_PORT: String(port) }),
      ServiceProcess.start('planner', env),
      ServiceProcess.start('dispatcher', env),
      ServiceProcess.start('executor', { ...env, TASKSTREAM_QUEUE: 'default', TASKSTREAM_ALLOW_SHELL: 'true' }),
      ServiceProcess.start('executor', { ...env, TASKSTREAM_QUEUE: 'default', TASKSTREAM_ALLOW_SHELL: 'true' }),
      ServiceProcess.start('projector', env),
    ];
    await waitFor('the gateway to be ready', async () => {
      stopIfAnyExited();
      return (await fetch(`${gateway}/readyz`).catch(() => undefined))?.ok ? true : undefined;
    });
  });

  const everyLog = () => services.map((s) => `--- ${s.name}${s.exited ? ` (exited ${s.child.exitCode ?? s.child.signalCode})` : ''}\n${s.logs()}`).join('\n');
  const stopIfAnyExited = () => {
    const gone = services.find((s) => s.exited);
    if (gone) throw new StopWaiting(`the ${gone.name} exited (${gone.child.exitCode ?? gone.child.signalCode}):\n${everyLog()}`);
  };

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await endpoint?.close();
    await nats?.stop();
  });

  it('runs the Tasked example flow to completion, each service only talking through JetStream', async () => {
    const flow = JSON.parse(readFileSync(join(ROOT, 'examples', 'ci-pipeline.json'), 'utf8'));
    flow.tasks[3].config.url = `${endpoint.url}/deploy`;
    const submitted = await fetch(`${gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
    expect(submitted.status).toBe(202);
    const { flow_id } = (await submitted.json()) as any;
    expect(submitted.headers.get('location')).toBe(`/api/v1/flows/${flow_id}`);

    const view = await waitFor('the flow to succeed', async () => {
      stopIfAnyExited();
      const v = (await (await fetch(`${gateway}/api/v1/flows/${flow_id}`)).json()) as any;
      return v.status === 'succeeded' || v.status === 'failed' ? v : undefined;
    }, 30_000).catch((e: Error) => {
      throw e instanceof StopWaiting ? e : new Error(`${e.message}\n${everyLog()}`);
    });
    expect(view.status, everyLog()).toBe('succeeded');
    expect(view.tasks.map((t: any) => [t.id, t.status])).toEqual([
      ['build', 'succeeded'],
      ['test-unit', 'succeeded'],
      ['test-integ', 'succeeded'],
      ['deploy', 'succeeded'],
    ]);
    expect(view.tasks[0].output.stdout).toContain('built dist/app');

    // The deploy step reached the endpoint once, with the task's stable idempotency key.
    expect(endpoint.requests).toHaveLength(1);
    expect(endpoint.requests[0]!.headers['idempotency-key']).toBe(`${flow_id}:deploy`);
    expect(JSON.parse(endpoint.requests[0]!.body)).toEqual({ artifact: 'dist/app', environment: 'staging' });

    const { events } = (await (await fetch(`${gateway}/api/v1/flows/${flow_id}/events`)).json()) as any;
    const types = timeline(events);
    expect(types[0]).toBe('flow.submitted');
    expect(types.at(-1)).toBe('flow.succeeded');
    for (const task of ['build', 'test-unit', 'test-integ', 'deploy']) {
      const order = ['task.ready', 'task.started', 'task.succeeded'].map((t) => types.indexOf(`${t}:${task}`));
      expect(order.every((i) => i >= 0), `${task}: ${types.join(', ')}`).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
    }
    // A dispatch is recorded in its work item and carried by the start, not an event of its own.
    expect(types.filter((t: string) => t.startsWith('task.dispatched'))).toEqual([]);
    expect(types.indexOf('task.ready:deploy')).toBeGreaterThan(types.indexOf('task.succeeded:test-integ'));
    expect(events.map((e: any) => e.seq)).toEqual([...events.map((e: any) => e.seq)].sort((a: number, b: number) => a - b));
  });

  it('keeps every service running through bad input', async () => {
    const bad = await fetch(`${gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tasks": [' });
    expect(bad.status).toBe(400);
    expect(services.filter((s) => s.exited).map((s) => s.name), everyLog()).toEqual([]);
  });
});
