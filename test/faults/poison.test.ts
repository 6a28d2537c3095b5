import { connectNats, jetstream, jetstreamManager, type NatsConnection } from '@taskstream/nats';
import { NatsServer, waitFor } from '@taskstream/testing';
import { describe, expect, it } from 'vitest';
import { ALL_SERVICES, cleanupAfterEach, Deployment, expectIdle, expectSettled, FAST_FAILOVER, faultFlow, idempotentSink, recordMeasurement, submitAll } from '../support/deployment.js';

const cleanup = cleanupAfterEach();

async function setUp() {
  const nats = await NatsServer.start();
  const deployment = await Deployment.start(nats.url, ALL_SERVICES, FAST_FAILOVER);
  const sink = await idempotentSink();
  const nc = await connectNats({ servers: nats.url, name: 'faults' });
  cleanup(async () => deployment.stop(), async () => sink.close(), async () => nc.close(), async () => nats.stop());
  return { nats, nc, deployment, sink, gateway: () => deployment.gatewayUrl };
}

async function letters(nc: NatsConnection, source: string): Promise<any[]> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get('TS_DLQ', { filter_subjects: `ts.dlq.${source}` });
  const out: any[] = [];
  if ((await consumer.info()).num_pending === 0) return out;
  const messages = await consumer.consume();
  for await (const m of messages) {
    out.push({ dlq_seq: m.seq, ...m.json<object>() });
    if (m.info.pending === 0) break;
  }
  return out;
}

describe('what would wedge a lesser engine', () => {
  it('keeps a step that outlives the ack wait alive with in-progress acks: no redelivery', async () => {
    const { gateway } = await setUp();
    const [id] = await submitAll(gateway, [{ tasks: [{ id: 'long', executor: 'delay', config: { ms: 7000 } }] }]);
    await expectSettled(gateway, [id!]);
    const { events } = (await (await fetch(`${gateway()}/api/v1/flows/${id}/events`)).json()) as any;
    expect(events.filter((e: any) => e.event.type === 'task.started')).toHaveLength(1);
    recordMeasurement('step longer than the ack wait', { ack_wait_ms: 2000, step_ms: 7000, starts: 1 });
  });

  it('sets aside a work item that kills its executor on its fifth delivery (four crashed attempts); other flows go on', async () => {
    const { deployment, nc, sink, gateway } = await setUp();
    // The executor is restarted whenever the poison kills it.
    let restarts = 0;
    const supervisor = setInterval(() => {
      const executor = deployment.processes.get('executor')!;
      if (executor.exited) {
        restarts++;
        void deployment.restart('executor');
      }
    }, 200);
    cleanup(async () => clearInterval(supervisor));
    const [poison] = await submitAll(gateway, [{ name: 'poison', tasks: [{ id: 'crash', executor: 'shell', config: { command: 'kill -9 $PPID' }, retries: 20, backoff: 'fixed' }] }]);
    const others = await submitAll(gateway, Array.from({ length: 30 }, (_, i) => faultFlow(sink.url, 1000 + i)));
    await expectSettled(gateway, others, 'succeeded', 90_000);
    const letter = await waitFor('the poison letter', async () => (await letters(nc, 'executor-default')).find((l) => l.reason.includes('poison')), 120_000, 500);
    // Four crashed attempts, set aside on the delivery after them; innocent items held meanwhile are
    // not blamed. A delivery may also be lost without a crash (the server handing it to the pull of
    // an executor that just died, before it noticed), so deliveries may outnumber crashes.
    expect(letter).toMatchObject({ stream: 'TS_WORK', subject: 'ts.work.default' });
    expect(letter.reason).toContain('started 4 times and its executor stopped each time');
    expect(letter.delivery_count).toBeGreaterThanOrEqual(5);
    expect(letter.stream_seq).toBeGreaterThan(0);
    const view = await waitFor('the poisoned flow to fail', async () => {
      const v = (await (await fetch(`${gateway()}/api/v1/flows/${poison}`)).json()) as any;
      return v.status === 'failed' ? v : undefined;
    }, 60_000);
    expect(view.tasks[0].error).toMatchObject({ code: 'POISON' });
    const jsm = await jetstreamManager(nc);
    await waitFor('the work stream to drain', async () => ((await jsm.streams.info('TS_WORK')).state.messages === 0 ? true : undefined), 30_000);
    const listed = (await (await fetch(`${gateway()}/api/v1/dlq?source=executor-default`)).json()) as any;
    expect(listed.letters.map((l: any) => l.stream_seq)).toContain(letter.stream_seq);
    recordMeasurement('poison work item', { deliveries: letter.delivery_count, executor_restarts: restarts, other_flows_succeeded: others.length });
  });

  it('sets aside thousands of malformed event messages without stopping, and valid flows are unaffected', async () => {
    const { nc, deployment, sink, gateway } = await setUp();
    const js = jetstream(nc);
    const garbage = ['{not json', '{"type":"task.succeeded"}', 'null', '\u00ff\u00fe', JSON.stringify({ type: 'flow.mystery', version: 1 })];
    const pubs: Array<Promise<unknown>> = [];
    for (let i = 0; i < 2000; i++) {
      pubs.push(js.publish(`ts.evt.${i % 16}.01JAAAAAAAAAAAAAAAAAAAAAAA.task.ready`, garbage[i % garbage.length]!));
      if (pubs.length === 500) await Promise.all(pubs.splice(0));
    }
    await Promise.all(pubs);
    const ids = await submitAll(gateway, Array.from({ length: 20 }, (_, i) => faultFlow(sink.url, i)));
    await expectSettled(gateway, ids);
    await expectIdle(gateway);
    for (const source of ['planner', 'projector', 'dispatcher']) {
      const set = await waitFor(`${source} letters`, async () => {
        const l = await letters(nc, source);
        return l.length >= 2000 ? l : undefined;
      }, 60_000, 500);
      expect(set.length).toBe(2000);
    }
    expect([...deployment.processes.values()].every((p) => !p.exited)).toBe(true);
    recordMeasurement('malformed event flood', { malformed: 2000, dead_letters_per_consumer: 2000, flows_after: ids.length });
  });

  it('delivers every event again (consumers reset): state identical, nothing re-run, no new events', async () => {
    const { nc, deployment, sink, gateway } = await setUp();
    const ids = await submitAll(gateway, Array.from({ length: 20 }, (_, i) => faultFlow(sink.url, i)));
    await expectSettled(gateway, ids);
    const before = await Promise.all(ids.map(async (id) => (await (await fetch(`${gateway()}/api/v1/flows/${id}`)).json()) as any));
    const jsm = await jetstreamManager(nc);
    const eventsBefore = (await jsm.streams.info('TS_EVENTS')).state.messages;
    for (const name of ['planner', 'dispatcher', 'projector']) await deployment.kill(name);
    for await (const c of jsm.consumers.list('TS_EVENTS')) await jsm.consumers.delete('TS_EVENTS', c.name);
    for (const name of ['planner', 'dispatcher', 'projector']) await deployment.restart(name);
    // Wait until every recreated consumer has been through the whole log again.
    await waitFor('every consumer to catch up', async () => {
      let pending = 0;
      let seen = 0;
      for await (const c of jsm.consumers.list('TS_EVENTS')) {
        pending += c.num_pending + c.num_ack_pending;
        seen++;
      }
      return seen >= 16 * 2 + 5 && pending === 0 ? true : undefined;
    }, 60_000, 500);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await jsm.streams.info('TS_EVENTS')).state.messages).toBe(eventsBefore);
    const after = await Promise.all(ids.map(async (id) => (await (await fetch(`${gateway()}/api/v1/flows/${id}`)).json()) as any));
    expect(after).toEqual(before);
    expect(sink.calls).toBe(40);
    recordMeasurement('every event delivered twice', { events: eventsBefore, new_events: 0, sink_calls: sink.calls });
  });
});
