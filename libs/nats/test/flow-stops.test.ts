import { eventSubject, STOPS, type EventType, type Stop, type TaskSpec } from '@taskstream/domain';
import { NatsServer } from '@taskstream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, ensureTopology, jetstream, KnownStops, newId, readStoredStops, silentLogger, topology, watchStops, type NatsConnection } from '../src/index.js';

const cancel = STOPS['flow.cancel_requested'];
const deadline = STOPS['flow.deadline_passed'];
const failFast = STOPS['flow.fail_fast'];
const task: Pick<TaskSpec, 'trigger_rule'> = {};
const always: Pick<TaskSpec, 'trigger_rule'> = { trigger_rule: 'always' };

describe('the stops known for flows', () => {
  it('keep the first stop, unless a later one also stops what the first spared, and say when they change', () => {
    const stops = new KnownStops(async () => []);
    expect(stops.stop('f', failFast)).toBe(failFast);
    expect(stops.reasonFor('f', always)).toBeUndefined();
    expect(stops.stop('f', failFast)).toBeUndefined();
    expect(stops.stop('f', cancel)).toBe(cancel);
    expect(stops.reasonFor('f', always)).toBe(cancel.why);
    expect(stops.stop('f', deadline)).toBeUndefined();
    expect(stops.reasonFor('f', task)).toBe(cancel.why);
  });

  it('name the flow when the log cannot be read', async () => {
    const stops = new KnownStops(async () => {
      throw new Error('no responders');
    });
    await expect(stops.storedStopOf('f')).rejects.toThrow('could not read whether flow f was cancelled: no responders');
  });
});

describe('the stops the log holds', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  const topo = topology({ prefix: 'stops' });
  const log = silentLogger;
  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await connectNats({ servers: nats.url, name: 'flow-stops-test' });
    await ensureTopology(nc, topo);
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  const whys = (stops: Stop[]) => stops.map((stop) => stop.why).sort();
  const store = async (flowId: string, ...types: EventType[]) => {
    for (const type of types) await jetstream(nc).publish(eventSubject(topo.layout, flowId, type), '{}');
  };
  const eventually = async (check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    return check();
  };

  it("are read from the log as it is at each read, the flow's own and no other's", async () => {
    const [flow, other] = [newId(), newId()];
    const read = readStoredStops(nc, topo);
    await store(flow, 'flow.submitted', 'flow.started', 'task.ready', 'task.started');
    await store(other, 'flow.submitted', 'flow.cancel_requested');
    expect(await read(flow)).toEqual([]);

    await store(flow, 'flow.fail_fast');
    expect(await read(flow)).toEqual([failFast]);
    await store(flow, 'task.cancelled', 'flow.cancel_requested', 'flow.deadline_passed');
    expect(whys(await read(flow))).toEqual(whys([cancel, deadline, failFast]));
    expect(await read(other)).toEqual([cancel]);
    expect(await read(newId())).toEqual([]);
  });

  it('are told by the watch from its start on, or from the time it is given', async () => {
    const [before, after] = [newId(), newId()];
    const since = new Date(Date.now() - 1_000);
    await store(before, 'flow.submitted', 'flow.cancel_requested');
    const fromNow = new KnownStops(async () => []);
    const fromSince = new KnownStops(async () => []);
    const watches = [await watchStops(jetstream(nc), topo, fromNow, log), await watchStops(jetstream(nc), topo, fromSince, log, { since })];
    try {
      await store(after, 'flow.submitted', 'flow.deadline_passed');
      expect(await eventually(() => [fromNow.reasonFor(after, task), fromSince.reasonFor(after, task), fromSince.reasonFor(before, task)].every((why) => why !== undefined))).toBe(true);
      expect(fromNow.reasonFor(after, task)).toBe(deadline.why);
      expect(fromSince.reasonFor(before, task)).toBe(cancel.why);
      expect(fromNow.reasonFor(before, task)).toBeUndefined();
    } finally {
      await Promise.all(watches.map((watch) => watch.close()));
    }
  });

  it('are read once per flow for what is known, and each time for a stored stop', async () => {
    const flow = newId();
    let reads = 0;
    const read = readStoredStops(nc, topo);
    const stops = new KnownStops(async (flowId) => {
      reads++;
      return read(flowId);
    });
    expect(await stops.knownStop(flow, task)).toBeUndefined();
    await store(flow, 'flow.cancel_requested');
    // Nothing watches here: what is known stays what the first read found.
    expect(await stops.knownStop(flow, task)).toBeUndefined();
    expect(reads).toBe(1);
    expect(await stops.storedStop(flow, task)).toBe(cancel.why);
    expect(await stops.knownStop(flow, task)).toBe(cancel.why);
    expect(reads).toBe(2);
  });
});
