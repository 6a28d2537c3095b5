import { EVENT_VERSION, type EventOf, type QueuePolicy, type TaskSpec } from '@taskstream/domain';
import { EventLog, KnownStops, newId, QueueLimitsStore, silentLogger, type JsMsg, type ReadStoredStops } from '@taskstream/nats';
import { createContext, createLogger, type ServiceContext } from '@taskstream/runtime';
import { NatsServer } from '@taskstream/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readyHandler } from '../src/ready.js';
import { Rooms } from '../src/rooms.js';

let nats: NatsServer;
let ctx: ServiceContext;
let limits: QueueLimitsStore;
const rooms: Rooms[] = [];

beforeAll(async () => {
  nats = await NatsServer.start();
  ctx = await createContext({ natsUrl: nats.url, name: 'ready-test', log: createLogger('dispatcher', 'silent') });
  limits = await QueueLimitsStore.open(ctx.js, ctx.topo);
}, 60_000);

afterEach(() => {
  for (const room of rooms.splice(0)) room.close();
});

afterAll(async () => {
  await ctx?.nc.close();
  await nats?.stop();
}, 60_000);

const ONE_AT_A_TIME: QueuePolicy = { concurrency: 1 };

function readyEvent(queue: string): EventOf<'task.ready'> {
  const spec: TaskSpec = { id: 'a', executor: 'noop', config: {}, depends_on: [], queue, priority: 0 };
  return { id: newId(), type: 'task.ready', version: EVENT_VERSION, flow_id: newId(), task_id: 'a', time: new Date().toISOString(), data: { queue, priority: 0, spec } };
}

/** A first delivery of a ready event, as the consumer loop hands it over. */
const firstDelivery = { info: { deliveryCount: 1 }, seq: 1, working() {} } as unknown as JsMsg;

/** A handler for one limited queue, its dispatches counted; `repeated` is what each dispatch finds. */
function handlerFor(queue: string, readStored: ReadStoredStops, repeated = false) {
  const policyOf = () => ONE_AT_A_TIME;
  const room = new Rooms({ windowSize: 10, leaseMs: 60_000, limits, policyOf, onThrottled: async () => {}, log: silentLogger });
  rooms.push(room);
  const dispatched: string[] = [];
  const handle = readyHandler({
    js: ctx.js,
    topo: ctx.topo,
    policyOf,
    rooms: room,
    stops: new KnownStops(readStored),
    limits,
    windowSize: 10,
    dispatch: async (ready) => {
      dispatched.push(ready.task_id);
      return repeated;
    },
  });
  return { handle, dispatched };
}

const holders = async (queue: string) => Object.keys((await limits.read(queue)).record.holders);

describe('a ready task at a limited queue, after admission', () => {
  it("gives its slot back and fails, to come again, when the flow's stops cannot be read", async () => {
    const queue = 'stops-unreadable';
    const { handle, dispatched } = handlerFor(queue, async () => {
      throw new Error('log unavailable');
    });
    const ready = readyEvent(queue);
    await expect(handle(ready, firstDelivery)).rejects.toThrow(`could not read whether flow ${ready.flow_id} was cancelled: log unavailable`);
    expect(dispatched).toEqual([]);
    expect(await holders(queue)).toEqual([]);
  });

  it('keeps the slot of a dispatched task while it runs', async () => {
    const queue = 'runs';
    const { handle, dispatched } = handlerFor(queue, async () => []);
    const ready = readyEvent(queue);
    await handle(ready, firstDelivery);
    expect(dispatched).toEqual(['a']);
    expect(await holders(queue)).toEqual([`${ready.flow_id}:a`]);
  });

  it('gives back the slot of a repeated dispatch whose task already ended (its earlier release came first)', async () => {
    const queue = 'repeated';
    const { handle, dispatched } = handlerFor(queue, async () => [], true);
    const ready = readyEvent(queue);
    await new EventLog(ctx.js, ctx.topo).appendNew({ type: 'task.succeeded', flow_id: ready.flow_id, task_id: 'a', attempt: 1, data: { duration_ms: 1 } }, `${ready.flow_id}:a:task.succeeded`);
    await handle(ready, firstDelivery);
    expect(dispatched).toEqual(['a']);
    expect(await holders(queue)).toEqual([]);
  });

  it('keeps the slot of a repeated dispatch whose task has not ended', async () => {
    const queue = 'repeated-running';
    const { handle } = handlerFor(queue, async () => [], true);
    const ready = readyEvent(queue);
    await handle(ready, firstDelivery);
    expect(await holders(queue)).toEqual([`${ready.flow_id}:a`]);
  });
});
