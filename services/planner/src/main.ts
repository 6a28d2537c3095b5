import { intFrom, runService } from '@taskstream/runtime';
import { startPlanner } from './planner.js';

await runService('planner', (ctx, env) => startPlanner(ctx, { leaseMs: intFrom(env, 'TASKSTREAM_LEASE_MS', 10_000) }));
