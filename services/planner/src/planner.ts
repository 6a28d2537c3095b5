import { hostname } from 'node:os';
import { partitionFilter } from '@taskstream/domain';
import { DeadLetters, decodeEvent, ensureOrderedTakeover, EventLog, Kvm, newId, startConsumerLoop } from '@taskstream/nats';
import { PartitionOwner, type ServiceContext, type ServiceHandle } from '@taskstream/runtime';
import { DecisionAppender } from './append-once.js';
import { startDeadlineTimers } from './deadlines.js';
import { FlowCache, flowHistory } from './flow-cache.js';
import { EventPlanner } from './plan-event.js';

export interface PlannerOptions {
  /** Prefix of the durable consumers, one per partition (`planner-p3`), shared by all instances. */
  consumer?: string;
  instanceId?: string;
  /** Lease length for partition ownership; a dead instance's flows move after at most this. */
  leaseMs?: number;
  maxDeliver?: number;
  /** Flows kept in memory at most; the least recently used are dropped and rebuilt from the log on demand. */
  maxCachedFlows?: number;
}

/**
 * Folds every flow's events in stream order with the pure decider and appends its decisions.
 * Each event is acknowledged only after its decisions are stored.
 */
export async function startPlanner(ctx: ServiceContext, options: PlannerOptions = {}): Promise<ServiceHandle> {
  const consumer = options.consumer ?? 'planner';
  const maxDeliver = options.maxDeliver ?? 10;
  const log = new EventLog(ctx.js, ctx.topo);
  const history = await flowHistory(ctx);
  const cache = new FlowCache(history, options.maxCachedFlows ?? 50_000);
  const appender = new DecisionAppender(log, history, ctx.log);
  const { handle } = new EventPlanner({ cache, history, appender, timers: ctx, log: ctx.log });

  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  // Each partition's events are folded in stream order by exactly one instance at a time.
  const owner = new PartitionOwner({
    kv: await new Kvm(ctx.js).open(ctx.topo.leasesBucket),
    role: consumer,
    instanceId: options.instanceId ?? `${hostname()}:${process.pid}:${newId().slice(-6)}`,
    partitions: ctx.topo.layout.partitions,
    ...(options.leaseMs !== undefined && { leaseMs: options.leaseMs }),
    log: ctx.log,
    start: async (partition) => {
      const name = `${consumer}-p${partition}`;
      const config = { durable_name: name, filter_subject: partitionFilter(ctx.topo.layout, partition), max_deliver: maxDeliver, ack_wait: 30_000_000_000, max_ack_pending: 20_000 };
      await ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, config);
      // After a failure (a server restart), messages whose acks were lost would come back behind
      // newer ones: restart from the ack floor to keep stream order.
      const loop = await startConsumerLoop({ js: ctx.js, stream: ctx.topo.eventsStream, consumer: name, source: 'planner', decode: decodeEvent, handle, deadLetters, log: ctx.log, maxDeliver, beforeRestart: () => ensureOrderedTakeover(ctx.jsm, ctx.topo.eventsStream, config) });
      return async () => {
        await loop.stop();
        cache.forgetPartition(partition, ctx.topo.layout.partitions);
      };
    },
  });
  await owner.start();

  const timers = await startDeadlineTimers(ctx, { consumer: `${consumer}-timers`, log, history, deadLetters });
  ctx.log.info({ consumer, partitions: owner.partitions }, 'planner started');
  return {
    name: 'planner',
    async stop() {
      await timers.stop();
      await owner.stop();
    },
  };
}
