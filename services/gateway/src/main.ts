import { createLogger, intFrom, runService } from '@taskstream/runtime';
import { DEFAULT_BODY_LIMIT } from './app.js';
import { serveGateway } from './serve.js';

await runService('gateway', async (ctx, env) =>
  serveGateway(ctx, {
    host: env.TASKSTREAM_HOST ?? '127.0.0.1',
    port: intFrom(env, 'TASKSTREAM_PORT', 8080),
    logger: createLogger('gateway', env.TASKSTREAM_LOG_LEVEL ?? 'info'),
    bodyLimit: intFrom(env, 'TASKSTREAM_BODY_LIMIT', DEFAULT_BODY_LIMIT),
    env,
  }),
);
