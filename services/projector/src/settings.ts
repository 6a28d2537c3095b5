import { readSettings, runService, switchSetting, wholeSetting, type Settings } from '@taskstream/runtime';
import { startProjector } from './projector.js';

export const PROJECTOR_SETTINGS = {
  leaseMs: { env: 'TASKSTREAM_LEASE_MS', default: '10000', help: 'partition lease length', schema: wholeSetting(1) },
  rebuild: { env: 'TASKSTREAM_REBUILD', flag: '--rebuild', default: 'off', help: 'recompute every view from the log before going live', schema: switchSetting() },
} satisfies Settings;

/** The projector as its own process: settings from the environment, stopped by SIGTERM. `main.ts` and `taskstream projector` both run this. */
export function runProjectorService(): Promise<void> {
  return runService('projector', (ctx, env) => startProjector(ctx, readSettings(PROJECTOR_SETTINGS, env)));
}
