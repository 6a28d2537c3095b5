import { allEventsFilter, EVENT_TYPES, eventTypeFilter, flowEventsFilter, ULID_PATTERN, type EventType, type FlowEvent } from '@taskstream/domain';
import { followEvents, type InvalidStored, type StoredEvent } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, apiError } from '../errors.js';
import type { FlowIndex } from '../flow-index.js';
import type { Flows } from '../flows.js';
import { sequenceParam } from './params.js';

/** Bytes a client may lag behind before it is told to resync rather than slow anyone down. */
export const MAX_BUFFERED = 1024 * 1024;

/**
 * Sends stored-then-live events from one ordered consumer to a socket. A client that cannot keep up
 * gets one `resync` message with the last sequence it was sent, and is closed: its backlog never
 * grows without bound, and nobody else waits for it.
 */
async function pump(socket: WebSocket, feed: Awaited<ReturnType<typeof followEvents>>, keep: (event: FlowEvent) => boolean): Promise<void> {
  let closed = false;
  let lastSent = 0;
  socket.on('close', () => {
    closed = true;
    void feed.close();
  });
  for await (const item of feed.events as AsyncIterable<StoredEvent | InvalidStored>) {
    if (closed) break;
    if (socket.bufferedAmount > MAX_BUFFERED) {
      socket.send(JSON.stringify({ type: 'resync', after: lastSent, message: 'you fell too far behind; reconnect with ?after=<the last seq you processed>' }));
      socket.close(4008, 'too slow');
      break;
    }
    if ('event' in item && !keep(item.event)) continue;
    socket.send(JSON.stringify('event' in item ? { seq: item.seq, stored_at: item.stored_at, event: item.event } : { seq: item.seq, stored_at: item.stored_at, invalid: item.invalid }));
    lastSent = item.seq;
  }
}

async function refuse(reply: FastifyReply, check: () => Promise<unknown> | unknown): Promise<unknown> {
  try {
    await check();
  } catch (error) {
    if (error instanceof ApiError) return reply.status(error.status).send(error.toJSON());
    throw error;
  }
  return undefined;
}

interface GlobalQuery {
  after?: string;
  flow?: string;
  queue?: string;
  type?: string;
}

function typesParam(raw: string | undefined): EventType[] | undefined {
  if (raw === undefined || raw === '') return undefined;
  const types = raw.split(',');
  for (const t of types) if (!EVENT_TYPES.includes(t as EventType)) throw apiError('INVALID_PARAMETER', 'type', `must be a comma-separated list of event types (${EVENT_TYPES.join(', ')}); "${t}" is none of them`);
  return types as EventType[];
}

export function registerFeedRoutes(app: FastifyInstance, ctx: ServiceContext, flows: Flows, index: FlowIndex): void {
  app.get<{ Params: { id: string }; Querystring: { after?: string } }>(
    '/api/v1/flows/:id/feed',
    {
      websocket: true,
      preValidation: async (request, reply) =>
        refuse(reply, async () => {
          sequenceParam('after', request.query.after);
          await flows.view(request.params.id);
        }),
    },
    async (socket, request) => {
      const feed = await followEvents(ctx.js, ctx.topo.eventsStream, flowEventsFilter(ctx.topo.layout, request.params.id), sequenceParam('after', request.query.after));
      await pump(socket, feed, () => true);
    },
  );

  /** Every event, or those of one flow, queue or set of types, resumable with `after`. */
  app.get<{ Querystring: GlobalQuery }>(
    '/api/v1/feed',
    {
      websocket: true,
      preValidation: async (request, reply) =>
        refuse(reply, () => {
          sequenceParam('after', request.query.after);
          typesParam(request.query.type);
          if (request.query.flow !== undefined && !ULID_PATTERN.test(request.query.flow)) throw apiError('INVALID_PARAMETER', 'flow', 'must be a flow id');
        }),
    },
    async (socket, request) => {
      const { flow, queue } = request.query;
      const types = typesParam(request.query.type);
      // One filter subject per consumer (nats-server 2.9): the narrowest one, the rest filtered here.
      const filter = flow ? flowEventsFilter(ctx.topo.layout, flow) : types?.length === 1 ? eventTypeFilter(ctx.topo.layout, types[0]!) : allEventsFilter(ctx.topo.layout);
      const feed = await followEvents(ctx.js, ctx.topo.eventsStream, filter, sequenceParam('after', request.query.after));
      await pump(socket, feed, (event) => {
        if (types && !types.includes(event.type)) return false;
        if (queue !== undefined) {
          const data = event.data as { queue?: string; definition?: { queue: string } };
          const eventQueue = data.queue ?? data.definition?.queue ?? index.get(event.flow_id)?.queue;
          if (eventQueue !== queue) return false;
        }
        return true;
      });
    },
  );
}
