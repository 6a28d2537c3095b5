import { intFrom, runService } from '@taskstream/runtime';
import { startDispatcher } from './dispatcher.js';

await runService('dispatcher', (ctx, env) => startDispatcher(ctx, { ackWaitMs: intFrom(env, 'TASKSTREAM_ACK_WAIT_MS', 30_000) }));
