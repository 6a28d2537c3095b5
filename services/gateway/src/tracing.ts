import { flowAttributes, fromCarrier, SpanKind, SpanStatusCode, startSpan, withSpan, activeTraceContext, type Span } from '@taskstream/nats';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';

const spans = new WeakMap<FastifyRequest, Span>();

/**
 * A server span for every request, the child of the caller's `traceparent` when it sends one, and
 * active while its handler runs: the events a request appends carry it, so the flow it submits
 * (or cancels, or reruns) is traced from here to each step's own HTTP call. The span is named by
 * the route template, never the URL (feeds take a `token` parameter).
 */
export function traceRequests(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    // A feed's handler runs for the life of its socket and is not traced (see onRequest).
    if ((route as { websocket?: boolean }).websocket) return;
    const handler = route.handler;
    route.handler = function traced(this: FastifyInstance, request, reply) {
      const span = spans.get(request);
      return span === undefined ? handler.call(this, request, reply) : withSpan(span, () => handler.call(this, request, reply));
    };
  });
  app.addHook('onRequest', async (request) => {
    // A feed's upgrade is handed to the socket, so no response would end its span: feeds are not traced.
    if (String(request.headers.upgrade ?? '').toLowerCase() === 'websocket') return;
    const parent = fromCarrier(incomingTraceHeaders(request)) ?? activeTraceContext();
    const route = request.routeOptions.url ?? 'unmatched';
    spans.set(request, startSpan(`${request.method} ${route}`, parent, { kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'http.route': route } }));
  });
  app.addHook('onError', async (request, _reply, error) => {
    spans.get(request)?.setAttribute('error.type', (error as { code?: string }).code ?? error.name);
  });
  app.addHook('onResponse', async (request, reply) => endSpan(request, reply.statusCode));
  app.addHook('onRequestAbort', async (request) => endSpan(request, undefined));
}

/** Names the flow on the request's span, once the handler knows it. */
export function traceFlow(request: FastifyRequest, flowId: string): void {
  spans.get(request)?.setAttributes(flowAttributes({ flow_id: flowId }));
}

function endSpan(request: FastifyRequest, status: number | undefined): void {
  const span = spans.get(request);
  if (span === undefined) return;
  spans.delete(request);
  if (status !== undefined) span.setAttribute('http.response.status_code', status);
  if (status === undefined || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, ...(status === undefined && { message: 'the client went away' }) });
  span.end();
}

function incomingTraceHeaders(request: FastifyRequest): Record<string, string> {
  const { traceparent, tracestate } = request.headers;
  return { ...(typeof traceparent === 'string' && { traceparent }), ...(typeof tracestate === 'string' && { tracestate }) };
}
