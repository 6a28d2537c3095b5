import type { ScheduleRecord } from '@taskstream/domain';
import { ScheduleStore } from '@taskstream/nats';
import type { ServiceContext, ServiceHandle } from '@taskstream/runtime';
import { schedulesFollowed } from './metrics.js';
import { ScheduleLoop } from './schedule-loop.js';
import { ScheduledRuns } from './runs.js';

export interface SchedulerOptions {
  /** How late a scheduled time may be noticed and still count as on time (TASKSTREAM_SCHEDULE_GRACE_MS). */
  graceMs?: number;
}

const DEFAULT_GRACE_MS = 10_000;

/**
 * Starts every schedule's runs. Each instance follows every schedule (a watch of the schedules
 * bucket) with one loop per schedule; no instance leads: all look at each scheduled time, one
 * decision is stored per step (compare-and-set on the schedule's progress), one submission per run
 * (a conditional append on the run's derived flow id). More instances add redundancy, not throughput.
 */
export async function startScheduler(ctx: ServiceContext, options: SchedulerOptions = {}): Promise<ServiceHandle> {
  const store = await ScheduleStore.open(ctx.js, ctx.topo);
  const deps = { store, runs: new ScheduledRuns(ctx, ctx.log), graceMs: options.graceMs ?? DEFAULT_GRACE_MS, log: ctx.log };
  const loops = new Map<string, ScheduleLoop>();
  const records = new Map<string, ScheduleRecord>();
  const count = () => {
    const enabled = [...records.values()].filter((s) => s.enabled).length;
    schedulesFollowed(enabled, records.size - enabled);
  };
  let ready!: () => void;
  const seen = new Promise<void>((resolve) => (ready = resolve));
  const stopWatch = await store.watch(
    ({ id, schedule }) => {
      const loop = loops.get(id);
      if (schedule === undefined) {
        loops.delete(id);
        records.delete(id);
        void loop?.stop();
      } else if (loop) loop.update(schedule);
      else loops.set(id, new ScheduleLoop(schedule, deps));
      if (schedule) records.set(id, schedule);
      count();
    },
    () => ready(),
    (error) => ctx.log.error({ err: error }, 'a schedule record is corrupt; it is not followed'),
  );
  await seen;
  ctx.log.info({ schedules: loops.size, grace_ms: deps.graceMs }, 'scheduler started');
  return {
    name: 'scheduler',
    stop: async () => {
      stopWatch();
      await Promise.all([...loops.values()].map((loop) => loop.stop()));
      loops.clear();
    },
  };
}
