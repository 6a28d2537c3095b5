import { boolFrom, createContext, createLogger, intFrom, readCommonEnv, stopOnSignals } from '@taskstream/runtime';
import { startExecutor } from './executor.js';

const env = readCommonEnv();
const log = createLogger('executor', env.logLevel);
try {
  const queue = process.env.TASKSTREAM_QUEUE ?? 'default';
  const ctx = await createContext({ natsUrl: env.natsUrl, name: `taskstream-executor-${queue}`, log, prefix: env.prefix, replicas: env.replicas });
  const executor = await startExecutor(ctx, {
    queue,
    concurrency: intFrom(process.env, 'TASKSTREAM_CONCURRENCY', 8),
    shellEnabled: boolFrom(process.env, 'TASKSTREAM_ALLOW_SHELL', false),
    ackWaitMs: intFrom(process.env, 'TASKSTREAM_ACK_WAIT_MS', 30_000),
    crashLimit: intFrom(process.env, 'TASKSTREAM_CRASH_LIMIT', 4),
  });
  stopOnSignals([executor], log, () => ctx.nc.drain());
} catch (error) {
  log.fatal({ err: error }, (error as Error).message);
  process.exit(1);
}
