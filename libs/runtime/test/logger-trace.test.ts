import { Writable } from 'node:stream';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';

function captured() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, stream };
}

describe('logs and traces', () => {
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
  provider.register();
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
  });

  it('a line written inside a span names its trace and span; one outside names none', async () => {
    const { lines, stream } = captured();
    const log = createLogger('executor', 'info', stream);
    log.info('outside');
    let ids: { traceId: string; spanId: string } | undefined;
    await trace.getTracer('test').startActiveSpan('run task', async (span) => {
      ids = span.spanContext();
      log.info({ flow_id: 'f' }, 'inside');
      span.end();
    });
    expect(lines[0]).not.toHaveProperty('trace_id');
    expect(lines[1]).toMatchObject({ service: 'executor', flow_id: 'f', msg: 'inside', trace_id: ids!.traceId, span_id: ids!.spanId });
  });
});
