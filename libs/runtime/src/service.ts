import { createContext, type ServiceContext } from './context.js';
import { readCommonEnv, type CommonEnv } from './env.js';
import { applyHeapGrowth } from './heap.js';
import { createLogger, type PinoLogger } from './logger.js';
import { collectProcessMetrics, readMetricsSettings, startMetricsServer } from './metrics.js';
import { startTracing } from './tracing.js';
import type { Logger } from '@taskstream/nats';

/** A running service: `stop` stops taking work, finishes or hands back what it holds, and resolves. */
export interface ServiceHandle {
  name: string;
  stop(): Promise<void>;
}

export type StopEvent = 'stopping' | 'second signal' | 'timed out';

// Wrappers such as npm forward the terminal's Ctrl-C that this process has already received: a
// repeat this close is the same key press, not an operator's second one.
const REPEAT_MS = 250;

export interface StopOnSignalOptions {
  /** The whole stop may take this long; then the process exits anyway. */
  timeoutMs: number;
  /** The exit code, from the signal that asked to stop and whether the stop completed (false if it failed or was cut short). */
  exitCode(signal: NodeJS.Signals, clean: boolean): number;
  /** Runs, synchronously, just before a stop is cut short: end child processes here, nothing waits for them. */
  force?(): void;
  /** Told what is happening, to say so. */
  report(event: StopEvent, signal: NodeJS.Signals): void;
}

/**
 * Runs `stop` on the first SIGTERM or SIGINT, then exits; `stop` reports its own errors, a rejection
 * only makes the exit unclean. A second signal, or `stop` outlasting `timeoutMs`, exits at once: an
 * operator pressing Ctrl-C again, or a deadline, must never wait on a drain stuck behind load.
 * Returns a function that removes the signal handlers.
 */
export function onStopSignal(stop: () => Promise<void>, options: StopOnSignalOptions): () => void {
  let first: NodeJS.Signals | undefined;
  let firstAt = 0;
  const cutShort = (event: StopEvent) => {
    options.report(event, first!);
    options.force?.();
    process.exit(options.exitCode(first!, false));
  };
  const handler = (signal: NodeJS.Signals) => {
    if (first !== undefined) {
      if (Date.now() - firstAt >= REPEAT_MS) cutShort('second signal');
      return;
    }
    first = signal;
    firstAt = Date.now();
    options.report('stopping', signal);
    setTimeout(() => cutShort('timed out'), options.timeoutMs).unref();
    void stop().then(
      () => process.exit(options.exitCode(signal, true)),
      () => process.exit(options.exitCode(signal, false)),
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

/**
 * Stops `handles` (in reverse start order) on SIGTERM or SIGINT, bounded by `timeoutMs`, then exits:
 * 0 once stopped, 1 if stopping failed or was cut short by the bound or a second signal.
 * Returns a function that removes the signal handlers.
 */
export function stopOnSignals(handles: ServiceHandle[], log: Logger, onStopped: () => Promise<void> = async () => {}, timeoutMs = 15_000): () => void {
  return onStopSignal(
    async () => {
      for (const handle of [...handles].reverse()) {
        try {
          await handle.stop();
        } catch (error) {
          log.error({ err: error, service: handle.name }, 'error while stopping');
        }
      }
      try {
        await onStopped();
      } catch (error) {
        log.error({ err: error }, 'error while stopping');
        throw error;
      }
    },
    {
      timeoutMs,
      exitCode: (_signal, clean) => (clean ? 0 : 1),
      report: (event, signal) => {
        if (event === 'stopping') log.info({ signal }, 'shutting down');
        else if (event === 'timed out') log.error({ timeoutMs }, 'shutdown took too long; exiting');
        else log.warn({ signal }, 'second signal; exiting without finishing the shutdown');
      },
    },
  );
}

/** An error's message, or what a thrown value says of itself; never throws. */
function printable(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return 'a thrown value that cannot be printed';
  }
}

/**
 * Turns an error nothing caught (a bug) into one fatal log line, with its stack, and exit code 1:
 * the process's state is unknown after it, and a supervisor restarts a process that exits. Node
 * alone would print the stack as plain lines that a log pipeline reading JSON cannot attribute.
 * `beforeExit` runs synchronously first (before a write that could block on a full pipe): what
 * must not outlive the process is ended there.
 */
export function exitOnUncaughtErrors(log: PinoLogger, beforeExit?: () => void): void {
  const fatal = (what: string) => (error: unknown) => {
    // Whatever fails here (a value that cannot be printed, a log that cannot be written), the exit happens.
    try {
      beforeExit?.();
    } catch {
      // the exit below still ends the process
    }
    try {
      log.fatal({ err: error }, `${what}: ${printable(error)}; exiting`);
    } finally {
      process.exit(1);
    }
  };
  process.on('uncaughtException', fatal('uncaught exception'));
  process.on('unhandledRejection', fatal('unhandled promise rejection'));
}

/**
 * The whole of a service's main.ts: read the common environment, serve metrics when
 * TASKSTREAM_METRICS_PORT is set, trace when OTEL_EXPORTER_OTLP_ENDPOINT is set, connect, start,
 * stop on signals (sending the last spans), and turn a startup failure, or any error nothing caught,
 * into one fatal log line and exit code 1.
 */
export async function runService(
  name: string,
  start: (ctx: ServiceContext, env: NodeJS.ProcessEnv) => Promise<ServiceHandle>,
  connectionName = `taskstream-${name}`,
): Promise<void> {
  let common: CommonEnv;
  try {
    common = readCommonEnv();
  } catch (error) {
    // No level is known yet: the one line saying which setting is wrong is written at the default.
    createLogger(name).fatal({ err: error }, (error as Error).message);
    process.exit(1);
  }
  applyHeapGrowth(common.heapGrowthPercent);
  const log = createLogger(name, common.logLevel);
  exitOnUncaughtErrors(log);
  try {
    const tracing = await startTracing(name);
    collectProcessMetrics();
    const metricsAt = readMetricsSettings(process.env);
    const metrics = metricsAt.port === undefined ? undefined : await startMetricsServer(metricsAt.port, log, metricsAt.host);
    const ctx = await createContext({ natsUrl: common.natsUrl, name: connectionName, log, prefix: common.prefix, replicas: common.replicas, asyncTraces: common.natsAsyncTraces });
    const handle = await start(ctx, process.env);
    stopOnSignals([handle], log, async () => {
      await ctx.nc.drain();
      await metrics?.close();
      await tracing?.shutdown();
    });
  } catch (error) {
    log.fatal({ err: error }, (error as Error).message);
    process.exit(1);
  }
}
