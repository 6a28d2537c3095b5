import { hostname } from 'node:os';
import { partitionFilter } from '@taskstream/domain';
import { DeadLetters, decodeEvent, definitionsOf, ensureOrderedTakeover, FlowSummaryStore, FlowViewStore, Kvm, newId, PARTITION_MAX_DELIVER, startConsumerLoop } from '@taskstream/nats';
import { PartitionOwner, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';
import { FlowMemory } from './flow-memory.js';
import { Projection } from './projection.js';
import { rebuildViews } from './rebuild.js';
import { startFlowRetention } from './retention.js';
import { viewBatch } from './view-batch.js';

export interface ProjectorOptions {
  /** Prefix of the durable consumers, one per partition (`projector-p3`), shared by all instances. */
  consumer?: string;
  instanceId?: string;
  leaseMs?: number;
  maxDeliver?: number;
  maxCachedFlows?: number;
  /** Throw every view away and fold the whole log again before going live. */
  rebuild?: boolean;
  /**
   * Remove a flow this many seconds after it ended (its events, view, summary, definition and
   * artifacts); 0 or absent keeps every flow. The setting is bounded (MIN_FLOW_RETENTION_SECS);
   * this option is not, for tests.
   */
  flowRetentionSecs?: number;
}

/**
 * Folds every event into the read models the gateway serves: per-flow views (`<prefix>_flows`,
 * one key per flow, or for a large flow a header and pages of its tasks: see planViewWrite) and
 * flow summaries (`<prefix>_flow_summaries`) for listing, which carry each flow's share of its
 * queues' statistics. Each is a function of one flow's fold, derived from the log; `rebuild`
 * recomputes them from it. Each partition's events are folded in order by one instance at a time.
 */
export async function startProjector(ctx: ServiceContext, options: ProjectorOptions = {}): Promise<ServiceHandle> {
  const consumer = options.consumer ?? 'projector';
  const maxDeliver = options.maxDeliver ?? PARTITION_MAX_DELIVER;
  const kvm = new Kvm(ctx.js);
  const definitions = await definitionsOf(ctx.js, ctx.topo);
  const views = new FlowViewStore(ctx.js, await kvm.open(ctx.topo.flowsBucket), ctx.topo.flowsBucket);
  const summaries = new FlowSummaryStore(await kvm.open(ctx.topo.summariesBucket), ctx.topo.summariesBucket);
  const memory = new FlowMemory(options.maxCachedFlows ?? 50_000, ctx.topo.layout.partitions, (flowId) => definitions.release(flowId));
  const consumerConfig = (partition: number) => ({
    durable_name: `${consumer}-p${partition}`,
    filter_subject: partitionFilter(ctx.topo.layout, partition),
    max_deliver: maxDeliver,
    ack_wait: 30_000_000_000,
    max_ack_pending: 20_000,
  });
  if (options.rebuild) await rebuildViews(ctx, { views, summaries, definitions, memory, consumer, consumerConfig });

  const batch = viewBatch(ctx.log, views, summaries);
  const projection = new Projection(ctx, memory, views, definitions, batch);
  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  const owner = new PartitionOwner({
    kv: await kvm.open(ctx.topo.leasesBucket),
    role: consumer,
    instanceId: options.instanceId ?? `${hostname()}:${process.pid}:${newId().slice(-6)}`,
    partitions: ctx.topo.layout.partitions,
    ...(options.leaseMs !== undefined && { leaseMs: options.leaseMs }),
    log: ctx.log,
    start: async (partition) => {
      const takeOver = () => ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, consumerConfig(partition));
      await takeOver();
      // After a failure (a server restart), restart from the ack floor to keep stream order.
      const loop = await startConsumerLoop({ js: ctx.js, stream: ctx.topo.eventsStream, consumer: `${consumer}-p${partition}`, source: 'projector', decode: decodeEvent, handle: (event, msg) => projection.handle(event, msg), deadLetters, log: ctx.log, maxDeliver, beforeRestart: takeOver });
      return async () => {
        await loop.stop();
        await batch.flush();
        memory.forgetPartition(partition);
      };
    },
  });
  await owner.start();
  const retentionMs = (options.flowRetentionSecs ?? 0) * 1000;
  const sweeps = retentionMs > 0 ? await startFlowRetention(ctx, { retentionMs, views, summaries, definitions, memory, consumer, owned: () => owner.partitions }) : undefined;
  ctx.log.info({ consumer, partitions: owner.partitions, ...(retentionMs > 0 && { flow_retention_secs: retentionMs / 1000 }) }, 'projector started');
  return {
    name: 'projector',
    stop: async () => {
      await sweeps?.stop();
      await owner.stop();
      await batch.close();
    },
  };
}
