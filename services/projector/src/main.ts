import { boolFrom, intFrom, runService } from '@taskstream/runtime';
import { startProjector } from './projector.js';

await runService('projector', (ctx, env) =>
  startProjector(ctx, { leaseMs: intFrom(env, 'TASKSTREAM_LEASE_MS', 10_000), rebuild: boolFrom(env, 'TASKSTREAM_REBUILD', false) }),
);
