import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { described } from '../openapi/registry.js';
import { ErrorBody, Health, Readiness } from '../openapi/schemas.js';
import { NO_QUERY } from './input.js';

const live = { schema: { operationId: 'live', summary: 'The process is up', tags: ['health'], querystring: NO_QUERY, response: { 200: Health } } } as const;
const ready = {
  schema: {
    operationId: 'ready',
    summary: 'Ready to serve',
    description: 'Ready when NATS is connected and every stream exists.',
    tags: ['health'],
    querystring: NO_QUERY,
    response: {
      200: Readiness,
      503: described(z.union([Readiness, ErrorBody]), 'Not ready: the checks say what failed (or `UNAVAILABLE` while the gateway shuts down).'),
    },
  },
} as const;

export function registerHealthRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get('/healthz', live, async () => ({ status: 'ok' as const }));

  /** Ready when NATS is connected and every stream exists. */
  api.get('/readyz', ready, async (_request, reply) => {
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
