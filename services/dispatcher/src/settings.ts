import { readSettings, runService, wholeSetting, type Settings } from '@taskstream/runtime';
import { startDispatcher } from './dispatcher.js';

export const DISPATCHER_SETTINGS = {
  dispatchWindow: {
    env: 'TASKSTREAM_DISPATCH_WINDOW',
    flag: '--dispatch-window <n>',
    default: '1000',
    help: 'tasks of an unlimited queue dispatched and not yet ended, per dispatcher (fairness between flows; 0 turns it off)',
    schema: wholeSetting(0),
  },
  dispatchLeaseMs: { env: 'TASKSTREAM_DISPATCH_LEASE_MS', default: '60000', help: "a window slot whose task's end was not seen is freed after this", schema: wholeSetting(1) },
  ackWaitMs: { env: 'TASKSTREAM_ACK_WAIT_MS', flag: '--ack-wait-ms <ms>', default: '30000', help: 'how long a message held by a dead process waits before redelivery', schema: wholeSetting(1) },
} satisfies Settings;

/** The dispatcher as its own process: settings from the environment, stopped by SIGTERM. `main.ts` and `taskstream dispatcher` both run this. */
export function runDispatcherService(): Promise<void> {
  return runService('dispatcher', (ctx, env) => startDispatcher(ctx, readSettings(DISPATCHER_SETTINGS, env)));
}
