import { hostname } from 'node:os';
import {
  allEventsFilter,
  applyTaskTransition,
  emptyQueueStats,
  evolve,
  isTerminalFlow,
  partitionFilter,
  partitionOf,
  refoldTransitions,
  taskSnapshot,
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
  ensureOrderedTakeover,
  foldFlowHistory,
  Kvm,
  newId,
  startConsumerLoop,
  type JsMsg,
  type KV,
  markSettled,
} from '@taskstream/nats';
import { PartitionOwner, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';
import { WriteBatch } from './write-batch.js';

/** A flow whose view waits to be written; `summary` when its listing entry changed too. */
interface PendingFlow {
  state: FlowState;
  summary: boolean;
}

export interface ProjectorOptions {
  /** Prefix of the durable consumers, one per partition (`projector-p3`), shared by all instances. */
  consumer?: string;
  instanceId?: string;
  leaseMs?: number;
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
  const partitions = ctx.topo.layout.partitions;
  const consumerConfig = (partition: number) => ({
    durable_name: `${consumer}-p${partition}`,
    filter_subject: partitionFilter(ctx.topo.layout, partition),
    max_deliver: maxDeliver,
    ack_wait: 30_000_000_000,
    max_ack_pending: 20_000,
  });
  /** Statistics are kept per queue and partition, so each record has one writer; readers add them up. */
  const statsKey = (queue: string, partition: number) => `${queue}.p${partition}`;

  if (options.rebuild) {
    // Fold the whole log first and write each view once, with its final state, so readers never
    // see a view go back in time; then go live just after the last event read.
    ctx.log.info({ consumer }, 'rebuilding every view from the log');
    const flows = new Map<string, FlowState>();
    const rebuiltStats = new Map<string, QueueStatsView>();
    const reader = await ctx.js.consumers.get(ctx.topo.eventsStream, { filter_subjects: allEventsFilter(ctx.topo.layout) });
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
          const before = prior && taskId ? taskSnapshot(prior, taskId) : undefined;
          const state = evolve(prior, event, msg.seq);
          if (state) {
            flows.set(event.flow_id, state);
            const task = taskId ? state.tasks[taskId] : undefined;
            if (task) {
              const key = statsKey(task.spec.queue, partitionOf(event.flow_id, partitions));
              rebuiltStats.set(key, applyTaskTransition(rebuiltStats.get(key) ?? emptyQueueStats(task.spec.queue), before, taskSnapshot(state, taskId!)!, event.time, msg.seq));
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
    for (const [key, view] of rebuiltStats) {
      await statsBucket.put(key, encodeJson(view));
      stats.set(key, view);
    }
    for (let p = 0; p < partitions; p++) {
      await ctx.jsm.consumers.delete(ctx.topo.eventsStream, `${consumer}-p${p}`).catch(() => false);
      await ctx.jsm.consumers.add(ctx.topo.eventsStream, { ...consumerConfig(p), ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 });
    }
    ctx.log.info({ flows: flows.size, through_seq: lastSeq }, 'rebuild complete; going live');
  }

  async function statsOf(key: string, queue: string): Promise<QueueStatsView> {
    let current = stats.get(key);
    if (!current) {
      const entry = await statsBucket.get(key);
      current = entry && entry.operation === 'PUT' && entry.value.length > 0 ? entry.json<QueueStatsView>() : emptyQueueStats(queue);
      stats.set(key, current);
    }
    return current;
  }

  const batch = new WriteBatch<PendingFlow>({
    log: ctx.log,
    newer: (a, b) => (b.state.last_seq >= a.state.last_seq ? { state: b.state, summary: a.summary || b.summary } : { ...a, summary: a.summary || b.summary }),
    write: async ({ flows, stats: statsKeys }) => {
      // Encode before the first await: later events keep folding into the same states meanwhile.
      const statsWrites = [...statsKeys].flatMap((key) => {
        const view = stats.get(key);
        return view ? [{ key, bytes: encodeJson(view) }] : [];
      });
      const viewWrites = [...flows].map(([flowId, { state, summary }]) => ({ flowId, view: encodeView(state), summary: summary ? encodeJson(toFlowSummary(state)) : undefined }));
      // Statistics first, then the views: a redelivery finds a view newer only if the statistics
      // already counted its events too (and their own sequence guard stops a second count).
      await Promise.all(statsWrites.map(({ key, bytes }) => statsBucket.put(key, bytes)));
      await Promise.all(viewWrites.flatMap(({ flowId, view, summary }) => [views.put(flowId, view), ...(summary ? [summaries.put(flowId, summary)] : [])]));
    },
  });

  async function handle(event: FlowEvent, msg: JsMsg): Promise<void> {
    try {
      await project(event, msg);
    } catch (error) {
      // Nothing of this event was folded (every read comes before the fold); forget the flow so the
      // redelivery starts again from the store and the log.
      cache.delete(event.flow_id);
      throw error;
    }
  }

  /** Loads the statistics record of a task, so the fold after it cannot fail halfway. */
  async function statsFor(state: FlowState, taskId: string | undefined): Promise<string | undefined> {
    const task = taskId === undefined ? undefined : state.tasks[taskId];
    if (!task) return undefined;
    const key = statsKey(task.spec.queue, partitionOf(state.flow_id, partitions));
    await statsOf(key, task.spec.queue);
    return key;
  }

  interface Transition {
    key: string;
    before: TaskSnapshot | undefined;
    after: TaskSnapshot;
    /** `before` is what the statistics hold for the task (memory's fold), not a fold of the log. */
    knownBefore: boolean;
  }

  async function project(event: FlowEvent, msg: JsMsg): Promise<void> {
    let state = cache.get(event.flow_id) ?? null;
    const taskId = 'task_id' in event ? event.task_id : undefined;
    let statusBefore: FlowState['status'] | undefined;
    const transitions: Transition[] = [];
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
        const key = await statsFor(prior, taskId);
        const before = taskId ? taskSnapshot(prior, taskId) : undefined;
        statusBefore = prior.status;
        state = evolve(prior, event, msg.seq)!;
        // The statistics' sequence guard decides whether they counted this event already.
        if (key !== undefined) transitions.push({ key, before, after: taskSnapshot(state, taskId!)!, knownBefore: false });
      }
      cache.set(event.flow_id, state);
      if (cache.size > maxCached) cache.delete(cache.keys().next().value!);
    } else if (msg.seq > state.last_seq) {
      const key = await statsFor(state, taskId);
      const before = taskId ? taskSnapshot(state, taskId) : undefined;
      statusBefore = state.status;
      evolve(state, event, msg.seq);
      // Guarded by sequence too: after a crash between writing statistics and views, memory rebuilt
      // from the log can be behind what the statistics already counted.
      if (key !== undefined) transitions.push({ key, before, after: taskSnapshot(state, taskId!)!, knownBefore: false });
    } else if (msg.info.deliveryCount === 1) {
      return;
    } else {
      // Redelivered behind newer events of its flow (its ack was lost, e.g. while a consumer
      // leader moved). If memory lacked it, the newer events were folded without it: refold from
      // the log, and count every task whose state the refold changes, from what memory held.
      const refolded = await foldFlowHistory(ctx.js, ctx.topo, event.flow_id, state.last_seq);
      if (refolded === null) return;
      const memory = state;
      const changed = refoldTransitions(memory, refolded);
      const keys = await Promise.all(changed.map(({ taskId: id }) => statsFor(refolded, id)));
      changed.forEach(({ before, after }, i) => transitions.push({ key: keys[i]!, before, after, knownBefore: true }));
      statusBefore = memory.status;
      state = refolded;
      cache.set(event.flow_id, state);
    }

    const touched = new Set<string>();
    for (const { key, before, after, knownBefore } of transitions) {
      const current = stats.get(key)!;
      const next = applyTaskTransition(current, before, after, event.time, msg.seq, knownBefore);
      if (next === current) continue;
      stats.set(key, next);
      touched.add(key);
    }
    markSettled(msg);
    batch.hold(msg, event.flow_id, { state, summary: statusBefore !== state.status || event.type === 'flow.derived' }, touched);
    if (isTerminalFlow(state)) cache.delete(event.flow_id);
    if (batch.due(msg)) await batch.flush();
  }

  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  const owner = new PartitionOwner({
    kv: await kvm.open(ctx.topo.leasesBucket),
    role: consumer,
    instanceId: options.instanceId ?? `${hostname()}:${process.pid}:${newId().slice(-6)}`,
    partitions,
    ...(options.leaseMs !== undefined && { leaseMs: options.leaseMs }),
    log: ctx.log,
    start: async (partition) => {
      await ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, consumerConfig(partition));
      // After a failure (a server restart), restart from the ack floor to keep stream order.
      const loop = await startConsumerLoop({ js: ctx.js, stream: ctx.topo.eventsStream, consumer: `${consumer}-p${partition}`, source: 'projector', decode: decodeEvent, handle, deadLetters, log: ctx.log, maxDeliver, beforeRestart: () => ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, consumerConfig(partition)) });
      return async () => {
        await loop.stop();
        await batch.flush();
        // Another instance owns this partition now: what we remembered of it may go stale.
        for (const flowId of [...cache.keys()]) if (partitionOf(flowId, partitions) === partition) cache.delete(flowId);
        for (const key of [...stats.keys()]) if (key.endsWith(`.p${partition}`)) stats.delete(key);
      };
    },
  });
  await owner.start();
  ctx.log.info({ consumer, partitions: owner.partitions }, 'projector started');
  return {
    name: 'projector',
    stop: async () => {
      await owner.stop();
      await batch.close();
    },
  };
}
