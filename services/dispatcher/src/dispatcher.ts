import { DeadLetters, EventLog, KnownStops, QueueLimitsStore, QueuePolicyStore, readStoredStops, watchStops } from '@taskstream/nats';
import type { QueuePolicy } from '@taskstream/domain';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';
import { startReadyConsumer, startReleaseConsumers } from './consumers.js';
import { dispatchStep } from './dispatch.js';
import { subscribeEnds } from './ends.js';
import { LimitsWatch } from './limits-watch.js';
import { readyHandler } from './ready.js';
import { releaseHandler } from './releases.js';
import { Rooms, type QueueStats } from './rooms.js';
import { throttleReport } from './throttled.js';
import { reportWaiting } from './metrics.js';

export { withQueueDefaults } from './dispatch.js';
export type { QueueStats } from './rooms.js';

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
  /**
   * How far back the stop watch starts (default 10 minutes), so the ready events handed back by a
   * dispatcher that stopped come here with the flow stops stored since.
   */
  stopsLookbackMs?: number;
}

export interface DispatcherHandle extends ServiceHandle {
  /** Per-queue counters (the seam metrics export reads). */
  stats(): Record<string, QueueStats>;
  /** A queue's policy as this dispatcher applies it now (its watch's copy, maybe a moment behind the store). */
  policyOf(queue: string): QueuePolicy;
}

/**
 * Decides when a ready task may run, taking turns between the flows of a queue. Unlimited queues
 * dispatch through a window (a bound on tasks dispatched and not yet ended, in this dispatcher's
 * memory), so a big flow's backlog waits here in fair order instead of filling the work stream
 * ahead of everyone else. Limited queues admit tasks through a token bucket and concurrency slots
 * kept in KV and changed only by compare-and-set, so several dispatchers together never admit more
 * than the policy allows. Slots are released when a task's terminal event is seen, exactly once
 * (the release removes the holder or finds it gone). This function only wires the parts together.
 */
export async function startDispatcher(ctx: ServiceContext, options: DispatcherOptions = {}): Promise<DispatcherHandle> {
  const settings = { consumer: options.consumer ?? 'dispatcher', maxDeliver: options.maxDeliver ?? 20, ackWaitMs: options.ackWaitMs ?? 30_000, maxWaiting: options.maxWaiting ?? 10_000 };
  const windowSize = options.dispatchWindow ?? 1_000;
  const log = new EventLog(ctx.js, ctx.topo);
  const limits = await QueueLimitsStore.open(ctx.js, ctx.topo);
  const policyOf = (queue: string) => policies.get(queue);
  const rooms = new Rooms({ windowSize, leaseMs: options.dispatchLeaseMs ?? 60_000, limits, policyOf, onThrottled: throttleReport(log), log: ctx.log });
  const policies = await (await QueuePolicyStore.open(ctx.js, ctx.topo)).watch(
    (queue) => rooms.wake(queue),
    (error) => ctx.log.error({ err: error, bucket: error.bucket, key: error.key }, 'corrupt queue policy; the queue keeps the last valid one it had'),
  );
  const watched = await LimitsWatch.start(limits, (queue) => rooms.wake(queue), ctx.log);
  const ends = subscribeEnds(ctx.nc, ctx.topo.layout, rooms);
  const stops = new KnownStops(readStoredStops(ctx.nc, ctx.topo));
  const stopWatch = await watchStops(ctx.js, ctx.topo, stops, ctx.log, { since: new Date(Date.now() - (options.stopsLookbackMs ?? 10 * 60_000)) });
  const heartbeat = setInterval(() => rooms.heartbeat(), Math.max(1_000, settings.ackWaitMs / 3));
  const unreport = reportWaiting(() => rooms.stats());

  const deadLetters = new DeadLetters(ctx.js, ctx.topo);
  const onReady = readyHandler({ js: ctx.js, topo: ctx.topo, policyOf, rooms, stops, limits, windowSize, dispatch: dispatchStep(ctx.js, ctx.topo.layout) });
  const loops = [await startReadyConsumer(ctx, settings, deadLetters, onReady)];
  loops.push(...(await startReleaseConsumers(ctx, settings, deadLetters, releaseHandler(limits, watched, policyOf))));
  ctx.log.info({ consumer: settings.consumer }, 'dispatcher started');

  return {
    name: 'dispatcher',
    stats: () => rooms.stats(),
    policyOf,
    async stop() {
      clearInterval(heartbeat);
      unreport();
      for (const end of ends) end.unsubscribe();
      rooms.close();
      await Promise.all(loops.map((loop) => loop.stop()));
      watched.stop();
      policies.stop();
      await stopWatch.close();
    },
  };
}
