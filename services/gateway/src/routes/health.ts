import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import { NO_QUERY } from './input.js';

export function registerHealthRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const config = { query: NO_QUERY };
  app.get('/healthz', { config }, async () => ({ status: 'ok' }));

  /** Ready when NATS is connected and every stream exists. */
  app.get('/readyz', { config }, async (_request, reply) => {
    const checks: Record<string, string> = {};
    checks.nats = ctx.nc.isClosed() ? 'closed' : 'ok';
    for (const stream of [ctx.topo.eventsStream, ctx.topo.workStream, ctx.topo.timersStream, ctx.topo.dlqStream]) {
      try {
        await ctx.jsm.streams.info(stream);
        checks[stream] = 'ok';
      } catch (error) {
        checks[stream] = (error as Error).message;
      }
    }
    const ready = Object.values(checks).every((v) => v === 'ok');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });
}
