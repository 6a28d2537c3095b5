import { evolve, fold, toFlowView, type FlowEvent, type FlowState } from '@taskstream/domain';
import { NatsServer, waitFor } from '@taskstream/testing';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_SERVICES, Deployment } from '../support/deployment.js';
import { gatewayApi } from '../support/gateway-api.js';

/*
 * Map tasks through every service as its own process: a flow grows while it runs (flow.tasks_added),
 * and everything downstream (views, paged views, graphs, state-at, rerun, fork, the feed) sees it.
 */

describe('map tasks through the services', () => {
  let nats: NatsServer;
  let deployment: Deployment;
  let base: string;

  const api = gatewayApi(() => base);
  const { submit, view } = api;
  const settled = (id: string, timeoutMs = 60_000) => api.settled(id, timeoutMs);
  const events = (id: string): Promise<Array<{ seq: number; event: FlowEvent }>> => api.stored(id);
  const folded = async (id: string): Promise<FlowState> => {
    let state: FlowState | null = null;
    for (const { seq, event } of await events(id)) state = evolve(state, event, seq);
    return state!;
  };
  /** The stored view (paged or not) once it has caught up with the log equals a fresh fold of the log. */
  const viewMatchesLog = async (id: string) => {
    const state = await folded(id);
    const stored = await waitFor(`view of ${id}`, async () => {
      const v = await view(id);
      return v.last_seq === state.last_seq ? v : undefined;
    }, 30_000);
    expect(stored).toEqual(toFlowView(state));
    return stored;
  };

  beforeAll(async () => {
    nats = await NatsServer.start();
    deployment = await Deployment.start(nats.url, ALL_SERVICES);
    base = deployment.gatewayUrl;
  });
  afterAll(async () => {
    await deployment?.stop();
    await nats?.stop();
  });

  it('maps over 1,000 items with concurrency 50, and a fan-in reads the outputs in item order', async () => {
    const flowId = await submit({
      name: 'map-1000',
      tasks: [
        { id: 'count', executor: 'noop', config: { output: { n: 1000 } } },
        {
          id: 'each',
          executor: 'noop',
          depends_on: ['count'],
          map: { items: 'params.items', as: 'it', concurrency: 50 },
          config: { output: { i: '${it.i}', label: 'item-${it.i}' } },
        },
        { id: 'fan_in', executor: 'transform', depends_on: ['each'], config: { expr: 'tasks.each.output.map(r, r.output.i)' } },
      ],
      params: { items: Array.from({ length: 1000 }, (_, i) => ({ i })) },
    });
    const done = await settled(flowId, 240_000);
    expect(done.status).toBe('succeeded');
    expect(done.total).toBe(1003);
    const byId = Object.fromEntries(done.tasks.map((t: any) => [t.id, t]));
    expect(byId['each[999]']).toMatchObject({ status: 'succeeded', instance_of: 'each', output: { i: 999, label: 'item-999' } });

    const log = await events(flowId);
    const fanIn = log.find((e) => e.event.type === 'task.succeeded' && e.event.task_id === 'fan_in')!.event as any;
    expect(fanIn.data.output).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    // Never more than 50 instances between ready and their end, in the order the log holds them.
    let active = 0;
    let most = 0;
    for (const { event } of log) {
      if (!('task_id' in event) || !event.task_id.startsWith('each[')) continue;
      if (event.type === 'task.ready') most = Math.max(most, ++active);
      if (['task.succeeded', 'task.failed', 'task.timed_out', 'task.cancelled'].includes(event.type)) active--;
    }
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(50);
    const added = log.filter((e) => e.event.type === 'flow.tasks_added');
    expect(added.reduce((n, e) => n + (e.event as any).data.tasks.length, 0)).toBe(1000);
    // Past the paged-view threshold: the stored view is paged, and still equals the log's fold.
    await viewMatchesLog(flowId);
    const graph = await (await fetch(`${base}/api/v1/flows/${flowId}/graph`)).text();
    expect(graph).toContain('"each[999]" -> "each" [style=dashed];');
  }, 300_000);

  it('succeeds a map over an empty list with an empty output, and its dependents run', async () => {
    const id = await submit({
      tasks: [
        { id: 'each', executor: 'shell', map: { items: '[]' }, config: { command: 'exit 1' } },
        { id: 'after', executor: 'transform', depends_on: ['each'], config: { expr: 'size(tasks.each.output)' } },
      ],
    });
    const done = await settled(id);
    expect(done.tasks.map((t: any) => [t.id, t.status, t.output ?? t.error])).toEqual([
      ['each', 'succeeded', []],
      ['after', 'succeeded', 0],
    ]);
    expect((await events(id)).some((e) => e.event.type === 'flow.tasks_added')).toBe(false);
  });

  it('shows a grown flow at any sequence, in its feed, and reruns and forks it from its submitted definition', async () => {
    const flow = {
      params: { names: ['a', 'b', 'c'] },
      tasks: [
        { id: 'list', executor: 'transform', config: { expr: 'params.names.map(n, {"name": n})' } },
        { id: 'greet', executor: 'noop', depends_on: ['list'], map: { items: 'tasks.list.output', concurrency: 2 }, config: { output: 'hello ${item.name}' } },
        { id: 'all', executor: 'transform', depends_on: ['greet'], config: { expr: 'tasks.greet.output.map(r, r.output)' } },
      ],
    };
    const id = await submit(flow);
    const messages: any[] = [];
    const socket = new WebSocket(`${base.replace('http', 'ws')}/api/v1/flows/${id}/feed`);
    socket.on('message', (data) => messages.push(JSON.parse(data.toString())));
    const done = await settled(id);
    expect(done.status).toBe('succeeded');
    expect(done.tasks.find((t: any) => t.id === 'all').output).toEqual(['hello a', 'hello b', 'hello c']);
    await waitFor('the feed to reach the end', async () => (messages.some((m) => m.event?.type === 'flow.succeeded') ? true : undefined), 10_000);
    socket.close();
    expect(messages.filter((m) => m.event?.type === 'flow.tasks_added')).toHaveLength(1);

    const log = await events(id);
    const addedAt = log.find((e) => e.event.type === 'flow.tasks_added')!.seq;
    const before = (await (await fetch(`${base}/api/v1/flows/${id}/state?at=${addedAt - 1}`)).json()) as any;
    expect(before.state.tasks.map((t: any) => t.id)).toEqual(['list', 'greet', 'all']);
    const after = (await (await fetch(`${base}/api/v1/flows/${id}/state?at=${addedAt}`)).json()) as any;
    expect(after.state.tasks.map((t: any) => [t.id, t.status])).toEqual([
      ['list', 'succeeded'],
      ['greet', 'pending'],
      ['all', 'pending'],
      ['greet[0]', 'pending'],
      ['greet[1]', 'pending'],
      ['greet[2]', 'pending'],
    ]);
    expect(fold(log.map((e) => e.event))!.order).toHaveLength(6);

    // A rerun from the map task expands it again from the submitted definition.
    const rerun = await fetch(`${base}/api/v1/flows/${id}/rerun`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'greet' }) });
    expect(rerun.status).toBe(202);
    const rerunId = ((await rerun.json()) as any).flow_id;
    const rerunDone = await settled(rerunId);
    expect(rerunDone.status).toBe('succeeded');
    expect(rerunDone.tasks.map((t: any) => [t.id, t.status, t.reused ?? false])).toEqual([
      ['list', 'succeeded', true],
      ['greet', 'succeeded', false],
      ['all', 'succeeded', false],
      ['greet[0]', 'succeeded', false],
      ['greet[1]', 'succeeded', false],
      ['greet[2]', 'succeeded', false],
    ]);
    const submitted = (await events(rerunId)).find((e) => e.event.type === 'flow.submitted')!.event as any;
    expect(submitted.data.definition.tasks.map((t: any) => t.id)).toEqual(['list', 'greet', 'all']);
    expect(Object.keys(submitted.data.lineage.reused)).toEqual(['list']);

    // A fork at the point where the instances were added runs the map again, reusing what had succeeded.
    const fork = await fetch(`${base}/api/v1/flows/${id}/fork`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ at: addedAt }) });
    expect(fork.status).toBe(202);
    const forkId = ((await fork.json()) as any).flow_id;
    const forkDone = await settled(forkId);
    expect(forkDone.status).toBe('succeeded');
    expect(forkDone.tasks.find((t: any) => t.id === 'all').output).toEqual(['hello a', 'hello b', 'hello c']);
    await viewMatchesLog(forkId);
  });
});
