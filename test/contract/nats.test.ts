import { EVENT_VERSION, eventSubject, flowEventsFilter, validateFlow, type FlowEvent } from '@taskstream/domain';
import { Objm } from '@nats-io/obj';
import {
  connectNats,
  DeadLetters,
  Definitions,
  ensureConsumer,
  ensureTopology,
  EventLog,
  decodeEvent,
  derivedFlowId,
  followEvents,
  jetstream,
  newId,
  readFlowHistory,
  silentLogger,
  startConsumerLoop,
  submitFlow,
  topology,
  watchStoredSubjects,
  type NatsConnection,
} from '@taskstream/nats';
import { freePort, NatsCluster, NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const topo = topology({ prefix: 'ct' });

function started(flowId: string): FlowEvent {
  return { id: newId(), type: 'flow.started', version: EVENT_VERSION, flow_id: flowId, time: new Date().toISOString(), data: {} };
}

async function dlqLetters(nc: NatsConnection) {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(topo.dlqStream, { filter_subjects: 'ct.dlq.>' });
  const { num_pending } = await consumer.info();
  const letters: any[] = [];
  if (num_pending === 0) return letters;
  const messages = await consumer.consume();
  for await (const m of messages) {
    letters.push(m.json());
    if (m.info.pending === 0) break;
  }
  return letters;
}

describe('NATS lib against a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'contract' });
    await ensureTopology(nc, topo);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('creates the topology idempotently', async () => {
    await ensureTopology(nc, topo);
    const jsm = await (await import('@taskstream/nats')).jetstreamManager(nc);
    const names: string[] = [];
    for await (const s of jsm.streams.list()) names.push(s.config.name);
    expect(names).toEqual(expect.arrayContaining(['CT_EVENTS', 'CT_WORK', 'CT_DLQ', 'KV_ct_flows', 'KV_ct_idempotency']));
  });

  it('submits a flow with a derived id once, whatever the de-duplication window', async () => {
    const js = jetstream(nc);
    const flowId = derivedFlowId('schedule:nightly:2026-12-03T00:00:00Z', Date.parse('2026-12-03T00:00:00Z'));
    expect(derivedFlowId('schedule:nightly:2026-12-03T00:00:00Z', Date.parse('2026-12-03T00:00:00Z'))).toBe(flowId);
    expect(derivedFlowId('schedule:nightly:2026-12-04T00:00:00Z', Date.parse('2026-12-04T00:00:00Z'))).not.toBe(flowId);
    const parsed = validateFlow({ queue: 'default', tasks: [{ id: 'a', executor: 'shell', config: { command: 'true' } }] });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    const definition = parsed.flow;
    const origin = { schedule: { id: 'nightly', scheduled_at: '2026-12-03T00:00:00Z' } };
    expect(await submitFlow(js, topo, { definition, flowId, origin })).toEqual({ flowId, created: true });
    // Another instance acting on the same tick, after the msgID window (a different msgID stands for that).
    await js.publish(eventSubject(topo.layout, flowId, 'flow.submitted'), new TextEncoder().encode('{}'), { msgID: 'elsewhere', expect: { lastSubjectSequence: 0 } }).then(
      () => expect.unreachable('a second submission was stored'),
      (error: Error) => expect(error.message).toMatch(/wrong last sequence/i),
    );
    expect(await submitFlow(js, topo, { definition, flowId, origin })).toEqual({ flowId, created: false });
    const history = await readFlowHistory(js, topo, flowId);
    expect(history.map((e) => e.event.type)).toEqual(['flow.submitted']);
    expect(history[0]!.event.data).toMatchObject({ origin });
  });

  it('drops a re-published event with the same msgID', async () => {
    const log = new EventLog(jetstream(nc), topo);
    const flowId = newId();
    const event = started(flowId);
    const first = await log.append(event, 'same-key');
    const second = await log.append({ ...event, id: newId() }, 'same-key');
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    expect(second.seq).toBe(first.seq);
    expect(await readFlowHistory(jetstream(nc), topo, flowId)).toHaveLength(1);
  });

  it('stores one terminal event per task, whoever writes it and under whatever key', async () => {
    const log = new EventLog(jetstream(nc), topo);
    const flowId = newId();
    const at = new Date().toISOString();
    const cancelled: FlowEvent = { id: newId(), type: 'task.cancelled', version: EVENT_VERSION, flow_id: flowId, task_id: 'a', time: at, data: { reason: 'flow cancelled' } };
    const succeeded: FlowEvent = { id: newId(), type: 'task.succeeded', version: EVENT_VERSION, flow_id: flowId, task_id: 'a', attempt: 1, time: at, data: { duration_ms: 5 } };
    const other: FlowEvent = { ...cancelled, id: newId(), task_id: 'b' };
    expect((await log.append(cancelled, 'planner-key')).duplicate).toBe(false);
    expect((await log.append(succeeded, 'executor-key')).duplicate).toBe(true);
    expect((await log.append(other, 'planner-key-b')).duplicate).toBe(false);
    expect((await readFlowHistory(jetstream(nc), topo, flowId)).map((e) => `${e.event.type}:${'task_id' in e.event ? e.event.task_id : ''}`)).toEqual(['task.cancelled:a', 'task.cancelled:b']);
  });

  it('stores one terminal event per flow', async () => {
    const log = new EventLog(jetstream(nc), topo);
    const flowId = newId();
    const base = { version: EVENT_VERSION, flow_id: flowId, time: new Date().toISOString() } as const;
    await log.append({ ...base, id: newId(), type: 'flow.failed', data: { failed_tasks: ['a'], skipped_tasks: [], succeeded: 0, total: 1, reason: '1 task failed: a' } }, 'one');
    expect((await log.append({ ...base, id: newId(), type: 'flow.cancelled', data: { reason: 'cancelled on request', succeeded: 0, total: 1 } }, 'two')).duplicate).toBe(true);
    expect((await readFlowHistory(jetstream(nc), topo, flowId)).map((e) => e.event.type)).toEqual(['flow.failed']);
  });

  it('hydrates a submission whose definition was stored apart, and refuses a missing or changed one with what to do', async () => {
    const js = jetstream(nc);
    const definitions = await Definitions.open(js, topo);
    const definition = { queue: 'default', tasks: [{ id: 'a', executor: 'noop', config: null, depends_on: [], queue: 'default', priority: 0 }] } as any;
    const submitted = (flowId: string, ref: object): FlowEvent => ({ id: newId(), type: 'flow.submitted', version: EVENT_VERSION, flow_id: flowId, time: new Date().toISOString(), data: { definition_ref: ref } }) as FlowEvent;
    const flowId = newId();
    const ref = await definitions.offload(flowId, { definition });
    expect(((await definitions.hydrate(submitted(flowId, ref))) as any).data).toEqual({ definition });

    const changed = newId();
    // Another definition: one already read is cached by its digest, which is what proves it unchanged.
    const changedRef = await definitions.offload(changed, { definition: { ...definition, name: 'other' } });
    const objm = new Objm(js);
    await (await objm.open(topo.definitionsBucket)).putBlob({ name: changed }, new TextEncoder().encode('{"definition":{}}'));
    await expect(definitions.hydrate(submitted(changed, changedRef))).rejects.toThrow(/does not match the digest.*restore it from the backup/);
    await expect(definitions.hydrate(submitted(newId(), { ...ref, object: 'gone', sha256: 'f'.repeat(64) }))).rejects.toThrow(/missing from the definitions store.*restore/);
  });

  it('stores a flow start once, even after the de-duplication window', async () => {
    const log = new EventLog(jetstream(nc), topo);
    const flowId = newId();
    const draft = { key: `${flowId}:flow.started`, type: 'flow.started' as const, flow_id: flowId, data: {} };
    expect(await log.appendFirst(draft, Date.now())).toBe(true);
    // Another key, as after the window: the server still refuses a second start.
    expect(await log.appendFirst({ ...draft, key: 'after-the-window' }, Date.now())).toBe(false);
    expect(await readFlowHistory(jetstream(nc), topo, flowId)).toHaveLength(1);
  });

  it('consumes in stream order and sets malformed messages aside without stopping', async () => {
    const js = jetstream(nc);
    const jsm = await (await import('@taskstream/nats')).jetstreamManager(nc);
    const flowId = newId();
    await ensureConsumer(jsm, topo.eventsStream, { durable_name: 'order-test', filter_subject: flowEventsFilter(topo.layout, flowId), max_deliver: 3 });
    const log = new EventLog(js, topo);
    const subject = eventSubject(topo.layout, flowId, 'flow.started');
    for (let i = 0; i < 20; i++) {
      if (i === 5) await js.publish(subject, new TextEncoder().encode('{not json'));
      if (i === 9) await js.publish(subject, new Uint8Array([0xff, 0xfe]));
      if (i === 12) await js.publish(subject, JSON.stringify({ type: 'flow.started', flow_id: 'nope' }));
      await log.append(started(flowId));
    }
    const seen: number[] = [];
    const loop = await startConsumerLoop({
      js,
      stream: topo.eventsStream,
      consumer: 'order-test',
      source: 'contract',
      decode: decodeEvent,
      handle: async (_event, msg) => void seen.push(msg.seq),
      deadLetters: new DeadLetters(js, topo),
      log: silentLogger,
      maxDeliver: 3,
    });
    await waitFor('20 events', () => (seen.length >= 20 ? true : undefined));
    await loop.stop();
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const letters = (await dlqLetters(nc)).filter((l) => l.consumer === 'order-test');
    expect(letters.map((l) => l.reason)).toEqual([
      expect.stringMatching(/not valid JSON/),
      expect.stringMatching(/not valid UTF-8/),
      expect.stringMatching(/invalid event of type "flow.started": .*flow_id/),
    ]);
    expect(letters[1].encoding).toBe('base64');
    expect(letters.every((l) => l.stream === 'CT_EVENTS' && l.stream_seq > 0)).toBe(true);
  });

  it('holds at most its concurrency in hand, and takes one more as each is done, in any order', async () => {
    const js = jetstream(nc);
    const jsm = await (await import('@taskstream/nats')).jetstreamManager(nc);
    const flowId = newId();
    await ensureConsumer(jsm, topo.eventsStream, { durable_name: 'capacity-test', filter_subject: flowEventsFilter(topo.layout, flowId), max_deliver: 3 });
    const log = new EventLog(js, topo);
    for (let i = 0; i < 10; i++) await log.append(started(flowId));
    const inHand = new Map<number, () => void>();
    let handled = 0;
    const loop = await startConsumerLoop({
      js,
      stream: topo.eventsStream,
      consumer: 'capacity-test',
      source: 'contract',
      decode: decodeEvent,
      handle: (_event, msg) =>
        new Promise<void>((resolve) =>
          inHand.set(msg.seq, () => {
            inHand.delete(msg.seq);
            handled++;
            resolve();
          }),
        ),
      deadLetters: new DeadLetters(js, topo),
      log: silentLogger,
      maxDeliver: 3,
      concurrency: 3,
    });
    const holding = (n: number) => waitFor(`${n} in hand`, () => (inHand.size === n ? [...inHand.keys()] : undefined));
    const first = await holding(3);
    // Nothing more comes while three are in hand.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(inHand.size).toBe(3);
    // The last one read finishes first: the loop takes exactly one more.
    inHand.get(first[2]!)!();
    const next = await holding(3);
    expect(next.slice(0, 2)).toEqual(first.slice(0, 2));
    expect(next[2]).toBeGreaterThan(first[2]!);
    // Two done in the same turn: the loop takes two more, and no further.
    inHand.get(next[0]!)!();
    inHand.get(next[1]!)!();
    const after = await holding(3);
    expect(after[0]).toBe(next[2]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(inHand.size).toBe(3);
    while (handled < 10) {
      const [seq] = await waitFor('a message in hand', () => (inHand.size > 0 ? [...inHand.keys()] : undefined));
      inHand.get(seq!)!();
    }
    await loop.stop();
    const consumer = await js.consumers.get(topo.eventsStream, 'capacity-test');
    const info = await waitFor('every message acknowledged', async () => {
      const now = await consumer.info();
      return now.num_ack_pending === 0 ? now : undefined;
    });
    expect(info.delivered.consumer_seq).toBe(10);
  });

  it('dead-letters a message whose handler keeps failing after max deliveries', async () => {
    const js = jetstream(nc);
    const jsm = await (await import('@taskstream/nats')).jetstreamManager(nc);
    const flowId = newId();
    await ensureConsumer(jsm, topo.eventsStream, { durable_name: 'poison-test', filter_subject: flowEventsFilter(topo.layout, flowId), max_deliver: 3 });
    await new EventLog(js, topo).append(started(flowId));
    let attempts = 0;
    const loop = await startConsumerLoop({
      js,
      stream: topo.eventsStream,
      consumer: 'poison-test',
      source: 'contract',
      decode: decodeEvent,
      handle: async () => {
        attempts++;
        throw new Error('downstream unavailable');
      },
      deadLetters: new DeadLetters(js, topo),
      log: silentLogger,
      maxDeliver: 3,
      retryDelayMs: () => 10,
    });
    const letter = await waitFor('a dead letter', async () => (await dlqLetters(nc)).find((l) => l.consumer === 'poison-test'));
    await loop.stop();
    expect(attempts).toBe(3);
    expect(letter.reason).toBe('failed 3 deliveries; last error: downstream unavailable');
  });

  it('follows history then live events with no gap and no duplicate', async () => {
    const js = jetstream(nc);
    const log = new EventLog(js, topo);
    const flowId = newId();
    for (let i = 0; i < 5; i++) await log.append(started(flowId));
    const history = await readFlowHistory(js, topo, flowId);
    const feed = await followEvents(js, topo.eventsStream, flowEventsFilter(topo.layout, flowId), history[1]!.seq);
    const received: number[] = [];
    const reading = (async () => {
      for await (const item of feed.events) {
        received.push(item.seq);
        if (received.length === 8) break;
      }
    })();
    for (let i = 0; i < 5; i++) await log.append(started(flowId));
    await reading;
    await feed.close();
    const all = (await readFlowHistory(js, topo, flowId)).map((e) => e.seq);
    expect(all).toHaveLength(10);
    expect(received).toEqual(all.slice(2));
  });

  it('follows live events on past the loss of its consumer, with no gap and no duplicate', async () => {
    const js = jetstream(nc);
    const log = new EventLog(js, topo);
    const flowId = newId();
    const filter = flowEventsFilter(topo.layout, flowId);
    await log.append(started(flowId));
    const feed = await followEvents(js, topo.eventsStream, filter);
    const received: number[] = [];
    const reading = (async () => {
      for await (const item of feed.events) {
        received.push(item.seq);
        if (received.length === 4) break;
      }
    })();
    await waitFor('the first event', () => (received.length === 1 ? true : undefined), 5_000);
    const jsm = await js.jetstreamManager();
    for await (const consumer of jsm.consumers.list(topo.eventsStream)) {
      if (consumer.config.filter_subject === filter) await jsm.consumers.delete(topo.eventsStream, consumer.name);
    }
    for (let i = 0; i < 3; i++) await log.append(started(flowId));
    await reading;
    await feed.close();
    expect(received).toEqual((await readFlowHistory(js, topo, flowId)).map((e) => e.seq));
  }, 30_000);

  it('watches what is stored from now on, with no gap or repeat when its consumer is lost', async () => {
    const js = jetstream(nc);
    const log = new EventLog(js, topo);
    const flowId = newId();
    const subject = eventSubject(topo.layout, flowId, 'flow.started');
    for (let i = 0; i < 3; i++) await log.append(started(flowId));
    const seen: string[] = [];
    const watch = await watchStoredSubjects(js, topo.eventsStream, subject, (s) => seen.push(s), silentLogger);
    for (let i = 0; i < 2; i++) await log.append(started(flowId));
    await waitFor('the first two', () => (seen.length >= 2 ? true : undefined), 5_000);
    // The server loses the watch's consumer (as when its node goes away).
    const jsm = await js.jetstreamManager();
    for await (const consumer of jsm.consumers.list(topo.eventsStream)) {
      if (consumer.config.filter_subject === subject) await jsm.consumers.delete(topo.eventsStream, consumer.name);
    }
    for (let i = 0; i < 3; i++) await log.append(started(flowId));
    await waitFor('the three stored after the loss', () => (seen.length >= 5 ? true : undefined), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await watch.close();
    expect(seen).toEqual(Array.from({ length: 5 }, () => subject));
  });

  it('says clearly when no server is reachable', async () => {
    const port = await freePort();
    await expect(connectNats({ servers: `127.0.0.1:${port}`, name: 'nobody', timeoutMs: 1000 })).rejects.toThrow(
      new RegExp(`cannot reach NATS at 127.0.0.1:${port} .*Start a nats-server with JetStream`),
    );
  });
});

describe('a three-node JetStream cluster', () => {
  it('replicates the topology and keeps the log through the loss of one node', async () => {
    const cluster = await NatsCluster.start(3);
    const nc = await connectNats({ servers: cluster.urls, name: 'cluster-contract' });
    try {
      const replicated = topology({ prefix: 'cl', replicas: 3 });
      await waitFor('a JetStream meta leader', async () => {
        await ensureTopology(nc, replicated);
        return true;
      });
      const js = jetstream(nc);
      const flowId = newId();
      const log = new EventLog(js, replicated);
      const appended: number[] = [];
      for (let i = 0; i < 3; i++) appended.push((await log.append(started(flowId))).seq);
      await cluster.nodes[0]!.kill();
      appended.push(await waitFor('an append after the node loss', async () => (await log.append(started(flowId))).seq));
      // A read right after the loss once came back empty (a consumer on a replica that had not
      // caught up): a read holds everything stored before it began, or fails. While the cluster
      // settles it may fail (a request times out); it is tried again then, never when it answers.
      const events = await waitFor('a read after the node loss', () => readFlowHistory(js, replicated, flowId));
      expect(events.map((e) => e.seq)).toEqual(appended);
      const jsm = await (await import('@taskstream/nats')).jetstreamManager(nc);
      const info = await waitFor('the stream info after the node loss', () => jsm.streams.info('CL_EVENTS'));
      expect(info.config.num_replicas).toBe(3);
    } finally {
      await nc.close();
      await cluster.stop();
    }
    // Three waits of up to 20 s each while elections settle on two busy cores.
  }, 120_000);
});
