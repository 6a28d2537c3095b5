import { DEFAULT_LAYOUT, flowIdOfSubject, TERMINAL_TASK_EVENTS, type EventType } from '@taskstream/domain';
import { connectNats, type NatsConnection } from '@taskstream/nats';
import { NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployment } from '../support/deployment.js';

const BIG = 2_000;
const LIMITED_BIG = 400;

const delayTasks = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, executor: 'delay', config: { ms: 5 } }));

describe('fair dispatch between the flows of one queue', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let deployment: Deployment;
  let gateway: string;
  /** task.ready events seen per flow, as they are stored. */
  const readies = new Map<string, number>();

  beforeAll(async () => {
    nats = await NatsServer.start();
    deployment = await Deployment.start(nats.url, [
      ['gateway', 'gateway'],
      ['planner', 'planner'],
      ['projector', 'projector'],
      // A window far below the big flow, so the ordering shows however fast this machine is.
      ['dispatcher', 'dispatcher', { TASKSTREAM_DISPATCH_WINDOW: '50' }],
      ['executor-bulk', 'executor', { TASKSTREAM_QUEUE: 'bulk', TASKSTREAM_CONCURRENCY: '8' }],
      ['executor-limited', 'executor', { TASKSTREAM_QUEUE: 'limited', TASKSTREAM_CONCURRENCY: '8' }],
    ]);
    gateway = deployment.gatewayUrl;
    nc = await connectNats({ servers: nats.url, name: 'fairness-test' });
    nc.subscribe(`${DEFAULT_LAYOUT.prefix}.evt.*.*.task.ready`, {
      callback: (_error, msg) => {
        const flowId = flowIdOfSubject(DEFAULT_LAYOUT, msg.subject)!;
        readies.set(flowId, (readies.get(flowId) ?? 0) + 1);
      },
    });
  });

  afterAll(async () => {
    await nc?.close();
    await deployment?.stop();
    await nats?.stop();
  });

  async function submit(flow: unknown): Promise<string> {
    const response = await fetch(`${gateway}/api/v1/flows`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(flow) });
    expect(response.status).toBe(202);
    return ((await response.json()) as { flow_id: string }).flow_id;
  }

  /** The flow's view once it ended; if it does not within `timeoutMs`, the error says how far it got (the test's own timeout would not). */
  async function settled(flowId: string, timeoutMs: number): Promise<any> {
    let last: any;
    try {
      return await waitFor(`flow ${flowId} to end`, async () => {
        last = (await (await fetch(`${gateway}/api/v1/flows/${flowId}`)).json()) as any;
        return ['succeeded', 'failed', 'cancelled'].includes(last.status) ? last : undefined;
      }, timeoutMs, 200);
    } catch (error) {
      throw new Error(`${(error as Error).message}; it stands at ${JSON.stringify({ status: last?.status, counts: last?.counts })}; services:\n${deployment.logs().slice(-4000)}`);
    }
  }

  async function events(flowId: string): Promise<Array<{ seq: number; event: { type: EventType } }>> {
    return ((await (await fetch(`${gateway}/api/v1/flows/${flowId}/events`)).json()) as any).events;
  }

  /**
   * Submits a big flow, then, once every one of its tasks is ready (its whole backlog is ahead in
   * the stream), a 2-task flow on the same queue. Returns how many of the big flow's tasks had ended
   * when the small flow ended, read from stream order.
   */
  async function bigThenSmall(queue: string, big: number): Promise<number> {
    const bigId = await submit({ queue, tasks: delayTasks('big-', big) });
    await waitFor('every task of the big flow to be ready', () => ((readies.get(bigId) ?? 0) >= big ? true : undefined), 30_000);
    const smallId = await submit({ queue, tasks: delayTasks('small-', 2) });
    // Within the test's 180 s: 30 s for the readies, then these.
    expect((await settled(smallId, 60_000)).status).toBe('succeeded');
    expect((await settled(bigId, 80_000)).status).toBe('succeeded');

    const smallEvents = await events(smallId);
    const bigEvents = await events(bigId);
    const firstSmallReady = Math.min(...smallEvents.filter((e) => e.event.type === 'task.ready').map((e) => e.seq));
    expect(bigEvents.filter((e) => e.event.type === 'task.ready').every((e) => e.seq < firstSmallReady)).toBe(true);
    const smallEnd = smallEvents.find((e) => e.event.type === 'flow.succeeded')!.seq;
    return bigEvents.filter((e) => TERMINAL_TASK_EVENTS.has(e.event.type) && e.seq < smallEnd).length;
  }

  it('finishes a small flow behind a big one on an unlimited queue while most of the big one still waits', async () => {
    const bigEnded = await bigThenSmall('bulk', BIG);
    expect(bigEnded).toBeLessThan(BIG / 2);
  }, 180_000);

  it('does the same on a queue limited to 5 at once', async () => {
    const response = await fetch(`${gateway}/api/v1/queues/limited`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ concurrency: 5 }) });
    expect(response.status).toBe(200);
    const bigEnded = await bigThenSmall('limited', LIMITED_BIG);
    expect(bigEnded).toBeLessThan(LIMITED_BIG / 2);
  }, 180_000);
});
