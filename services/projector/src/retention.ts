import { partitionFilter, retentionSweepMs } from '@taskstream/domain';
import type { MsgRequest } from '@nats-io/jetstream';
import { FlowRetention, type Definitions, type FlowSummaryStore, type FlowViewStore, type Logger } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FlowMemory } from './flow-memory.js';
import { flowsRemoved } from './metrics.js';

export interface FlowRetentionParts {
  retentionMs: number;
  views: FlowViewStore;
  summaries: FlowSummaryStore;
  definitions: Definitions;
  memory: FlowMemory;
  /** The prefix of the partition consumers, whose acknowledgement floors say what is folded. */
  consumer: string;
  owned: () => number[];
}

/** Flow retention in this projector: FlowRetention over its stores, swept over the partitions it owns. */
export async function startFlowRetention(ctx: ServiceContext, parts: FlowRetentionParts): Promise<{ stop(): Promise<void> }> {
  const { retentionMs, views, summaries, definitions, memory, consumer } = parts;
  // The projector's own stores: their caches are the ones its folding uses.
  const retention = await FlowRetention.open(
    ctx.js,
    ctx.topo,
    retentionMs,
    {
      views,
      summaries,
      definitions,
      // The partition's first event not yet acknowledged (acknowledged once its views are written): everything stored before it is folded.
      foldedBefore: async (partition) => {
        const floor = (await ctx.jsm.consumers.info(ctx.topo.eventsStream, `${consumer}-p${partition}`)).ack_floor.stream_seq;
        // Asked of the stream's leader: a replica behind would answer "none", as if all were folded.
        const next = await ctx.jsm.streams.getMessage(ctx.topo.eventsStream, { seq: floor + 1, next_by_subj: partitionFilter(ctx.topo.layout, partition) } as unknown as MsgRequest);
        return next === null ? Date.now() : next.time.getTime();
      },
    },
    (flowId) => memory.forget(flowId),
    ctx.log,
  );
  return startRetentionSweeps(ctx.log, retention, retentionMs, parts.owned);
}

/** After a sweep that left flows past their retention (it removes a bounded number), the next one starts this soon. */
export const AGAIN_MS = 100;

/**
 * Sweeps the partitions this projector owns for flows past their retention, one partition after
 * another, every tenth of the retention (see retentionSweepMs), or at once while a backlog is left
 * (after retention is turned on over a long history). A failed sweep is logged and tried again at
 * the next one; it never stops the projector. Stopping waits for at most one partition's sweep.
 */
export function startRetentionSweeps(log: Logger, retention: Pick<FlowRetention, 'sweep'>, retentionMs: number, owned: () => number[]): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  /** Whether flows past their retention were left. */
  const sweep = async (): Promise<boolean> => {
    let more = false;
    for (const partition of owned()) {
      if (stopped) return false;
      try {
        const result = await retention.sweep(partition);
        more ||= result.more;
        if (result.removed > 0) {
          flowsRemoved(result.removed);
          log.info({ partition, removed: result.removed, more: result.more, retention_secs: retentionMs / 1000 }, 'removed flows past their retention');
        }
      } catch (error) {
        log.warn({ partition, err: (error as Error).message }, 'could not remove the flows past their retention; trying again at the next sweep');
      }
    }
    return more;
  };
  const schedule = (delayMs: number) => {
    timer = setTimeout(() => {
      running = sweep().then((more) => {
        running = undefined;
        if (!stopped) schedule(more ? AGAIN_MS : retentionSweepMs(retentionMs));
      });
    }, delayMs);
  };
  schedule(retentionSweepMs(retentionMs));
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
