import { evolve, toFlowView, type FlowState } from '@taskstream/domain';
import { connectNats, jetstream, Kvm } from '@taskstream/nats';
import { freePort, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceProcess } from '../support/stack.js';

describe('planners and projectors as several instances', () => {
  let nats: NatsServer;
  let gateway: string;
  const services: ServiceProcess[] = [];
  const env = () => ({ TASKSTREAM_NATS_URL: nats.url, TASKSTREAM_LEASE_MS: '3000' });

  beforeAll(async () => {
    nats = await NatsServer.start();
    const port = await freePort();
    gateway = `http://127.0.0.1:${port}`;
    services.push(
      ServiceProcess.start('gateway', { ...env(), TASKSTREAM_PORT: String(port) }),
      ServiceProcess.start('dispatcher', env()),
      ServiceProcess.start('executor', { ...env(), TASKSTREAM_CONCURRENCY: '16' }),
      ServiceProcess.start('planner', env()),
      ServiceProcess.start('planner', env()),
      ServiceProcess.start('projector', env()),
      ServiceProcess.start('projector', env()),
    );
    await waitFor('the gateway', async () => ((await fetch(`${gateway}/readyz`).catch(() => undefined))?.ok ? true : undefined));
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop('SIGKILL')));
    await nats?.stop();
  });

  const flow = (i: number) => ({
    name: `scale-${i}`,
    tasks: [
      { id: 'a', executor: 'delay', config: { ms: 20 } },
      { id: 'b', executor: 'noop', depends_on: ['a'] },
      { id: 'c', executor: 'delay', config: { ms: 10 }, depends_on: ['a'] },
      { id: 'd', executor: 'noop', depends_on: ['b', 'c'] },
    ],
  });

  async function submitAll(n: number, offset: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const response = await fetch(`${gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow(offset + i)) });
      ids.push(((await response.json()) as any).flow_id);
    }
    return ids;
  }

  /** Every flow succeeded and its stored view equals a fresh fold of its log. */
  async function expectConsistent(ids: string[]) {
    for (const id of ids) {
      const view = await waitFor(`flow ${id}`, async () => {
        const v = (await (await fetch(`${gateway}/api/v1/flows/${id}`)).json()) as any;
        return v.status === 'succeeded' ? v : undefined;
      }, 60_000);
      const { events } = (await (await fetch(`${gateway}/api/v1/flows/${id}/events`)).json()) as any;
      let state: FlowState | null = null;
      for (const e of events) state = evolve(state, e.event, e.seq);
      const stored = await waitFor(`view of ${id} to catch up`, async () => {
        const v = (await (await fetch(`${gateway}/api/v1/flows/${id}`)).json()) as any;
        return v.last_seq === state!.last_seq ? v : undefined;
      });
      expect(stored).toEqual(toFlowView(state!));
      expect(view.status).toBe('succeeded');
      const types = events.map((e: any) => e.event.type);
      expect(types.filter((t: string) => t === 'flow.succeeded')).toHaveLength(1);
      for (const task of ['a', 'b', 'c', 'd']) expect(events.filter((e: any) => e.event.type === 'task.succeeded' && e.event.task_id === task)).toHaveLength(1);
    }
  }

  it('shares the partitions between instances and folds every flow correctly', async () => {
    const nc = await connectNats({ servers: nats.url, name: 'leases' });
    try {
      const leases = await new Kvm(jetstream(nc)).open('ts_leases');
      const owners = await waitFor('both planners to own partitions', async () => {
        const seen = new Set<string>();
        for (let p = 0; p < 16; p++) {
          const entry = await leases.get(`planner.lease.${p}`);
          if (entry?.value.length) seen.add(entry.json<{ owner: string }>().owner);
        }
        return seen.size === 2 ? seen : undefined;
      }, 20_000);
      expect(owners.size).toBe(2);
    } finally {
      await nc.close();
    }
    await expectConsistent(await submitAll(30, 0));
  });

  it('moves a killed instance\'s flows to the survivors and still finishes every flow once', async () => {
    const ids = await submitAll(40, 100);
    await services[3]!.stop('SIGKILL');
    await services[5]!.stop('SIGKILL');
    await expectConsistent(ids);
    const stats = (await (await fetch(`${gateway}/api/v1/queues/default/stats`)).json()) as any;
    expect(stats).toMatchObject({ waiting: 0, running: 0, throttled: 0 });
    const finished = Object.values(stats.minutes as Record<string, { succeeded: number }>).reduce((n, m) => n + m.succeeded, 0);
    expect(finished).toBe(70 * 4);
  });
});
