import { retentionSweepMs } from '@taskstream/domain';
import type { FlowRetention } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { flowsRemoved } from './metrics.js';

/**
 * Sweeps the partitions this projector owns for flows past their retention, one partition after
 * another, every tenth of the retention (see retentionSweepMs). A failed sweep is logged and
 * tried again at the next one; it never stops the projector.
 */
export function startRetentionSweeps(ctx: ServiceContext, retention: FlowRetention, retentionMs: number, owned: () => number[]): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const sweep = async () => {
    for (const partition of owned()) {
      if (stopped) return;
      try {
        const removed = await retention.sweep(partition);
        if (removed > 0) {
          flowsRemoved(removed);
          ctx.log.info({ partition, removed, retention_secs: retentionMs / 1000 }, 'removed flows past their retention');
        }
      } catch (error) {
        ctx.log.warn({ partition, err: (error as Error).message }, 'could not remove the flows past their retention; trying again at the next sweep');
      }
    }
  };
  const schedule = () => {
    timer = setTimeout(() => {
      running = sweep().finally(() => {
        running = undefined;
        if (!stopped) schedule();
      });
    }, retentionSweepMs(retentionMs));
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
