import { allWorkFilter, eventTypeFilter, type TaskSpec, type WorkItem } from '@taskstream/domain';
import { EventLog, Kvm, newId, QueueLimitsStore, QueuePolicyStore } from '@taskstream/nats';
import { createContext, createLogger, type ServiceContext } from '@taskstream/runtime';
import { NatsServer, waitFor } from '@taskstream/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDispatcher, type DispatcherHandle, type DispatcherOptions } from '../src/dispatcher.js';

let nats: NatsServer;
let ctx: ServiceContext;
let log: EventLog;
/** This test's dispatchers: each test's durable consumer reads every ready event stored so far. */
const handles: DispatcherHandle[] = [];
/** Task keys in the order their work items were published. */
const dispatched: string[] = [];
/** Each work item published, by task key. */
const items = new Map<string, WorkItem>();
/** Dispatches of these flows' tasks, in order. */
const dispatchedOf = (...flowIds: string[]) => dispatched.filter((key) => flowIds.includes(key.slice(0, key.indexOf(':'))));

beforeAll(async () => {
  nats = await NatsServer.start();
  ctx = await createContext({ natsUrl: nats.url, name: 'dispatcher-test', log: createLogger('dispatcher', 'silent') });
  log = new EventLog(ctx.js, ctx.topo);
  ctx.nc.subscribe(allWorkFilter(ctx.topo.layout), {
    callback: (_error, msg) => {
      const item = msg.json<WorkItem>();
      dispatched.push(item.idempotency_key);
      items.set(item.idempotency_key, item);
    },
  });
}, 60_000);

afterEach(async () => {
  for (const handle of handles.splice(0)) await handle.stop();
});

afterAll(async () => {
  await ctx?.nc.close();
  await nats?.stop();
}, 60_000);

async function ready(queue: string, flowId: string, taskIds: string[]): Promise<string[]> {
  for (const id of taskIds) {
    const spec: TaskSpec = { id, executor: 'noop', config: {}, depends_on: [], queue, priority: 0 };
    await log.appendNew({ type: 'task.ready', flow_id: flowId, task_id: id, data: { queue, priority: 0, spec } }, `${flowId}:${id}:task.ready`);
  }
  return taskIds.map((id) => `${flowId}:${id}`);
}

/** A task key `<flow id>:<task id>` (a task id may hold ":"). */
const splitKey = (key: string): [string, string] => [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];

async function succeeded(key: string): Promise<void> {
  const [flowId, taskId] = splitKey(key);
  await log.appendNew({ type: 'task.succeeded', flow_id: flowId, task_id: taskId, attempt: 1, data: { duration_ms: 1 } }, `${key}:task.succeeded`);
}

async function cancelled(key: string): Promise<void> {
  const [flowId, taskId] = splitKey(key);
  await log.appendNew({ type: 'task.cancelled', flow_id: flowId, task_id: taskId, data: { reason: 'flow cancelled' } }, `${key}:task.cancelled`);
}

async function cancelRequested(flowId: string): Promise<void> {
  await log.appendNew({ type: 'flow.cancel_requested', flow_id: flowId, data: {} }, `${flowId}:flow.cancel_requested`);
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);

describe('dispatcher against a real nats-server', () => {
  it('lets a small flow in as slots free, though one flow fills every ready event it may hold', async () => {
    const queue = 'crowded';
    const dispatcher = await startDispatcher(ctx, { consumer: 'crowded', maxWaiting: 20, dispatchWindow: 2 });
    handles.push(dispatcher);
    const [bigFlow, smallFlow] = [newId(), newId()];
    const big = await ready(queue, bigFlow, ids('b', 30));
    const small = await ready(queue, smallFlow, ids('s', 2));
    const mine = () => dispatchedOf(bigFlow, smallFlow);
    await waitFor('the window to fill', () => (mine().length === 2 ? true : undefined));
    // 20 ready events waiting in hand: the dispatcher reads no further until a slot frees.
    await waitFor('the dispatcher to hold 20', () => (dispatcher.stats()[queue]?.waiting === 20 ? true : undefined));
    expect(mine()).toEqual(big.slice(0, 2));

    const total = big.length + small.length;
    for (let ended = 0; ended < total; ended++) {
      await succeeded(mine()[ended]!);
      await waitFor('the next dispatch', () => (mine().length === Math.min(total, ended + 3) ? true : undefined));
      // Each slot that frees lets the loop read one more event before the next slot frees.
      const left = total - mine().length;
      await waitFor('the next ready event to be read', () => ((dispatcher.stats()[queue]?.waiting ?? 0) === Math.min(20, left) ? true : undefined));
    }
    // 32 events: 22 taken at once (20 held, 2 dispatched), the other 8 big ones read one per freed
    // slot, then the small flow's first, which goes next instead of after the big flow's remaining 19.
    const firstSmall = mine().indexOf(small[0]!);
    expect(firstSmall).toBe(11);
    expect(mine().slice(0, firstSmall).every((key) => big.includes(key))).toBe(true);
    expect(new Set(mine())).toEqual(new Set([...big, ...small]));
  }, 60_000);

  it('frees its own window slots from ends the shared release consumers gave another dispatcher', async () => {
    const queue = 'shared';
    const options = { consumer: 'shared', dispatchWindow: 1, dispatchLeaseMs: 600_000 };
    handles.push(await startDispatcher(ctx, options), await startDispatcher(ctx, options));
    const flowId = newId();
    const keys = await ready(queue, flowId, ids('t', 8));
    const ended = new Set<string>();
    // A dispatcher that missed its tasks' ends would wait out the ten-minute lease.
    await waitFor('every task to be dispatched', async () => {
      for (const key of dispatchedOf(flowId)) {
        if (!ended.has(key)) {
          ended.add(key);
          await succeeded(key);
        }
      }
      return ended.size === keys.length ? true : undefined;
    }, 30_000);
    expect(new Set(dispatchedOf(flowId))).toEqual(new Set(keys));
  }, 60_000);

  it('never admits a task that was cancelled while it waited at a gate, so it holds no slot', async () => {
    const queue = 'single';
    await (await QueuePolicyStore.open(ctx.js, ctx.topo)).put(queue, { concurrency: 1 });
    const dispatcher = await startDispatcher(ctx, { consumer: 'single' });
    handles.push(dispatcher);
    const flowId = newId();
    const [first, doomed, last] = await ready(queue, flowId, ids('t', 3));
    await waitFor('the first task to be dispatched', () => (dispatchedOf(flowId).length === 1 ? true : undefined));
    await waitFor('the others to wait', () => (dispatcher.stats()[queue]?.waiting === 2 ? true : undefined));
    await cancelled(doomed!);
    await waitFor('the cancelled task to leave', () => (dispatcher.stats()[queue]?.waiting === 1 ? true : undefined));
    await succeeded(first!);
    await waitFor('the last task to be dispatched', () => (dispatchedOf(flowId).includes(last!) ? true : undefined));
    expect(dispatchedOf(flowId)).toEqual([first, last]);
    const { record } = await (await QueueLimitsStore.open(ctx.js, ctx.topo)).read(queue);
    expect(Object.keys(record.holders)).toEqual([last]);
  }, 60_000);

  /**
   * A queue with one task dispatched and two waiting; the dispatcher stops (handing the waiting two
   * back) and the flow is cancelled, with every task's end stored, before the next one starts.
   * Returns the cancelled flow and a task of another flow, ready after the restart, once dispatched.
   */
  async function cancelledWhileStopped(queue: string, options: DispatcherOptions, restarted: { stopsLookbackMs?: number }) {
    // A hand-back may come back only after the ack wait (nats-server 2.9): a short one.
    options = { ...options, ackWaitMs: 2_000 };
    const first = await startDispatcher(ctx, options);
    const flowId = newId();
    const [running, ...waiting] = await ready(queue, flowId, ids('t', 3));
    await waitFor('the first task to be dispatched', () => (dispatchedOf(flowId).length === 1 ? true : undefined));
    await waitFor('the others to wait', () => (first.stats()[queue]?.waiting === 2 ? true : undefined));
    await first.stop();
    await cancelRequested(flowId);
    for (const key of [running!, ...waiting]) await cancelled(key);
    const second = await startDispatcher(ctx, { ...options, ...restarted });
    handles.push(second);
    // The handed-back tasks come back (at once, or after the ack wait) before the next flow's task is
    // ready: each is dropped as ended, or sent to the executor without a slot, and the slot stays free.
    await new Promise((resolve) => setTimeout(resolve, 2 * options.ackWaitMs! + 1_000));
    const [later] = await ready(queue, newId(), ['next']);
    await waitFor("the other flow's task to be dispatched", () => (dispatched.includes(later!) ? true : undefined));
    return { flowId, later: later!, second };
  }

  it('takes no slot at a limited queue for the tasks handed back at a restart whose flow was cancelled meanwhile', async () => {
    const queue = 'restarted';
    await (await QueuePolicyStore.open(ctx.js, ctx.topo)).put(queue, { concurrency: 1 });
    const { later } = await cancelledWhileStopped(queue, { consumer: 'restarted' }, {});
    const { record } = await (await QueueLimitsStore.open(ctx.js, ctx.topo)).read(queue);
    expect(Object.keys(record.holders)).toEqual([later]);
  }, 60_000);

  it('gives back the slot of a task admitted after its flow stopped, when the stop watch began too late to tell', async () => {
    const queue = 'late-watch';
    await (await QueuePolicyStore.open(ctx.js, ctx.topo)).put(queue, { concurrency: 1 });
    const { later } = await cancelledWhileStopped(queue, { consumer: 'late-watch' }, { stopsLookbackMs: 0 });
    const { record } = await (await QueueLimitsStore.open(ctx.js, ctx.topo)).read(queue);
    expect(Object.keys(record.holders)).toEqual([later]);
  }, 60_000);

  it('takes no window slot for a task of a flow it knows stopped, and sends it to the executor to settle', async () => {
    const queue = 'restarted-window';
    // A slot taken by a task whose end was stored before this dispatcher started would be held for the whole lease.
    const { later, second } = await cancelledWhileStopped(queue, { consumer: 'restarted-window', dispatchWindow: 1, dispatchLeaseMs: 600_000 }, {});
    expect(second.stats()[queue]?.running).toBe(1);
    expect(dispatched.at(-1)).toBe(later);
  }, 60_000);

  it("sends a stopped flow's tasks to the executor, which decides: a cleanup task fail_fast spares is not dropped", async () => {
    const queue = 'spared';
    await (await QueuePolicyStore.open(ctx.js, ctx.topo)).put(queue, { concurrency: 1 });
    const flowId = newId();
    // fail_fast spares `always` tasks; a deadline after it is one the planner no longer acts on, so
    // only the executor can end the cleanup task: dropped here, the flow would never finish.
    await log.appendNew({ type: 'flow.fail_fast', flow_id: flowId, data: { task_id: 'build', reason: 'build failed' } }, `${flowId}:flow.fail_fast`);
    await log.appendNew({ type: 'flow.deadline_passed', flow_id: flowId, data: { timeout_secs: 1 } }, `${flowId}:flow.deadline_passed`);
    const dispatcher = await startDispatcher(ctx, { consumer: 'spared' });
    handles.push(dispatcher);
    const spec: TaskSpec = { id: 'cleanup', executor: 'noop', config: {}, depends_on: [], queue, priority: 0, trigger_rule: 'always' };
    await log.appendNew({ type: 'task.ready', flow_id: flowId, task_id: 'cleanup', data: { queue, priority: 0, spec } }, `${flowId}:cleanup:task.ready`);
    await waitFor('the cleanup task to be dispatched', () => (dispatchedOf(flowId).length === 1 ? true : undefined));
    const { record } = await (await QueueLimitsStore.open(ctx.js, ctx.topo)).read(queue);
    expect(Object.keys(record.holders)).toEqual([]);
  }, 60_000);

  it('records a held task as throttled under its whole id, though the id holds ":"', async () => {
    const queue = 'colons';
    await (await QueuePolicyStore.open(ctx.js, ctx.topo)).put(queue, { concurrency: 1 });
    const throttled: Array<{ flow_id: string; task_id: string; data: { reason: string } }> = [];
    const sub = ctx.nc.subscribe(eventTypeFilter(ctx.topo.layout, 'task.throttled'), { callback: (_error, msg) => void throttled.push(msg.json()) });
    handles.push(await startDispatcher(ctx, { consumer: 'colons' }));
    const flowId = newId();
    const [first, second] = await ready(queue, flowId, ['step:1', 'step:2']);
    await waitFor('the first task to be dispatched', () => (dispatchedOf(flowId).length === 1 ? true : undefined));
    const mine = () => throttled.filter((event) => event.flow_id === flowId);
    await waitFor('the second to be recorded as throttled', () => (mine().length > 0 ? true : undefined));
    sub.unsubscribe();
    expect(mine().map((event) => [event.task_id, event.data.reason])).toEqual([['step:2', 'concurrency']]);
    await succeeded(first!);
    await waitFor('the second task to be dispatched', () => (dispatchedOf(flowId).includes(second!) ? true : undefined));
  }, 60_000);

  it('keeps enforcing the last valid policy of a queue whose stored policy turned corrupt', async () => {
    const queue = 'mangled';
    await (await QueuePolicyStore.open(ctx.js, ctx.topo)).put(queue, { concurrency: 1 });
    const dispatcher = await startDispatcher(ctx, { consumer: 'mangled' });
    handles.push(dispatcher);
    await (await new Kvm(ctx.js).open(ctx.topo.queuesBucket)).put(queue, new TextEncoder().encode('{"concurrency": "none"}'));
    const flowId = newId();
    const [first, second] = await ready(queue, flowId, ids('t', 2));
    await waitFor('the first task to be dispatched', () => (dispatchedOf(flowId).length === 1 ? true : undefined));
    await waitFor('the second to wait at the gate', () => (dispatcher.stats()[queue]?.waiting === 1 ? true : undefined));
    expect(dispatchedOf(flowId)).toEqual([first]);
    await succeeded(first!);
    await waitFor('the second task to be dispatched', () => (dispatchedOf(flowId).includes(second!) ? true : undefined));
  }, 60_000);

  it("completes a task with its queue's defaults as they are when it leaves, though they changed while it waited", async () => {
    const queue = 'retuned';
    const policies = await QueuePolicyStore.open(ctx.js, ctx.topo);
    await policies.put(queue, { timeout_secs: 7, max_retries: 1 });
    const dispatcher = await startDispatcher(ctx, { consumer: 'retuned', dispatchWindow: 1 });
    handles.push(dispatcher);
    const flowId = newId();
    const [first, second] = await ready(queue, flowId, ids('t', 2));
    await waitFor('the first task to be dispatched', () => (items.has(first!) ? true : undefined));
    await waitFor('the second to wait for a slot', () => (dispatcher.stats()[queue]?.waiting === 1 ? true : undefined));
    await policies.put(queue, { timeout_secs: 9, max_retries: 2 });
    await waitFor('the dispatcher to see the new policy', () => (dispatcher.policyOf(queue).timeout_secs === 9 ? true : undefined));
    await succeeded(first!);
    const item = await waitFor('the second task to be dispatched', () => items.get(second!));
    expect(items.get(first!)!.spec).toMatchObject({ timeout_secs: 7, retries: 1 });
    expect(item.spec).toMatchObject({ timeout_secs: 9, retries: 2 });
  }, 60_000);

  it('applies a limit set on a busy queue to the tasks waiting at its window, not only to those that come after', async () => {
    const queue = 'tightened';
    const dispatcher = await startDispatcher(ctx, { consumer: 'tightened', dispatchWindow: 2 });
    handles.push(dispatcher);
    const flowId = newId();
    const [t1, t2, t3, t4, t5] = await ready(queue, flowId, ids('t', 5));
    await waitFor('two tasks to be dispatched, three to wait', () => (dispatchedOf(flowId).length === 2 && dispatcher.stats()[queue]?.waiting === 3 ? true : undefined));
    await (await QueuePolicyStore.open(ctx.js, ctx.topo)).put(queue, { concurrency: 1 });
    // The two running were sent before the limit: they hold none of its slots. The first waiting takes the one slot.
    await waitFor('one waiting task to be admitted at the gate', () => (dispatchedOf(flowId).length === 3 ? true : undefined));
    expect(dispatchedOf(flowId)).toEqual([t1, t2, t3]);
    await succeeded(t1!);
    await succeeded(t2!);
    await waitFor('the others to wait at the gate', () => (dispatcher.stats()[queue]?.waiting === 2 ? true : undefined));
    // Their window slots freed, yet nothing more goes: the limit holds them (the window would have sent both).
    await new Promise((r) => setTimeout(r, 500));
    expect(dispatchedOf(flowId)).toEqual([t1, t2, t3]);
    await succeeded(t3!);
    await waitFor('the next to take the slot', () => (dispatchedOf(flowId).length === 4 ? true : undefined));
    await succeeded(t4!);
    await waitFor('the last to take it', () => (dispatchedOf(flowId).length === 5 ? true : undefined));
    expect(dispatchedOf(flowId)).toEqual([t1, t2, t3, t4, t5]);
  }, 60_000);
});

