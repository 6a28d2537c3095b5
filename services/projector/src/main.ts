import { boolFrom, createContext, createLogger, intFrom, readCommonEnv, stopOnSignals } from '@taskstream/runtime';
import { startProjector } from './projector.js';

const env = readCommonEnv();
const log = createLogger('projector', env.logLevel);
try {
  const ctx = await createContext({ natsUrl: env.natsUrl, name: 'taskstream-projector', log, prefix: env.prefix, replicas: env.replicas });
  const projector = await startProjector(ctx, { leaseMs: intFrom(process.env, 'TASKSTREAM_LEASE_MS', 10_000), rebuild: boolFrom(process.env, 'TASKSTREAM_REBUILD', false) });
  stopOnSignals([projector], log, () => ctx.nc.drain());
} catch (error) {
  log.fatal({ err: error }, (error as Error).message);
  process.exit(1);
}
