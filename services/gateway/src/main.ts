import { createLogger, intFrom, runService } from '@taskstream/runtime';
import { buildGateway, DEFAULT_BODY_LIMIT } from './app.js';

await runService('gateway', async (ctx, env) => {
  const app = await buildGateway(ctx, { logger: createLogger('gateway', env.TASKSTREAM_LOG_LEVEL ?? 'info'), bodyLimit: intFrom(env, 'TASKSTREAM_BODY_LIMIT', DEFAULT_BODY_LIMIT) });
  const host = env.TASKSTREAM_HOST ?? '127.0.0.1';
  const port = intFrom(env, 'TASKSTREAM_PORT', 8080);
  try {
    await app.listen({ host, port });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new Error(`port ${port} on ${host} is in use; set TASKSTREAM_PORT to another port`);
    throw error;
  }
  return { name: 'gateway', stop: () => app.close() };
});
