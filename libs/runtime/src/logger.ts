import { trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type { PinoLogger };

/**
 * JSON logs on stdout (pino); `level` "silent" turns them off (the embedded CLI does). A line
 * written inside a traced span names it (`trace_id`, `span_id`), so a log line leads to its trace.
 */
export function createLogger(service: string, level: string = 'info', destination?: DestinationStream): PinoLogger {
  const options = { name: service, level, base: { service }, mixin: traceFields };
  return destination === undefined ? pino(options) : pino(options, destination);
}

function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}
