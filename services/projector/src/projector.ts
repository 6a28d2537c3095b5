import { hostname } from 'node:os';
import { allEventsFilter, evolve, isTerminalFlow, partitionFilter, partitionOf, toFlowListing, type FlowEvent, type FlowState } from '@taskstream/domain';
import {
  AckPolicy,
  DeadLetters,
  DeliverPolicy,
  decodeEvent,
  definitionsOf,
  type Definitions,
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
import { planViewWrite, storeViews, type ProjectedFlow, type TouchedTasks } from './view-store.js';
import { WriteBatch } from './write-batch.js';

/** A flow whose view and summary wait to be written, with the tasks its events touched. */
interface PendingFlow {
  flow: ProjectedFlow;
  tasks: TouchedTasks;
}

function union(a: TouchedTasks, b: TouchedTasks): TouchedTasks {
  if (a === 'all' || b === 'all') return 'all';
  for (const taskId of b) a.add(taskId);
  return a;
}

/** What the projector reads of a stored view before taking its flow into memory. */
interface StoredHeader {
  last_seq: number;
  tasks_paged?: true;
}

/** Every event is folded through here, so a step every event needs before folding has one place. */
function fold(state: FlowState | null, event: FlowEvent, seq: number): FlowState | null {
  return evolve(state, event, seq);
}

/** A submission whose definition was stored apart gets it back before it is folded. */
async function hydrated(definitions: Definitions, event: FlowEvent): Promise<FlowEvent> {
  return event.type === 'flow.submitted' ? definitions.hydrate(event) : event;
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

async function purge(kv: KV): Promise<void> {
  for await (const key of await kv.keys()) await kv.purge(key);
}

/**
 * Folds every event into the read models the gateway serves: per-flow views (`<prefix>_flows`,
 * one key per flow, or for a large flow a header and one key per task: see planViewWrite) and
 * flow summaries (`<prefix>_flow_summaries`) for listing, which carry each flow's share of its
 * queues' statistics. Each is a function of one flow's fold, derived from the log; `rebuild`
 * recomputes them from it.
 */
export async function startProjector(ctx: ServiceContext, options: ProjectorOptions = {}): Promise<ServiceHandle> {
  const consumer = options.consumer ?? 'projector';
  const maxDeliver = options.maxDeliver ?? 10;
  const maxCached = options.maxCachedFlows ?? 50_000;
  const kvm = new Kvm(ctx.js);
  const definitions = await definitionsOf(ctx.js, ctx.topo);
  const views = await kvm.open(ctx.topo.flowsBucket);
  const summaries = await kvm.open(ctx.topo.summariesBucket);

  const cache = new Map<string, ProjectedFlow>();
  /**
   * Flows not in memory whose stored view was found at or beyond the event read (a consumer
   * replaying from an earlier position): their further old events are skipped without reading
   * the store again. A stored view only moves forward, so an entry never goes wrong, only stale.
   */
  const storedAhead = new Map<string, number>();
  const partitions = ctx.topo.layout.partitions;
  const consumerConfig = (partition: number) => ({
    durable_name: `${consumer}-p${partition}`,
    filter_subject: partitionFilter(ctx.topo.layout, partition),
    max_deliver: maxDeliver,
    ack_wait: 30_000_000_000,
    max_ack_pending: 20_000,
  });

  if (options.rebuild) {
    // Fold the whole log first and write each view once, with its final state, so readers never
    // see a view go back in time; then go live just after the last event read.
    ctx.log.info({ consumer }, 'rebuilding every view from the log');
    const flows = new Map<string, FlowState>();
    const reader = await ctx.js.consumers.get(ctx.topo.eventsStream, { filter_subjects: allEventsFilter(ctx.topo.layout) });
    let lastSeq = (await ctx.jsm.streams.info(ctx.topo.eventsStream)).state.first_seq - 1;
    if ((await reader.info()).num_pending > 0) {
      const messages = await reader.consume({ max_messages: 1000 });
      for await (const msg of messages) {
        lastSeq = msg.seq;
        const decoded = decodeEvent(msg.data);
        if (decoded.ok) {
          const event = await hydrated(definitions, decoded.value);
          const state = fold(flows.get(event.flow_id) ?? null, event, msg.seq);
          if (state) flows.set(event.flow_id, state);
        }
        if (msg.info.pending === 0) break;
      }
      await messages.close();
    }
    for (const kv of [views, summaries]) await purge(kv);
    for (const [flowId, state] of flows) {
      const write = planViewWrite({ state, paged: false }, 'all');
      await storeViews(views, [write], () => [summaries.put(flowId, encodeJson(toFlowListing(state)))]);
      if (!isTerminalFlow(state)) cache.set(flowId, { state, paged: write.paged });
    }
    for (let p = 0; p < partitions; p++) {
      await ctx.jsm.consumers.delete(ctx.topo.eventsStream, `${consumer}-p${p}`).catch(() => false);
      await ctx.jsm.consumers.add(ctx.topo.eventsStream, { ...consumerConfig(p), ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 });
    }
    ctx.log.info({ flows: flows.size, through_seq: lastSeq }, 'rebuild complete; going live');
  }

  const batch = new WriteBatch<PendingFlow>({
    log: ctx.log,
    // The pending entries are the batch's own: the older one's set of touched tasks can take the newer's.
    merge: (a, b) => ({
      flow: b.flow.state.last_seq >= a.flow.state.last_seq ? b.flow : a.flow,
      tasks: union(a.tasks, b.tasks),
    }),
    write: async ({ flows }) => {
      // Encode before the first await: later events keep folding into the same states meanwhile.
      const viewWrites = [...flows.values()].map(({ flow, tasks }) => ({ flow, write: planViewWrite(flow, tasks) }));
      const summaryWrites = [...flows].map(([flowId, { flow }]) => ({ flowId, bytes: encodeJson(toFlowListing(flow.state)) }));
      await storeViews(
        views,
        viewWrites.map(({ write }) => write),
        () => summaryWrites.map(({ flowId, bytes }) => summaries.put(flowId, bytes)),
      );
      for (const { flow, write } of viewWrites) flow.paged = write.paged;
    },
  });

  async function handle(event: FlowEvent, msg: JsMsg): Promise<void> {
    try {
      await project(await hydrated(definitions, event), msg);
    } catch (error) {
      // Nothing of this event was folded (every read comes before the fold); forget the flow so the
      // redelivery starts again from the store and the log.
      cache.delete(event.flow_id);
      throw error;
    }
  }

  async function storedHeader(flowId: string): Promise<StoredHeader | undefined> {
    const entry = await views.get(flowId);
    return entry && entry.operation === 'PUT' && entry.value.length > 0 ? entry.json<StoredHeader>() : undefined;
  }

  async function project(event: FlowEvent, msg: JsMsg): Promise<void> {
    let flow = cache.get(event.flow_id);
    const taskId = 'task_id' in event ? event.task_id : undefined;
    let tasks: TouchedTasks = new Set(taskId === undefined ? [] : [taskId]);
    if (flow === undefined) {
      // Not in memory: new, finished and evicted, or read again (a redelivery, or a consumer
      // replaying from an earlier position). An event the stored view already reflects, its
      // flow.submitted too, must not overwrite that view with an older state.
      const ahead = storedAhead.get(event.flow_id);
      if (ahead !== undefined && ahead >= msg.seq) return;
      const stored = await storedHeader(event.flow_id);
      if (stored && stored.last_seq >= msg.seq) {
        storedAhead.set(event.flow_id, stored.last_seq);
        if (storedAhead.size > maxCached) storedAhead.delete(storedAhead.keys().next().value!);
        return;
      }
      let state: FlowState;
      if (event.type === 'flow.submitted') {
        state = fold(null, event, msg.seq)!;
        tasks = 'all';
      } else {
        const prior = await foldFlowHistory(ctx.js, ctx.topo, event.flow_id, msg.seq - 1);
        if (prior === null) return;
        // A stored view of the same sequence is this very fold: only what the event touches changes.
        if (stored?.last_seq !== prior.last_seq) tasks = 'all';
        state = fold(prior, event, msg.seq)!;
      }
      flow = { state, paged: stored?.tasks_paged === true };
      storedAhead.delete(event.flow_id);
      cache.set(event.flow_id, flow);
      if (cache.size > maxCached) cache.delete(cache.keys().next().value!);
    } else if (msg.seq > flow.state.last_seq) {
      fold(flow.state, event, msg.seq);
    } else if (msg.info.deliveryCount === 1) {
      return;
    } else {
      // Redelivered behind newer events of its flow (its ack was lost, e.g. while a consumer
      // leader moved). If memory lacked it, the newer events were folded without it: refold.
      const refolded = await foldFlowHistory(ctx.js, ctx.topo, event.flow_id, flow.state.last_seq);
      if (refolded === null) return;
      flow.state = refolded;
      tasks = 'all';
    }
    markSettled(msg);
    batch.hold(msg, event.flow_id, { flow, tasks });
    if (isTerminalFlow(flow.state)) cache.delete(event.flow_id);
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
        for (const flowId of [...storedAhead.keys()]) if (partitionOf(flowId, partitions) === partition) storedAhead.delete(flowId);
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
