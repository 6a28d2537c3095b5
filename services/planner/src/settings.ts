import { readSettings, runService, wholeSetting, type Settings } from '@taskstream/runtime';
import { startPlanner } from './planner.js';

export const PLANNER_SETTINGS = {
  leaseMs: { env: 'TASKSTREAM_LEASE_MS', default: '10000', help: 'partition lease length', schema: wholeSetting(1) },
  concurrency: {
    env: 'TASKSTREAM_PLANNER_CONCURRENCY',
    default: '32',
    help: "events of one partition handled at once, each flow's still one at a time in stream order (1: one event at a time)",
    schema: wholeSetting(1).max(1000, 'must be at most 1000'),
  },
} satisfies Settings;

/** The planner as its own process: settings from the environment, stopped by SIGTERM. `main.ts` and `taskstream planner` both run this. */
export function runPlannerService(): Promise<void> {
  return runService('planner', (ctx, env) => startPlanner(ctx, readSettings(PLANNER_SETTINGS, env)));
}
