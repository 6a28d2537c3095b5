import {
  attemptHistory,
  DEFAULT_BACKOFF,
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_SECS,
  eventTypeFilter,
  flowIdOfSubject,
  idempotencyKeyOf,
  isLimited,
  workSubject,
  type EventOf,
  type EventType,
  type FlowEvent,
  type QueueLimitsRecord,
  type QueuePolicy,
  type TaskSpec,
  type ThrottleReason,
  type WorkItem,
} from '@taskstream/domain';
import {
  DeadLetters,
  decodeEvent,
  encodeJson,
  ensureConsumer,
  EventLog,
  Kvm,
  readFlowHistory,
  startConsumerLoop,
  type ConsumerLoop,
  type JsMsg,
} from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';
import pLimit from 'p-limit';
import { DispatchWindow } from './dispatch-window.js';
import { LimitsStore } from './limits-store.js';
import { Policies } from './policies.js';
import { QueueGate } from './queue-gate.js';

export interface DispatcherOptions {
  consumer?: string;
  maxDeliver?: number;
  /** Ready tasks one dispatcher holds at once, waiting or being dispatched. */
  maxWaiting?: number;
  ackWaitMs?: number;
  /**
   * Tasks of one unlimited queue this dispatcher may have dispatched and not yet seen end (default
   * 1,000; 0 dispatches at once). Smaller lets a flow arriving behind a big one start sooner;
   * larger keeps more work queued ahead of the executors.
   */
  dispatchWindow?: number;
  /** How long a dispatched task holds its window slot if its end is never seen (default 60 s). */
  dispatchLeaseMs?: number;
}

export interface QueueStats {
  waiting: number;
  running: number;
  tokens?: number;
  throttled: Record<ThrottleReason, number>;
}

export interface DispatcherHandle extends ServiceHandle {
  /** Per-queue counters (the seam metrics export reads). */
  stats(): Record<string, QueueStats>;
}

/** Terminal task events that can end a task holding a concurrency slot (a skipped task never held one). */
const RELEASING: EventType[] = ['task.succeeded', 'task.failed', 'task.timed_out', 'task.cancelled'];

/** Dispatches in progress at once: through all gates together, and through each queue's window. */
const DISPATCHING = 256;

function tracksSlots(policy: QueuePolicy): boolean {
  return policy.concurrency !== undefined || policy.per_key_concurrency !== undefined;
}

/** Fills in what the task left to its queue, and what the queue leaves to Tasked's defaults: retries, timeout, backoff. */
export function withQueueDefaults(spec: TaskSpec, policy: QueuePolicy): TaskSpec {
  return {
    ...spec,
    retries: spec.retries ?? policy.max_retries ?? DEFAULT_RETRIES,
    timeout_secs: spec.timeout_secs ?? policy.timeout_secs ?? DEFAULT_TIMEOUT_SECS,
    backoff: spec.backoff ?? policy.backoff ?? DEFAULT_BACKOFF,
    ...(policy.secrets !== undefined && Object.keys(policy.secrets).length > 0 && { queue_secrets: policy.secrets }),
  };
}

/**
 * Decides when a ready task may run, taking turns between the flows of a queue. Unlimited queues
 * dispatch through a window (a bound on tasks dispatched and not yet ended, in this dispatcher's
 * memory), so a big flow's backlog waits here in fair order instead of filling the work stream
 * ahead of everyone else. Limited queues admit tasks through a token bucket and concurrency slots
 * kept in KV and changed only by compare-and-set, so several dispatchers together never admit more
 * than the policy allows. Slots are released when a task's terminal event is seen, exactly once
 * (the release removes the holder or finds it gone).
 */
export async function startDispatcher(ctx: ServiceContext, options: DispatcherOptions = {}): Promise<DispatcherHandle> {
  const consumer = options.consumer ?? 'dispatcher';
  const maxDeliver = options.maxDeliver ?? 20;
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const windowSize = options.dispatchWindow ?? 1_000;
  const leaseMs = options.dispatchLeaseMs ?? 60_000;
  const { layout } = ctx.topo;
  const log = new EventLog(ctx.js, ctx.topo);
  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  const kvm = new Kvm(ctx.js);
  const store = new LimitsStore(await kvm.open(ctx.topo.limitsBucket));
  const gates = new Map<string, QueueGate>();
  const policies = await Policies.open(await kvm.open(ctx.topo.queuesBucket), (queue) => gates.get(queue)?.wake());

  // Which queues have limit records (so releases know where to look), and wake-ups when another
  // dispatcher releases a slot.
  const records = new Map<string, QueueLimitsRecord>();
  const limitsWatch = await (await kvm.open(ctx.topo.limitsBucket)).watch({ key: '>' });
  void (async () => {
    for await (const entry of limitsWatch) {
      if (entry.operation === 'PUT' && entry.value.length > 0) records.set(entry.key, entry.json<QueueLimitsRecord>());
      else records.delete(entry.key);
      gates.get(entry.key)?.wake();
    }
  })();

  const windows = new Map<string, DispatchWindow>();
  function windowFor(queue: string): DispatchWindow {
    let window = windows.get(queue);
    if (!window) windows.set(queue, (window = new DispatchWindow(queue, { size: windowSize, sending: DISPATCHING, leaseMs })));
    return window;
  }

  // The release consumers are shared by all dispatchers, so this one may never see its own tasks
  // end there: every instance reads the ends itself, without acknowledgement, to free its window
  // slots and to drop tasks that ended while they waited (a cancelled flow's).
  const ends = RELEASING.map((type) =>
    ctx.nc.subscribe(eventTypeFilter(layout, type), {
      callback: (error, msg) => {
        if (error) return;
        const flowId = flowIdOfSubject(layout, msg.subject);
        if (flowId === undefined || ![...windows.values(), ...gates.values()].some((room) => room.knows(flowId))) return;
        let taskId: unknown;
        try {
          taskId = msg.json<{ task_id?: unknown }>().task_id;
        } catch {
          return;
        }
        if (typeof taskId !== 'string') return;
        const key = idempotencyKeyOf(flowId, taskId);
        for (const window of windows.values()) window.ended(key);
        for (const gate of gates.values()) gate.ended(key);
      },
    }),
  );

  const heartbeat = setInterval(() => {
    for (const gate of gates.values()) gate.heartbeat();
    for (const window of windows.values()) window.heartbeat();
  }, Math.max(1_000, ackWaitMs / 3));

  function gateFor(queue: string): QueueGate {
    let gate = gates.get(queue);
    if (!gate) {
      gate = new QueueGate(queue, store, () => policies.get(queue), (waiter, reason) => throttled(waiter, reason, queue), ctx.log);
      gates.set(queue, gate);
    }
    return gate;
  }

  async function throttled(waiter: { key: string; concurrencyKey?: string }, reason: ThrottleReason, queue: string): Promise<void> {
    const [flowId, taskId] = waiter.key.split(':') as [string, string];
    await log.appendNew(
      {
        type: 'task.throttled',
        flow_id: flowId,
        task_id: taskId,
        data: { queue, reason, ...(waiter.concurrencyKey !== undefined && { concurrency_key: waiter.concurrencyKey }) },
      },
      `${waiter.key}:task.throttled:${reason}`,
    );
  }

  async function dispatch(ready: EventOf<'task.ready'>, spec: TaskSpec): Promise<void> {
    const now = new Date();
    const key = idempotencyKeyOf(ready.flow_id, ready.task_id);
    await log.appendNew(
      {
        type: 'task.dispatched',
        flow_id: ready.flow_id,
        task_id: ready.task_id,
        data: {
          queue: ready.data.queue,
          retries: spec.retries ?? 0,
          ...(spec.timeout_secs !== undefined && { timeout_secs: spec.timeout_secs }),
          ...(spec.backoff !== undefined && { backoff: spec.backoff }),
        },
      },
      `${key}:task.dispatched`,
      now.getTime(),
    );
    // Recorded before the work item is out, so the history never shows a start before its dispatch.
    const item: WorkItem = { version: 1, flow_id: ready.flow_id, task_id: ready.task_id, spec, idempotency_key: key, dispatched_at: now.toISOString() };
    await ctx.js.publish(workSubject(layout, ready.data.queue), encodeJson(item), { msgID: `${key}:work` });
  }

  // Thousands of ready events may be in hand at once (most of them waiting at a gate or a window);
  // their publishes go out a few hundred at a time so the pending requests do not pile up in memory.
  const dispatching = pLimit(DISPATCHING);

  async function onReady(ready: EventOf<'task.ready'>, msg: JsMsg): Promise<void> {
    if (msg.info.deliveryCount > 1) {
      // A redelivery: if the task already ended, taking a slot now would leak it.
      const history = attemptHistory((await readFlowHistory(ctx.js, ctx.topo, ready.flow_id)).map((stored) => stored.event), ready.task_id);
      if (history.finished) return;
    }
    const queue = ready.data.queue;
    const policy = policies.get(queue);
    const spec = withQueueDefaults(ready.data.spec, policy);
    const waiter = { key: idempotencyKeyOf(ready.flow_id, ready.task_id), flowId: ready.flow_id, priority: ready.data.priority, seq: msg.seq, msg };
    if (!isLimited(policy) && windowSize > 0) {
      await windowFor(queue).dispatch(waiter, () => dispatch(ready, spec));
      return;
    }
    if (isLimited(policy)) {
      const admitted = await gateFor(queue).wait({ ...waiter, ...(ready.data.concurrency_key !== undefined && { concurrencyKey: ready.data.concurrency_key }) });
      if (!admitted) return;
    }
    await dispatching(() => dispatch(ready, spec));
  }

  async function onTerminal(event: FlowEvent): Promise<void> {
    if (!('task_id' in event)) return;
    if (records.size === 0) return;
    const holder = idempotencyKeyOf(event.flow_id, event.task_id);
    // The watched copy names the queue almost always; if it lags behind a very fast task, ask them all.
    const known = [...records].find(([, record]) => Object.hasOwn(record.holders, holder));
    if (known) await store.release([known[0]], holder);
    else await store.release([...records.keys()].filter((q) => tracksSlots(policies.get(q))), holder);
  }

  await ensureConsumer(ctx.jsm, ctx.topo.eventsStream, {
    durable_name: consumer,
    filter_subject: eventTypeFilter(layout, 'task.ready'),
    max_deliver: maxDeliver,
    ack_wait: ackWaitMs * 1_000_000,
    max_ack_pending: 50_000,
  });
  const loops: ConsumerLoop[] = [];
  loops.push(
    await startConsumerLoop({
      js: ctx.js,
      stream: ctx.topo.eventsStream,
      consumer,
      source: 'dispatcher',
      decode: decodeEvent,
      handle: async (event, msg) => {
        if (event.type === 'task.ready') await onReady(event, msg);
      },
      deadLetters,
      log: ctx.log,
      maxDeliver,
      concurrency: options.maxWaiting ?? 10_000,
    }),
  );
  // nats-server 2.9 allows one filter subject per consumer: one release consumer per terminal type.
  for (const type of RELEASING) {
    const name = `${consumer}-release-${type.replace('task.', '').replace('_', '-')}`;
    await ensureConsumer(ctx.jsm, ctx.topo.eventsStream, {
      durable_name: name,
      filter_subject: eventTypeFilter(layout, type),
      max_deliver: maxDeliver,
      // A release held by a dispatcher that died comes back after this.
      ack_wait: ackWaitMs * 1_000_000,
      max_ack_pending: 10_000,
    });
    loops.push(
      await startConsumerLoop({
        js: ctx.js,
        stream: ctx.topo.eventsStream,
        consumer: name,
        source: 'dispatcher-release',
        decode: decodeEvent,
        handle: onTerminal,
        deadLetters,
        log: ctx.log,
        maxDeliver,
        concurrency: 16,
      }),
    );
  }
  ctx.log.info({ consumer }, 'dispatcher started');

  return {
    name: 'dispatcher',
    stats() {
      const out: Record<string, QueueStats> = {};
      for (const [queue, gate] of gates) {
        out[queue] = { waiting: gate.size, running: gate.running, ...(gate.tokens !== undefined && { tokens: gate.tokens }), throttled: { ...gate.throttleCounts } };
      }
      // A queue whose policy changed may have tasks at both.
      for (const [queue, window] of windows) {
        const stats = (out[queue] ??= { waiting: 0, running: 0, throttled: { rate: 0, concurrency: 0, key_concurrency: 0 } });
        stats.waiting += window.size;
        stats.running += window.inFlight;
      }
      return out;
    },
    async stop() {
      clearInterval(heartbeat);
      for (const end of ends) end.unsubscribe();
      for (const gate of gates.values()) gate.close();
      for (const window of windows.values()) window.close();
      await Promise.all(loops.map((l) => l.stop()));
      limitsWatch.stop();
      policies.stop();
    },
  };
}
