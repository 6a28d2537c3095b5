import { readSettings, runService, wholeSetting, type Settings } from '@taskstream/runtime';
import { startPlanner } from './planner.js';

export const PLANNER_SETTINGS = {
  leaseMs: { env: 'TASKSTREAM_LEASE_MS', default: '10000', help: 'partition lease length', schema: wholeSetting(1) },
} satisfies Settings;

/** The planner as its own process: settings from the environment, stopped by SIGTERM. `main.ts` and `taskstream planner` both run this. */
export function runPlannerService(): Promise<void> {
  return runService('planner', (ctx, env) => startPlanner(ctx, readSettings(PLANNER_SETTINGS, env)));
}
