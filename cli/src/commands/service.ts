import { DISPATCHER_SETTINGS, runDispatcherService } from '@taskstream/dispatcher';
import { EXECUTOR_SETTINGS, runExecutorService } from '@taskstream/executor';
import { PLANNER_SETTINGS, runPlannerService } from '@taskstream/planner';
import { PROJECTOR_SETTINGS, runProjectorService } from '@taskstream/projector';
import { runSchedulerService, SCHEDULER_SETTINGS } from '@taskstream/scheduler';
import { COMMON_SETTINGS, flagsAsEnv, readCommonEnv, readSettings, type Settings } from '@taskstream/runtime';
import { parseAllowSetting } from '@taskstream/executor';
import { UserError } from '../user-error.js';

export const SERVICES = ['gateway', 'planner', 'dispatcher', 'executor', 'projector', 'scheduler'] as const;
export type ServiceName = Exclude<(typeof SERVICES)[number], 'gateway'>;

/** Each service's own settings and how its process runs: the same function its main.ts calls. */
export const SERVICE_STARTS: Record<ServiceName, { settings: Settings; run: () => Promise<void> }> = {
  planner: { settings: PLANNER_SETTINGS, run: runPlannerService },
  dispatcher: { settings: DISPATCHER_SETTINGS, run: runDispatcherService },
  executor: { settings: EXECUTOR_SETTINGS, run: runExecutorService },
  projector: { settings: PROJECTOR_SETTINGS, run: runProjectorService },
  scheduler: { settings: SCHEDULER_SETTINGS, run: runSchedulerService },
};

/** The --http-allow setting of the embedded stack, refused with what to write when an entry is not valid. */
export function httpAllowOf(setting: string | undefined): string[] {
  try {
    return parseAllowSetting(setting);
  } catch (error) {
    throw new UserError(`--http-allow: ${(error as Error).message}`, 'give CIDRs (10.0.0.0/8), addresses (::1) or host names (api.internal), comma-separated', 2);
  }
}

/**
 * One service alone in this process, for scaled deployments: its flags become the environment
 * variables they stand for, and the service starts exactly as its own main does. Runs until SIGTERM.
 */
export async function serviceCommand(name: ServiceName, options: Record<string, unknown>): Promise<void> {
  const { settings, run } = SERVICE_STARTS[name];
  Object.assign(process.env, flagsAsEnv(COMMON_SETTINGS, options), flagsAsEnv(settings, options));
  // A setting the service would refuse is refused here first, as a usage error naming it.
  readCommonEnv(process.env);
  readSettings(settings, process.env);
  await run();
}
