import { flowEventsFilter } from '@taskstream/domain';
import { followEvents } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import type { Flows } from '../flows.js';
import { sequenceParam } from './params.js';

/** Bytes a client may lag behind before it is told to resync rather than slow anyone down. */
const MAX_BUFFERED = 4 * 1024 * 1024;

export function registerFeedRoutes(app: FastifyInstance, ctx: ServiceContext, flows: Flows): void {
  app.get<{ Params: { id: string }; Querystring: { after?: string } }>(
    '/api/v1/flows/:id/feed',
    {
      websocket: true,
      // Refuse the upgrade with a plain HTTP error for unknown flows and bad parameters.
      preValidation: async (request, reply) => {
        try {
          sequenceParam('after', request.query.after);
          await flows.view(request.params.id);
        } catch (error) {
          if (error instanceof ApiError) return reply.status(error.status).send(error.toJSON());
          throw error;
        }
      },
    },
    async (socket, request) => {
      const after = sequenceParam('after', request.query.after);
      const feed = await followEvents(ctx.js, ctx.topo.eventsStream, flowEventsFilter(ctx.topo.layout, request.params.id), after);
      let closed = false;
      socket.on('close', () => {
        closed = true;
        void feed.close();
      });
      for await (const item of feed.events) {
        if (closed) break;
        if (socket.bufferedAmount > MAX_BUFFERED) {
          socket.send(JSON.stringify({ type: 'resync', after: item.seq - 1, message: 'you fell too far behind; reconnect with ?after=<last seq you processed>' }));
          socket.close(4008, 'too slow');
          break;
        }
        socket.send(JSON.stringify('event' in item ? { seq: item.seq, stored_at: item.stored_at, event: item.event } : { seq: item.seq, stored_at: item.stored_at, invalid: item.invalid }));
      }
    },
  );
}
