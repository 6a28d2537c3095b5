import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { EVENT_VERSION, eventSubject, flowEventsFilter, type EventType } from '@taskstream/domain';
import { LoopbackProxy, NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJson } from '../src/codec.js';
import { connectNats, type NatsConnection } from '../src/connection.js';
import { purgeFlowEvents, readEvents, readEventsDirect } from '../src/history.js';
import { newId } from '../src/ids.js';
import { ensureTopology, topology } from '../src/topology.js';

const topo = topology({ prefix: 'rmtest' });

describe("purging a flow's events", () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'remove-flow-events-test' });
    await ensureTopology(nc, topo);
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** Stores `count` events of `type` for the flow; their sequences. */
  const store = async (flowId: string, type: EventType, count = 1): Promise<number[]> => {
    const seqs: number[] = [];
    for (let i = 0; i < count; i++) {
      const event = { id: newId(), version: EVENT_VERSION, time: new Date().toISOString(), type, flow_id: flowId, task_id: `t${i}`, data: {} };
      seqs.push((await js.publish(eventSubject(topo.layout, flowId, type), encodeJson(event))).seq);
    }
    return seqs;
  };
  const eventsOf = async (flowId: string) => (await readEventsDirect(js, topo.eventsStream, flowEventsFilter(topo.layout, flowId), 0)).map((e) => e.seq);

  it('purges every event of the flow, and nothing of the flows stored around it', async () => {
    const [before, removed, after] = [newId(), newId(), newId()];
    const kept = [...(await store(before, 'flow.submitted')), ...(await store(before, 'task.ready', 3))];
    await store(removed, 'flow.submitted');
    await store(removed, 'task.ready', 40);
    kept.push(...(await store(before, 'task.started')));
    await store(removed, 'task.succeeded', 2);
    await store(removed, 'flow.succeeded');
    const keptAfter = await store(after, 'flow.submitted');

    expect(await purgeFlowEvents(js, topo, removed)).toBe(1 + 40 + 2 + 1);
    expect(await eventsOf(removed)).toEqual([]);
    expect(await eventsOf(before)).toEqual(kept);
    expect(await eventsOf(after)).toEqual(keptAfter);
    expect((await jsm.streams.info(topo.eventsStream)).state.messages).toBe(kept.length + keptAfter.length);
  });

  it('finishes a purge cut short, and finds nothing the second time', async () => {
    const id = newId();
    const seqs = [...(await store(id, 'flow.submitted')), ...(await store(id, 'task.ready', 4)), ...(await store(id, 'flow.cancelled'))];
    // Cut short: some of its events are gone already.
    await jsm.streams.deleteMessage(topo.eventsStream, seqs[1]!, false);
    await jsm.streams.deleteMessage(topo.eventsStream, seqs[5]!, false);
    expect(await purgeFlowEvents(js, topo, id)).toBe(seqs.length - 2);
    expect(await eventsOf(id)).toEqual([]);
    expect(await purgeFlowEvents(js, topo, id)).toBe(0);
  });

  it('purges the submission first and the end last, so a read meanwhile finds no flow and a purge cut short is found again', async () => {
    const id = newId();
    const [submittedSeq] = await store(id, 'flow.submitted');
    const readySeqs = await store(id, 'task.ready', 2);
    const [endSeq] = await store(id, 'flow.failed');
    const proxy = await LoopbackProxy.start(Number(new URL(server.url).port));
    const purger = await connectNats({ servers: `nats://127.0.0.1:${proxy.port}`, name: 'purge-flow-events-purger' });
    try {
      // Held at the purge of the task events: the submission's purge was answered, the end's not sent.
      const held = proxy.holdFrom(`${eventSubject(topo.layout, id, 'task.ready')}"`);
      const purging = purgeFlowEvents(jetstream(purger), topo, id);
      await held;
      expect(await eventsOf(id)).toEqual([...readySeqs, endSeq]);
      expect(submittedSeq).toBeLessThan(readySeqs[0]!);
      proxy.restore();
      expect(await purging).toBe(4);
      expect(await eventsOf(id)).toEqual([]);
    } finally {
      await purger.close();
      await proxy.close();
    }
  });

  it('leaves a read of the flow that its removal overtakes with none of it, as for a flow never stored, not an error', async () => {
    const id = newId();
    await store(id, 'flow.submitted');
    await store(id, 'task.ready', 3);
    await store(id, 'flow.succeeded');
    // The reader asks the leader for the flow's last event, then its read is held until the flow is removed.
    const proxy = await LoopbackProxy.start(Number(new URL(server.url).port));
    const reader = await connectNats({ servers: `nats://127.0.0.1:${proxy.port}`, name: 'remove-flow-events-reader' });
    try {
      const held = proxy.holdFrom('$JS.API.CONSUMER.CREATE');
      const reading = readEvents(jetstream(reader), topo.eventsStream, flowEventsFilter(topo.layout, id));
      await held;
      expect(await purgeFlowEvents(js, topo, id)).toBe(5);
      proxy.restore();
      expect(await reading).toEqual([]);
    } finally {
      await reader.close();
      await proxy.close();
    }
  });
});
