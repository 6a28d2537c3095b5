import { hostname } from 'node:os';
import { partitionFilter, type FlowEvent, type SubjectLayout } from '@taskstream/domain';
import { decodeEvent, ensureOrderedTakeover, eventSpan, Kvm, newId, startConsumerLoop, type DeadLetters, type JsMsg } from '@taskstream/nats';
import { PartitionOwner, type ServiceContext } from '@taskstream/runtime';
import type { FlowCache } from './flow-cache.js';

/** The durable consumer of one event partition, shared by all instances (`planner-p3`). */
export function partitionConsumer(consumer: string, layout: SubjectLayout, partition: number, maxDeliver: number) {
  return { durable_name: `${consumer}-p${partition}`, filter_subject: partitionFilter(layout, partition), max_deliver: maxDeliver, ack_wait: 30_000_000_000, max_ack_pending: 20_000 };
}

export interface PartitionsOptions {
  /** Prefix of the partition consumers, and the role the leases are held for. */
  consumer: string;
  instanceId?: string;
  leaseMs?: number;
  maxDeliver: number;
  /** Events of one partition in hand at once (each flow's still one at a time, see EventPlanner). */
  concurrency: number;
  /** Handles one event; resolving acknowledges it. */
  handle: (event: FlowEvent, msg: JsMsg) => Promise<void>;
  cache: FlowCache;
  deadLetters: DeadLetters;
}

/** Each partition's events are folded in stream order by exactly one instance at a time. */
export async function ownPartitions(ctx: ServiceContext, options: PartitionsOptions): Promise<PartitionOwner> {
  const owner = new PartitionOwner({
    kv: await new Kvm(ctx.js).open(ctx.topo.leasesBucket),
    role: options.consumer,
    instanceId: options.instanceId ?? `${hostname()}:${process.pid}:${newId().slice(-6)}`,
    partitions: ctx.topo.layout.partitions,
    ...(options.leaseMs !== undefined && { leaseMs: options.leaseMs }),
    log: ctx.log,
    start: (partition) => startPartition(ctx, partition, options),
  });
  await owner.start();
  return owner;
}

/** Consumes one partition in stream order; resolves to the function that stops it and forgets its flows. */
async function startPartition(ctx: ServiceContext, partition: number, options: PartitionsOptions): Promise<() => Promise<void>> {
  const { maxDeliver, cache } = options;
  const config = partitionConsumer(options.consumer, ctx.topo.layout, partition, maxDeliver);
  await ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, config);
  const loop = await startConsumerLoop({
    js: ctx.js,
    stream: ctx.topo.eventsStream,
    consumer: config.durable_name,
    source: 'planner',
    decode: decodeEvent,
    handle: options.handle,
    span: eventSpan('plan'),
    deadLetters: options.deadLetters,
    log: ctx.log,
    maxDeliver,
    concurrency: options.concurrency,
    // After a failure (a server restart), messages whose acks were lost would come back behind
    // newer ones: restart from the ack floor to keep stream order.
    beforeRestart: () => ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, config),
  });
  return async () => {
    await loop.stop();
    cache.forgetPartition(partition, ctx.topo.layout.partitions);
  };
}
