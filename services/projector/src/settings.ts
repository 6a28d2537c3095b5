import { MAX_FLOW_RETENTION_SECS, MIN_FLOW_RETENTION_SECS } from '@taskstream/domain';
import { readSettings, runService, switchSetting, wholeSetting, type Settings } from '@taskstream/runtime';
import { startProjector } from './projector.js';

export const PROJECTOR_SETTINGS = {
  leaseMs: { env: 'TASKSTREAM_LEASE_MS', default: '10000', help: 'partition lease length', schema: wholeSetting(1) },
  rebuild: { env: 'TASKSTREAM_REBUILD', flag: '--rebuild', default: 'off', help: 'recompute every view from the log before going live', schema: switchSetting() },
  flowRetentionSecs: {
    env: 'TASKSTREAM_FLOW_RETENTION_SECS',
    flag: '--flow-retention-secs <secs>',
    default: '0',
    help: 'remove a flow (events, view, summary, definition, artifacts) this long after it ends; 0 keeps every flow',
    schema: wholeSetting(0).refine((secs) => secs === 0 || (secs >= MIN_FLOW_RETENTION_SECS && secs <= MAX_FLOW_RETENTION_SECS), {
      message: `must be 0 (keep every flow) or between ${MIN_FLOW_RETENTION_SECS} (an hour) and ${MAX_FLOW_RETENTION_SECS} (ten years) seconds`,
    }),
  },
} satisfies Settings;

/** The projector as its own process: settings from the environment, stopped by SIGTERM. `main.ts` and `taskstream projector` both run this. */
export function runProjectorService(): Promise<void> {
  return runService('projector', (ctx, env) => startProjector(ctx, readSettings(PROJECTOR_SETTINGS, env)));
}
