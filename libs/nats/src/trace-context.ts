import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter } from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { FlowEvent } from '@taskstream/domain';

/*
 * W3C trace context carried in NATS message headers (`traceparent`, `tracestate`), so that one
 * trace follows a flow from the gateway's request through the planner, dispatcher and executor to
 * a step's own HTTP call. Everything here goes through the OpenTelemetry API: with no SDK started
 * (OTEL_EXPORTER_OTLP_ENDPOINT unset) the tracer and propagator are no-ops and no header is written.
 */

const TRACER = 'taskstream';
const TRACE_HEADERS = ['traceparent', 'tracestate'] as const;

const headerGetter: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** The trace context of `from` (the active one by default) as W3C headers; empty when nothing is traced. */
export function traceCarrier(from: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(from, carrier);
  return carrier;
}

/** The trace context of `from` as NATS headers, or undefined when nothing is traced (the message goes without headers). */
export function traceHeaders(from: Context = context.active()): MsgHdrs | undefined {
  const carrier = traceCarrier(from);
  if (carrier.traceparent === undefined) return undefined;
  const headers = natsHeaders();
  for (const name of TRACE_HEADERS) if (carrier[name] !== undefined) headers.set(name, carrier[name]);
  return headers;
}

/** The trace context a message carries, or undefined when it carries none. */
export function traceContextOf(msg: { headers?: MsgHdrs }): Context | undefined {
  const traceparent = msg.headers?.get('traceparent');
  if (!traceparent) return undefined;
  return fromCarrier({ traceparent, tracestate: msg.headers?.get('tracestate') ?? '' });
}

/** The trace context W3C headers describe (an incoming HTTP request's), or undefined when they describe none. */
export function fromCarrier(carrier: Record<string, string>): Context | undefined {
  const extracted = propagation.extract(ROOT_CONTEXT, carrier, headerGetter);
  return trace.getSpanContext(extracted) === undefined ? undefined : extracted;
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
}

/**
 * Runs `work` inside a new span, child of `parent`, with that span active (so what `work` publishes
 * carries it); a thrown error is recorded on the span and thrown on. Untraced work stays untraced:
 * when `parent` holds no span, `work` runs as it is, so a message that came without a trace starts
 * no new one.
 */
export function inChildSpan<T>(name: string, parent: Context | undefined, options: SpanOptions, work: (span?: Span) => Promise<T>): Promise<T> {
  if (parent === undefined || trace.getSpanContext(parent) === undefined) return work();
  return inSpan(name, parent, options, work);
}

/** Runs `work` inside a new span, child of `parent` (a new trace when `parent` has none), with that span active. */
export function inSpan<T>(name: string, parent: Context, options: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  return trace.getTracer(TRACER).startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, ...(options.attributes && { attributes: options.attributes }) }, parent, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      // Named by kind and code only: a step's error text may hold a resolved secret (a URL, a
      // response body, stderr), and spans leave for a collector the log's redaction never sees.
      const kind = errorKind(error);
      span.setAttribute('error.type', kind);
      span.setStatus({ code: SpanStatusCode.ERROR, message: kind });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** An error's code (a step's TaskError code, a Node error code) or class name: never its message. */
function errorKind(error: unknown): string {
  const detail = (error as { detail?: { code?: unknown } })?.detail?.code;
  const code = (error as { code?: unknown })?.code;
  if (typeof detail === 'string') return detail;
  if (typeof code === 'string') return code;
  return (error as Error)?.name ?? typeof error;
}

/** Starts a span the caller ends (one that outlives a single call, such as an HTTP request's). */
export function startSpan(name: string, parent: Context, options: SpanOptions): Span {
  return trace.getTracer(TRACER).startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, ...(options.attributes && { attributes: options.attributes }) }, parent);
}

/** Runs `work` with `span` active, so what it publishes carries it. */
export function withSpan<T>(span: Span, work: () => T): T {
  return context.with(trace.setSpan(context.active(), span), work);
}

/** Runs `work` with `saved` as the active trace context (one captured earlier, for work done later). */
export function withTraceContext<T>(saved: Context | undefined, work: () => T): T {
  return saved === undefined ? work() : context.with(saved, work);
}

/** `work` bound to the active trace context, for whoever calls it later from elsewhere (a queue, a gate). */
export function bindTraceContext<A extends unknown[], R>(work: (...args: A) => R): (...args: A) => R {
  return context.bind(context.active(), work);
}

/** The active trace context, to carry to work done later. */
export function activeTraceContext(): Context {
  return context.active();
}

/** What a span about a flow's event or task says of it (ids are attributes of spans, never labels of metrics). */
export function flowAttributes(of: { flow_id: string; task_id?: string; type?: string }): Attributes {
  return { 'taskstream.flow_id': of.flow_id, ...(of.task_id !== undefined && { 'taskstream.task_id': of.task_id }), ...(of.type !== undefined && { 'taskstream.event': of.type }) };
}

/** Names a consumer loop's span after what it does with each event: `<verb> <event type>`. */
export function eventSpan(verb: string): (event: FlowEvent) => { name: string; attributes: Attributes } {
  return (event) => ({ name: `${verb} ${event.type}`, attributes: flowAttributes({ flow_id: event.flow_id, type: event.type, ...('task_id' in event && { task_id: event.task_id }) }) });
}

export { SpanKind, SpanStatusCode, type Context as TraceContext, type Span };
