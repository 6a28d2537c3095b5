import type { WebSocket } from '@fastify/websocket';
import { counter, gauge, histogram, scrapeMetrics, SECONDS_BUCKETS } from '@taskstream/runtime';
import type { FastifyInstance } from 'fastify';

/** The gateway's metrics (see docs/operations.md#metrics); labels hold queue names and route templates, never ids. */

const flowsSubmitted = counter({
  name: 'taskstream_gateway_flows_submitted_total',
  help: 'Flows submitted and appended to the log (reruns and forks included, a replayed idempotent submission not), by queue.',
  labelNames: ['queue'],
});

const requestDuration = histogram({
  name: 'taskstream_gateway_http_request_duration_seconds',
  help: 'HTTP requests answered, by method, route template and status class, with how long they took.',
  labelNames: ['method', 'route', 'status_class'],
  buckets: SECONDS_BUCKETS,
});

const feedClients = gauge({ name: 'taskstream_gateway_feed_clients', help: 'WebSocket feed clients connected now.' });

const taskedStreams = gauge({ name: 'taskstream_gateway_tasked_event_streams', help: "Tasked server-sent event streams open now (a gateway holds at most 100; a client that stops reading holds one until it leaves or is dropped after TASKSTREAM_CLIENT_STALL_SECS)." });

const stalledClients = counter({
  name: 'taskstream_gateway_stalled_clients_dropped_total',
  help: 'Streaming clients dropped for reading nothing of what was waiting for them for the stall limit (TASKSTREAM_CLIENT_STALL_SECS), by stream: feed (a WebSocket feed after its resync) or tasked_events.',
  labelNames: ['stream'],
});

/** A flow was appended to the log. */
export function flowSubmitted(queue: string): void {
  flowsSubmitted.inc({ queue });
}

/** A Tasked event stream opened: call what this returns once it has ended. */
export function taskedStreamOpened(): () => void {
  taskedStreams.inc();
  return () => taskedStreams.dec();
}

/** A streaming client that read nothing for the stall limit was dropped. */
export function clientDropped(stream: 'feed' | 'tasked_events'): void {
  stalledClients.inc({ stream });
}

/**
 * Measures every request and counts feed clients (call after the WebSocket plugin is registered),
 * and serves `GET /metrics` (public, like the health checks: see PUBLIC_ROUTES).
 */
export function observeGateway(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_class: `${Math.floor(reply.statusCode / 100)}xx` };
    requestDuration.observe(labels, reply.elapsedTime / 1000);
  });
  app.websocketServer.on('connection', (socket: WebSocket) => {
    feedClients.inc();
    socket.once('close', () => feedClients.dec());
  });
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await scrapeMetrics();
    return reply.type(contentType).send(body);
  });
}
