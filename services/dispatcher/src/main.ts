import { createContext, createLogger, intFrom, readCommonEnv, stopOnSignals } from '@taskstream/runtime';
import { startDispatcher } from './dispatcher.js';

const env = readCommonEnv();
const log = createLogger('dispatcher', env.logLevel);
try {
  const ctx = await createContext({ natsUrl: env.natsUrl, name: 'taskstream-dispatcher', log, prefix: env.prefix, replicas: env.replicas });
  const dispatcher = await startDispatcher(ctx, { ackWaitMs: intFrom(process.env, 'TASKSTREAM_ACK_WAIT_MS', 30_000) });
  stopOnSignals([dispatcher], log, () => ctx.nc.drain());
} catch (error) {
  log.fatal({ err: error }, (error as Error).message);
  process.exit(1);
}
