import {
  applyTaskTransition,
  emptyQueueStats,
  evolve,
  isTerminalFlow,
  toFlowSummary,
  toFlowView,
  type FlowEvent,
  type FlowState,
  type QueueStatsView,
  type TaskSnapshot,
} from '@taskstream/domain';
import {
  AckPolicy,
  DeadLetters,
  DeliverPolicy,
  decodeEvent,
  encodeJson,
  ensureConsumer,
  foldFlowHistory,
  Kvm,
  startConsumerLoop,
  type JsMsg,
  type KV,
} from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';

export interface ProjectorOptions {
  consumer?: string;
  maxDeliver?: number;
  maxCachedFlows?: number;
  /** Throw every view away and fold the whole log again before going live. */
  rebuild?: boolean;
}

/** Stored views stay well under NATS's default 1 MiB payload; larger ones keep only the flow's header. */
const MAX_VIEW_BYTES = 768 * 1024;

function encodeView(state: FlowState): Uint8Array {
  const view = toFlowView(state);
  const bytes = encodeJson(view);
  if (bytes.length <= MAX_VIEW_BYTES) return bytes;
  return encodeJson({ ...view, tasks: [], tasks_omitted: true });
}

async function purge(kv: KV): Promise<void> {
  for await (const key of await kv.keys()) await kv.purge(key);
}

/**
 * Folds every event into the read models the gateway serves: per-flow views (`<prefix>_flows`),
 * flow summaries for listing (`<prefix>_flow_summaries`) and per-queue statistics
 * (`<prefix>_queue_stats`). All are derived from the log; `rebuild` recomputes them from it.
 */
export async function startProjector(ctx: ServiceContext, options: ProjectorOptions = {}): Promise<ServiceHandle> {
  const consumer = options.consumer ?? 'projector';
  const maxDeliver = options.maxDeliver ?? 10;
  const maxCached = options.maxCachedFlows ?? 50_000;
  const kvm = new Kvm(ctx.js);
  const views = await kvm.open(ctx.topo.flowsBucket);
  const summaries = await kvm.open(ctx.topo.summariesBucket);
  const statsBucket = await kvm.open(ctx.topo.queueStatsBucket);

  const cache = new Map<string, FlowState>();
  const stats = new Map<string, QueueStatsView>();
  const snapshot = (state: FlowState, taskId: string): TaskSnapshot | undefined => {
    const task = state.tasks[taskId];
    return task && { status: task.status, throttled: task.waiting_reason !== undefined };
  };
  const consumerConfig = {
    durable_name: consumer,
    filter_subject: `${ctx.topo.layout.prefix}.evt.>`,
    max_deliver: maxDeliver,
    ack_wait: 30_000_000_000,
    max_ack_pending: 20_000,
  };

  if (options.rebuild) {
    // Fold the whole log first and write each view once, with its final state, so readers never
    // see a view go back in time; then go live just after the last event read.
    ctx.log.info({ consumer }, 'rebuilding every view from the log');
    const flows = new Map<string, FlowState>();
    const rebuiltStats = new Map<string, QueueStatsView>();
    const reader = await ctx.js.consumers.get(ctx.topo.eventsStream, { filter_subjects: consumerConfig.filter_subject });
    let lastSeq = (await ctx.jsm.streams.info(ctx.topo.eventsStream)).state.first_seq - 1;
    if ((await reader.info()).num_pending > 0) {
      const messages = await reader.consume({ max_messages: 1000 });
      for await (const msg of messages) {
        lastSeq = msg.seq;
        const decoded = decodeEvent(msg.data);
        if (decoded.ok) {
          const event = decoded.value;
          const prior = flows.get(event.flow_id) ?? null;
          const taskId = 'task_id' in event ? event.task_id : undefined;
          const before = prior && taskId ? snapshot(prior, taskId) : undefined;
          const state = evolve(prior, event, msg.seq);
          if (state) {
            flows.set(event.flow_id, state);
            const task = taskId ? state.tasks[taskId] : undefined;
            if (task) {
              const queue = task.spec.queue;
              rebuiltStats.set(queue, applyTaskTransition(rebuiltStats.get(queue) ?? emptyQueueStats(queue), before, snapshot(state, taskId!)!, event.time, msg.seq));
            }
          }
        }
        if (msg.info.pending === 0) break;
      }
      await messages.close();
    }
    for (const kv of [views, summaries, statsBucket]) await purge(kv);
    for (const [flowId, state] of flows) {
      await Promise.all([views.put(flowId, encodeView(state)), summaries.put(flowId, encodeJson(toFlowSummary(state)))]);
      if (!isTerminalFlow(state)) cache.set(flowId, state);
    }
    for (const [queue, view] of rebuiltStats) {
      await statsBucket.put(queue, encodeJson(view));
      stats.set(queue, view);
    }
    await ctx.jsm.consumers.delete(ctx.topo.eventsStream, consumer).catch(() => false);
    await ctx.jsm.consumers.add(ctx.topo.eventsStream, { ...consumerConfig, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 });
    ctx.log.info({ flows: flows.size, through_seq: lastSeq }, 'rebuild complete; going live');
  } else {
    await ensureConsumer(ctx.jsm, ctx.topo.eventsStream, consumerConfig);
  }

  async function statsOf(queue: string): Promise<QueueStatsView> {
    let current = stats.get(queue);
    if (!current) {
      const entry = await statsBucket.get(queue);
      current = entry && entry.operation === 'PUT' && entry.value.length > 0 ? entry.json<QueueStatsView>() : emptyQueueStats(queue);
      stats.set(queue, current);
    }
    return current;
  }

  async function handle(event: FlowEvent, msg: JsMsg): Promise<void> {
    let state = cache.get(event.flow_id) ?? null;
    const taskId = 'task_id' in event ? event.task_id : undefined;
    let before: TaskSnapshot | undefined;
    let statusBefore: FlowState['status'] | undefined;
    if (state === null) {
      // Not in memory: either new, or finished and evicted. A redelivered old event must not
      // overwrite the newer view already stored.
      if (msg.info.deliveryCount > 1 || event.type !== 'flow.submitted') {
        const stored = await views.get(event.flow_id);
        if (stored && stored.operation === 'PUT' && stored.value.length > 0 && stored.json<{ last_seq: number }>().last_seq >= msg.seq) return;
      }
      if (event.type === 'flow.submitted') {
        state = evolve(null, event, msg.seq)!;
      } else {
        const prior = await foldFlowHistory(ctx.js, ctx.topo, event.flow_id, msg.seq - 1);
        if (prior === null) return;
        before = taskId ? snapshot(prior, taskId) : undefined;
        statusBefore = prior.status;
        state = evolve(prior, event, msg.seq)!;
      }
      cache.set(event.flow_id, state);
      if (cache.size > maxCached) cache.delete(cache.keys().next().value!);
    } else {
      if (msg.seq <= state.last_seq) return;
      before = taskId ? snapshot(state, taskId) : undefined;
      statusBefore = state.status;
      evolve(state, event, msg.seq);
    }

    const writes: Array<Promise<unknown>> = [views.put(event.flow_id, encodeView(state))];
    if (statusBefore !== state.status || event.type === 'flow.derived') writes.push(summaries.put(event.flow_id, encodeJson(toFlowSummary(state))));
    if (taskId && state.tasks[taskId]) {
      const queue = state.tasks[taskId]!.spec.queue;
      const current = await statsOf(queue);
      const next = applyTaskTransition(current, before, snapshot(state, taskId)!, event.time, msg.seq);
      if (next !== current) {
        stats.set(queue, next);
        writes.push(statsBucket.put(queue, encodeJson(next)));
      }
    }
    await Promise.all(writes);
    if (isTerminalFlow(state)) cache.delete(event.flow_id);
  }

  const loop = await startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.eventsStream,
    consumer,
    source: 'projector',
    decode: decodeEvent,
    handle,
    deadLetters: new DeadLetters(ctx.js, ctx.topo),
    log: ctx.log,
    maxDeliver,
  });
  ctx.log.info({ consumer }, 'projector started');
  return { name: 'projector', stop: () => loop.stop() };
}
