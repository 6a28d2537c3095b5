import { createContext, createLogger, intFrom, readCommonEnv, stopOnSignals } from '@taskstream/runtime';
import { buildGateway } from './app.js';

const env = readCommonEnv();
const log = createLogger('gateway', env.logLevel);
try {
  const ctx = await createContext({ natsUrl: env.natsUrl, name: 'taskstream-gateway', log, prefix: env.prefix, replicas: env.replicas });
  const app = await buildGateway(ctx, { logger: log, bodyLimit: intFrom(process.env, 'TASKSTREAM_BODY_LIMIT', 1024 * 1024) });
  const host = process.env.TASKSTREAM_HOST ?? '127.0.0.1';
  const port = intFrom(process.env, 'TASKSTREAM_PORT', 8080);
  await app.listen({ host, port });
  stopOnSignals([{ name: 'gateway', stop: () => app.close() }], log, () => ctx.nc.drain());
} catch (error) {
  const err = error as NodeJS.ErrnoException;
  const message = err.code === 'EADDRINUSE' ? `port ${process.env.TASKSTREAM_PORT ?? 8080} is in use; set TASKSTREAM_PORT to another port` : err.message;
  log.fatal({ err: error }, message);
  process.exit(1);
}
