import { intFrom, runService } from '@taskstream/runtime';
import { startDispatcher } from './dispatcher.js';

await runService('dispatcher', (ctx, env) =>
  startDispatcher(ctx, {
    ackWaitMs: intFrom(env, 'TASKSTREAM_ACK_WAIT_MS', 30_000),
    dispatchWindow: intFrom(env, 'TASKSTREAM_DISPATCH_WINDOW', 1_000),
    dispatchLeaseMs: intFrom(env, 'TASKSTREAM_DISPATCH_LEASE_MS', 60_000),
  }),
);
