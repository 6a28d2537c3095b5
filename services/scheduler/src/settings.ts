import { readSettings, runService, wholeSetting, type Settings } from '@taskstream/runtime';
import { startScheduler } from './scheduler.js';

export const SCHEDULER_SETTINGS = {
  graceMs: {
    env: 'TASKSTREAM_SCHEDULE_GRACE_MS',
    default: '10000',
    help: 'how late (ms) a scheduled time may be noticed and still run as on time rather than be caught up as missed',
    schema: wholeSetting(0),
  },
} satisfies Settings;

/** The scheduler as its own process: settings from the environment, stopped by SIGTERM. `main.ts` and `taskstream scheduler` both run this. */
export function runSchedulerService(): Promise<void> {
  return runService('scheduler', (ctx, env) => startScheduler(ctx, readSettings(SCHEDULER_SETTINGS, env)));
}
