import { derivedFlowId } from '@taskstream/nats';
import { NatsServer, waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { ALL_SERVICES, cleanupAfterEach, Deployment, expectSettled, FAST_FAILOVER, idempotentSink, recordMeasurement } from '../support/deployment.js';

const cleanup = cleanupAfterEach();

/*
 * Exactly once per scheduled time with three scheduler instances and no leader: two schedules fire
 * every second while one scheduler is killed for good (SIGKILL), another is killed and restarted,
 * and then nats-server is killed and restarted. Every scheduled time between a schedule's first run
 * and its last ran exactly once.
 */

const SCHEDULERS: Array<[string, string, Record<string, string>]> = [1, 2, 3].map((n) => [`scheduler-${n}`, 'scheduler', { TASKSTREAM_SCHEDULE_GRACE_MS: '2000' }]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the scheduler under faults', () => {
  it('three instances, one killed for good, one killed and restarted, then nats-server restarted, mid-run: each scheduled time ran exactly once, none twice', async () => {
    const nats = await NatsServer.start();
    const deployment = await Deployment.start(nats.url, [...ALL_SERVICES, ...SCHEDULERS], FAST_FAILOVER);
    const sink = await idempotentSink();
    cleanup(async () => deployment.stop(), async () => sink.close(), async () => nats.stop());
    const gateway = () => deployment.gatewayUrl;
    const api = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${gateway()}${path}`, { method, ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
      return { status: response.status, body: (await response.json().catch(() => undefined)) as any };
    };
    const flows = [
      { tasks: [{ id: 'tick', executor: 'noop' }] },
      { tasks: [{ id: 'effect', executor: 'http', config: { url: sink.url, method: 'POST' }, retries: 3, backoff: 'fixed' }] },
    ];
    const ids: string[] = [];
    for (const [i, flow] of flows.entries()) {
      const created = await api('POST', '/api/v1/schedules', { name: `every second ${i}`, cron: '* * * * * *', flow, overlap: 'allow', catchup: 'all' });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      ids.push(created.body.id);
    }

    await sleep(4000);
    await deployment.kill('scheduler-1');
    await sleep(3000);
    await deployment.restart('scheduler-2');
    await sleep(3000);
    // NATS itself goes away and comes back: the schedulers' watches and loops recover and catch up.
    await nats.restart();
    const natsBack = Date.now();
    // Requests sent while it was away time out (5 s) before the loops look again.
    await sleep(9000);
    for (const id of ids) expect((await api('PUT', `/api/v1/schedules/${id}`, { enabled: false })).status).toBe(200);

    const runs: string[] = [];
    for (const id of ids) {
      // Runs decided before the pause are submitted by whichever instance sees them first.
      const listed = await waitFor(`the runs of ${id} to settle in the list`, async () => {
        const first = (await api('GET', `/api/v1/flows?schedule=${id}&limit=1000`)).body.flows as any[];
        await sleep(1500);
        const again = (await api('GET', `/api/v1/flows?schedule=${id}&limit=1000`)).body.flows as any[];
        return again.length === first.length ? again : undefined;
      }, 30_000);
      const times = listed.map((f) => f.origin.schedule.scheduled_at as string).sort();
      expect(new Set(times).size, 'a scheduled time ran twice').toBe(times.length);
      expect(times.length).toBeGreaterThanOrEqual(8);
      const first = Date.parse(times[0]!);
      expect(times, 'every second from the first run to the last, none missing').toEqual(times.map((_, i) => new Date(first + i * 1000).toISOString()));
      expect(Date.parse(times.at(-1)!), 'runs went on after nats-server came back').toBeGreaterThan(natsBack);
      for (const f of listed) expect(f.flow_id).toBe(derivedFlowId(`schedule:${id}:${f.origin.schedule.scheduled_at}`, Date.parse(f.origin.schedule.scheduled_at)));
      runs.push(...listed.map((f) => f.flow_id as string));
    }
    // Each run's log holds one submission, and every run ended.
    await expectSettled(gateway, runs);
    for (const id of runs) {
      const events = (await api('GET', `/api/v1/flows/${id}/events`)).body.events as any[];
      expect(events.filter((e) => e.event.type === 'flow.submitted')).toHaveLength(1);
    }
    const effectRuns = runs.length - (await api('GET', `/api/v1/flows?schedule=${ids[0]}&limit=1000`)).body.flows.length;
    expect(sink.effects.size).toBe(effectRuns);
    recordMeasurement('scheduler: three instances, one killed, one restarted', { runs: runs.length, sink_calls: sink.calls, sink_effects: sink.effects.size });
  });
});
