import websocket from '@fastify/websocket';
import { parseFlowText } from '@taskstream/domain';
import { Kvm } from '@taskstream/nats';
import type { PinoLogger, ServiceContext } from '@taskstream/runtime';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { ApiError, apiError } from './errors.js';
import { Flows } from './flows.js';
import { registerFeedRoutes } from './routes/feed.js';
import { registerFlowRoutes } from './routes/flows.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerQueueRoutes } from './routes/queues.js';
import { registerHistoryRoutes } from './routes/history.js';
import { FlowIndex } from './flow-index.js';
import { DeadLetterQueue } from './dead-letters.js';
import { registerDeadLetterRoutes } from './routes/dlq.js';
import { Queues } from './queues.js';

export interface GatewayOptions {
  /** Largest accepted request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** A pino logger for requests, or false for none. */
  logger?: PinoLogger | false;
}

const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];

/** Builds the gateway as a Fastify instance over a connected service context; `main.ts` listens. */
export async function buildGateway(ctx: ServiceContext, options: GatewayOptions = {}): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  const app: FastifyInstance = options.logger
    ? (Fastify({ loggerInstance: options.logger as FastifyBaseLogger, bodyLimit }) as unknown as FastifyInstance)
    : Fastify({ logger: false, bodyLimit });
  const kvm = new Kvm(ctx.js);
  const queues = new Queues(await kvm.open(ctx.topo.queuesBucket), await kvm.open(ctx.topo.limitsBucket), await kvm.open(ctx.topo.queueStatsBucket));
  const index = await FlowIndex.open(await kvm.open(ctx.topo.summariesBucket));
  app.addHook('onClose', async () => index.stop());
  const flows = new Flows(ctx, await kvm.open(ctx.topo.flowsBucket), await kvm.open(ctx.topo.idempotencyBucket), queues);

  // Bodies are parsed by the flow parser itself, so JSON and YAML errors read the same way.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', ...YAML_TYPES, 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    if (error instanceof ApiError) return reply.status(error.status).send(error.toJSON());
    const mapped =
      error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? apiError('BODY_TOO_LARGE', bodyLimit)
        : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? apiError('UNSUPPORTED_MEDIA_TYPE', String(request.headers['content-type'] ?? 'none'))
          : error.statusCode !== undefined && error.statusCode < 500
            ? apiError('INVALID_BODY', error.message)
            : undefined;
    if (mapped) return reply.status(mapped.status).send(mapped.toJSON());
    request.log.error({ err: error }, 'request failed');
    const internal = /NATS|JetStream|timeout|connection/i.test(error.message) ? apiError('UNAVAILABLE', 'the NATS JetStream backend did not answer') : apiError('INTERNAL');
    return reply.status(internal.status).send(internal.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = apiError('ROUTE_NOT_FOUND', request.method, request.url);
    return reply.status(error.status).send(error.toJSON());
  });

  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  registerHealthRoutes(app, ctx);
  registerFlowRoutes(app, flows, parseFlowText);
  registerFeedRoutes(app, ctx, flows, index);
  registerQueueRoutes(app, queues);
  registerHistoryRoutes(app, flows, index, ctx);
  registerDeadLetterRoutes(app, new DeadLetterQueue(ctx));
  return app;
}
