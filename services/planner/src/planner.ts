import { DeadLetters, EventLog, PARTITION_MAX_DELIVER, TemplateStore } from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';
import { DecisionAppender } from './append-once.js';
import { ChildFlows } from './children.js';
import { SignalMatcher, startSignalMatching } from './signals.js';
import { startDeadlineTimers } from './deadlines.js';
import { FlowCache, flowHistory } from './flow-cache.js';
import { ownPartitions } from './partitions.js';
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
  /**
   * Events of one partition handled at once (default 32). Each flow's events are still handled one
   * at a time in stream order; this lets other flows' events go ahead while one flow's decisions
   * wait for their PubAcks. 1 handles a partition strictly one event at a time.
   */
  concurrency?: number;
}

/**
 * Folds every flow's events in stream order with the pure decider and appends its decisions.
 * Each event is acknowledged only after its decisions are stored.
 */
export async function startPlanner(ctx: ServiceContext, options: PlannerOptions = {}): Promise<ServiceHandle> {
  const consumer = options.consumer ?? 'planner';
  const log = new EventLog(ctx.js, ctx.topo);
  const history = await flowHistory(ctx);
  const cache = new FlowCache(history, options.maxCachedFlows ?? 50_000);
  const children = new ChildFlows(ctx, log, history, await TemplateStore.open(ctx.js, ctx.topo));
  const appender = new DecisionAppender(log, history, ctx.log, children);
  const signals = await SignalMatcher.open(ctx, log, history);
  const planner = new EventPlanner({ cache, history, appender, timers: ctx, log: ctx.log, signals, children });
  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  const owner = await ownPartitions(ctx, {
    consumer,
    instanceId: options.instanceId,
    leaseMs: options.leaseMs,
    maxDeliver: options.maxDeliver ?? PARTITION_MAX_DELIVER,
    concurrency: options.concurrency ?? 32,
    handle: planner.handle,
    cache,
    deadLetters,
  });
  const timers = await startDeadlineTimers(ctx, { consumer: `${consumer}-timers`, log, history, deadLetters });
  const matching = await startSignalMatching(ctx, signals, { consumer: `${consumer}-signals`, deadLetters });
  ctx.log.info({ consumer, partitions: owner.partitions }, 'planner started');
  return {
    name: 'planner',
    async stop() {
      await matching.stop();
      await timers.stop();
      await owner.stop();
    },
  };
}
