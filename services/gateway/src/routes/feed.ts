import type { Socket } from 'node:net';
import { allEventsFilter, EVENT_TYPES, eventTypeFilter, flowEventsFilter, type EventType, type FlowEvent } from '@taskstream/domain';
import { followEvents, type InvalidStored, type StoredEvent } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import type { WebSocket } from '@fastify/websocket';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { apiError, type ErrorCode } from '../errors.js';
import type { FlowIndex } from '../flow-index.js';
import type { Flows } from '../flows.js';
import { clientDropped } from '../metrics.js';
import { described } from '../openapi/registry.js';
import { FeedMessage } from '../openapi/schemas.js';
import { unsentBytes, watchForStall } from '../stall.js';
import { FLOW_PARAMS, flowIdQuery, listParam, queueName, quote, Refusal, sequence } from './input.js';

/** Bytes of messages a client may leave unread in the gateway, beyond what the network holds, before it is told to resync. */
export const MAX_BUFFERED = 1024 * 1024;
/** The close code after a `resync` message. */
export const RESYNC_CLOSE_CODE = 4008;

/**
 * Tells a client that fell behind where to resume (after the last event it was sent), then closes
 * it with RESYNC_CLOSE_CODE. The close waits until the resync message has left the gateway: closing
 * at once starts the WebSocket close timeout while the backlog ahead of the message is still unread,
 * and a client paused longer than that timeout lost both and saw 1006.
 */
function resync(socket: WebSocket, after: number, log: FastifyBaseLogger, stallMs: number): void {
  log.info({ after }, 'feed client fell behind; sent resync');
  const stopWatch = watchForStall(
    () => socket.bufferedAmount + unsentBytes((socket as unknown as { _socket?: Socket })._socket),
    stallMs,
    () => {
      log.info({ after, stall_ms: stallMs }, 'feed client read nothing of its backlog; dropped');
      clientDropped('feed');
      socket.terminate();
    },
  );
  socket.once('close', stopWatch);
  const message = `you fell behind: more than ${MAX_BUFFERED / (1024 * 1024)} MiB of events were waiting for you to read; reconnect with after=${after} to continue with the next event`;
  socket.send(JSON.stringify({ type: 'resync', after, message }), (error) => {
    if (!error) socket.close(RESYNC_CLOSE_CODE, `fell behind; reconnect with after=${after}`);
  });
}

/**
 * Sends stored-then-live events from one ordered consumer to a socket. A client that cannot keep up
 * gets one `resync` message and is closed: its backlog never grows without bound, and nobody else
 * waits for it.
 */
async function pump(socket: WebSocket, feed: Awaited<ReturnType<typeof followEvents>>, after: number, log: FastifyBaseLogger, stallMs: number, keep: (event: FlowEvent) => boolean): Promise<void> {
  let closed = false;
  let lastSent = after;
  socket.on('close', () => {
    closed = true;
    void feed.close();
  });
  for await (const item of feed.events as AsyncIterable<StoredEvent | InvalidStored>) {
    if (closed) break;
    if (socket.bufferedAmount > MAX_BUFFERED) {
      void feed.close();
      resync(socket, lastSent, log, stallMs);
      break;
    }
    if ('event' in item && !keep(item.event)) continue;
    socket.send(JSON.stringify('event' in item ? { seq: item.seq, stored_at: item.stored_at, event: item.event } : { seq: item.seq, stored_at: item.stored_at, invalid: item.invalid }));
    lastSent = item.seq;
  }
}

const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function distinctTokens(list: string): boolean {
  const tokens = list.split(',').map((t) => t.trim());
  return tokens.every((t) => TOKEN.test(t)) && new Set(tokens).size === tokens.length;
}

/** The checks ws makes of a handshake, made first so a bad one is answered in the documented shape rather than ws's plain text. */
function checkHandshake(request: FastifyRequest): void {
  if (!request.ws) return;
  const { upgrade, 'sec-websocket-key': key, 'sec-websocket-version': version, 'sec-websocket-protocol': protocols } = request.headers;
  const why =
    String(upgrade).toLowerCase() !== 'websocket'
      ? 'the Upgrade header must be "websocket"'
      : typeof key !== 'string' || !WS_KEY.test(key)
        ? 'Sec-WebSocket-Key must be 16 bytes in base64'
        : version !== '13' && version !== '8'
          ? 'Sec-WebSocket-Version must be 13'
          : protocols !== undefined && !distinctTokens(String(protocols))
            ? 'Sec-WebSocket-Protocol must list distinct protocol names'
            : undefined;
  if (why) throw apiError('INVALID_UPGRADE', why);
}

async function upgradeRequired(request: FastifyRequest, reply: FastifyReply): Promise<never> {
  reply.header('upgrade', 'websocket');
  throw apiError('UPGRADE_REQUIRED', request.routeOptions.url ?? request.url);
}

const after = () => described(sequence(0).optional(), 'Resume after this stream sequence: the last event processed (0, the default: from the start).');

const flowFeedQuery = z.object({ after: after() });

const feedQuery = z.object({
  after: after(),
  flow: described(flowIdQuery.optional(), "Only this flow's events."),
  queue: described(queueName.optional(), "Only events of this queue's flows."),
  type: described(
    listParam(
      (raw) => ((EVENT_TYPES as readonly string[]).includes(raw) ? (raw as EventType) : new Refusal(`must list event types (${EVENT_TYPES.join(', ')}); ${quote(raw)} is none of them`)),
      EVENT_TYPES.length,
      true,
      { type: 'string', enum: EVENT_TYPES },
    ).optional(),
    'Only these event types: repeat the parameter or separate them with commas.',
  ),
});

const FEED_DESCRIPTION =
  'A WebSocket: connect with a WebSocket client. Each text message is a stored event `{seq, stored_at, event}`, stored ones first, then live ones; a client that falls behind gets one `resync` message and is closed with code 4008. Reconnect with `after=<the last seq processed>` to continue.';

/** A feed's description: the 101 answer carries its messages. */
function feedSchema<Q extends z.ZodObject>(operationId: string, summary: string, querystring: Q, errors: readonly ErrorCode[]) {
  return {
    operationId,
    summary,
    description: FEED_DESCRIPTION,
    tags: ['feeds'],
    querystring,
    response: { 101: described(FeedMessage.optional(), 'Switching Protocols: the feed. Its messages are these JSON objects.') },
    errors,
  };
}

export function registerFeedRoutes(app: FastifyInstance, ctx: ServiceContext, flows: Flows, index: FlowIndex, stallMs: number): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.route({
    method: 'GET',
    url: '/api/v1/flows/:id/feed',
    config: { scope: 'read', queryToken: true },
    schema: { ...feedSchema('followFlow', "A flow's events, live", flowFeedQuery, ['INVALID_UPGRADE', 'UPGRADE_REQUIRED', 'FLOW_NOT_FOUND']), params: FLOW_PARAMS },
    // Unknown flows are refused before the upgrade, with a 404.
    preValidation: async (request) => {
      checkHandshake(request);
      if (!(await flows.exists(request.params.id))) throw apiError('FLOW_NOT_FOUND', request.params.id);
    },
    handler: upgradeRequired,
    wsHandler: async (socket, request) => {
      const after = request.query.after ?? 0;
      const feed = await followEvents(ctx.js, ctx.topo.eventsStream, flowEventsFilter(ctx.topo.layout, request.params.id), after);
      await pump(socket, feed, after, request.log, stallMs, () => true);
    },
  });

  /** Every event, or those of one flow, queue or set of types, resumable with `after`. */
  api.route({
    method: 'GET',
    url: '/api/v1/feed',
    config: { scope: 'read', queryToken: true },
    schema: feedSchema('followEvents', 'Every event, live', feedQuery, ['INVALID_UPGRADE', 'UPGRADE_REQUIRED']),
    preValidation: async (request) => checkHandshake(request),
    handler: upgradeRequired,
    wsHandler: async (socket, request) => {
      const { flow, queue, after = 0 } = request.query;
      const types = request.query.type?.length ? request.query.type : undefined;
      // One filter subject per consumer (nats-server 2.9): the narrowest one, the rest filtered here.
      const filter = flow ? flowEventsFilter(ctx.topo.layout, flow) : types?.length === 1 ? eventTypeFilter(ctx.topo.layout, types[0]!) : allEventsFilter(ctx.topo.layout);
      const feed = await followEvents(ctx.js, ctx.topo.eventsStream, filter, after);
      await pump(socket, feed, after, request.log, stallMs, (event) => {
        if (types && !types.includes(event.type)) return false;
        if (queue !== undefined) {
          const data = event.data as { queue?: string; definition?: { queue: string } };
          const eventQueue = data.queue ?? data.definition?.queue ?? index.get(event.flow_id)?.queue;
          if (eventQueue !== queue) return false;
        }
        return true;
      });
    },
  });
}
