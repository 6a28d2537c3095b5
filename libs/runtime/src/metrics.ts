import { createServer, type Server } from 'node:http';
import { observeConsumers, runningConsumers, type Logger } from '@taskstream/nats';
import { collectDefaultMetrics, Counter, Gauge, Histogram, register, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration } from 'prom-client';
import { intFrom } from './env.js';

/**
 * Prometheus metrics, in prom-client's default registry: every service of a process (the embedded
 * stack runs all five in one) defines its own, named `taskstream_<service>_…`, and the consumer
 * metrics below are shared, labelled by consumer or source. No label ever holds a flow or task id.
 */

export type { Counter, Gauge, Histogram };

/** A metric already registered under the name (its module was loaded twice) is reused, not refused. */
function reuse<M>(name: string, make: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? make();
}

export function counter<L extends string>(config: CounterConfiguration<L>): Counter<L> {
  return reuse(config.name, () => new Counter(config));
}

export function gauge<L extends string>(config: GaugeConfiguration<L>): Gauge<L> {
  return reuse(config.name, () => new Gauge(config));
}

export function histogram<L extends string>(config: HistogramConfiguration<L>): Histogram<L> {
  return reuse(config.name, () => new Histogram(config));
}

/** Buckets, in seconds, for anything from a millisecond to a few minutes. */
export const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** How long a lag reading may take before the consumer is left out of that scrape. */
const LAG_READ_MS = 2_000;

const redeliveries = counter({ name: 'taskstream_redeliveries_total', help: 'Messages delivered again (delivery count above 1) to a consumer loop, by source.', labelNames: ['source'] });
const deadLetters = counter({ name: 'taskstream_dead_letters_total', help: 'Messages set aside in the dead letters, by source.', labelNames: ['source'] });

/** num_pending of one consumer; undefined when the server did not answer in time. */
async function pendingOf(read: () => Promise<number>): Promise<number | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), LAG_READ_MS)));
  try {
    return await Promise.race([read().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

gauge({
  name: 'taskstream_consumer_pending',
  help: "Messages of a consumer's filter not yet delivered (its num_pending: the lag), read from the server at scrape time, by consumer loop running in this process.",
  labelNames: ['consumer', 'source'],
  async collect() {
    const readings = await Promise.all(runningConsumers().map(async (c) => ({ c, pending: await pendingOf(c.pending) })));
    this.reset();
    for (const { c, pending } of readings) if (pending !== undefined) this.set({ consumer: c.consumer, source: c.source }, pending);
  },
});

observeConsumers({
  redelivered: (source) => redeliveries.inc({ source }),
  deadLettered: (source) => deadLetters.inc({ source }),
});

let processMetrics = false;

/** prom-client's default process and Node.js metrics (CPU, memory, event loop lag, handles), once per process. */
export function collectProcessMetrics(): void {
  if (processMetrics || register.getSingleMetric('process_cpu_user_seconds_total')) return;
  processMetrics = true;
  collectDefaultMetrics();
}

/** Every metric of this process, in the Prometheus text format. */
export async function scrapeMetrics(): Promise<{ contentType: string; body: string }> {
  return { contentType: register.contentType, body: await register.metrics() };
}

export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** `GET /metrics` and nothing else. */
function metricsServer(log: Logger): Server {
  return createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/metrics') return void response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
    if (request.method !== 'GET' && request.method !== 'HEAD') return void response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('use GET\n');
    scrapeMetrics().then(
      ({ contentType, body }) => response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(request.method === 'HEAD' ? undefined : body),
      (error: unknown) => {
        log.error({ err: error }, 'could not collect the metrics');
        response.writeHead(500, { 'content-type': 'text/plain' }).end('could not collect the metrics\n');
      },
    );
  });
}

/**
 * Serves this process's metrics at `http://<host>:<port>/metrics` (port 0: a free one) and logs
 * where. Resolves once listening; a port in use rejects with an error naming it.
 */
export async function startMetricsServer(port: number, log: Logger, host = '127.0.0.1'): Promise<MetricsServer> {
  collectProcessMetrics();
  const server = metricsServer(log);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new Error(`metrics port ${port} on ${host} is in use; choose another (TASKSTREAM_METRICS_PORT)`) : error));
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`;
  log.info({ url, port: bound }, 'serving metrics');
  return {
    url,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A scraper keeps its connection open between scrapes.
        server.closeAllConnections();
      }),
  };
}

export interface MetricsSettings {
  /** Undefined: no metrics server. */
  port?: number;
  host: string;
}

/** TASKSTREAM_METRICS_PORT (unset: no metrics server; 0: a free port) and TASKSTREAM_METRICS_HOST (default 127.0.0.1). */
export function readMetricsSettings(env: NodeJS.ProcessEnv): MetricsSettings {
  const host = env.TASKSTREAM_METRICS_HOST || '127.0.0.1';
  if ((env.TASKSTREAM_METRICS_PORT ?? '') === '') return { host };
  const port = intFrom(env, 'TASKSTREAM_METRICS_PORT', 0);
  if (port > 65_535) throw new Error(`TASKSTREAM_METRICS_PORT must be a port number (0 to 65535), not "${env.TASKSTREAM_METRICS_PORT}"`);
  return { port, host };
}
