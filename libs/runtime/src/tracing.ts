export interface Tracing {
  /** Sends the spans still buffered and stops tracing. */
  shutdown(): Promise<void>;
}

/**
 * Starts OpenTelemetry tracing when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and nothing otherwise: tracing is opt-in. The rest of
 * the configuration is OpenTelemetry's own variables (protocol, headers, sampler, OTEL_SERVICE_NAME,
 * OTEL_SDK_DISABLED). Only traces are exported: metrics are Prometheus's (TASKSTREAM_METRICS_PORT),
 * and nothing is instrumented automatically; the services make their spans themselves and carry
 * the context in NATS headers (see the trace context in the NATS library).
 */
export async function startTracing(service: string, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | undefined> {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  if (/^true$/i.test(env.OTEL_SDK_DISABLED ?? '')) return undefined;
  // Loaded only when tracing is on: the SDK and its exporters weigh more than a service that does not trace should carry.
  const { NodeSDK, resources } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    // Not the process detector: it exports the command line, where a NATS URL may carry a password.
    resourceDetectors: [resources.envDetector, resources.hostDetector],
    ...(!env.OTEL_SERVICE_NAME && { serviceName: `taskstream-${service}` }),
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
