import { createContext, createLogger, intFrom, readCommonEnv, stopOnSignals } from '@taskstream/runtime';
import { startPlanner } from './planner.js';

const env = readCommonEnv();
const log = createLogger('planner', env.logLevel);
try {
  const ctx = await createContext({ natsUrl: env.natsUrl, name: 'taskstream-planner', log, prefix: env.prefix, replicas: env.replicas });
  const planner = await startPlanner(ctx, { leaseMs: intFrom(process.env, 'TASKSTREAM_LEASE_MS', 10_000) });
  stopOnSignals([planner], log, () => ctx.nc.drain());
} catch (error) {
  log.fatal({ err: error }, (error as Error).message);
  process.exit(1);
}
