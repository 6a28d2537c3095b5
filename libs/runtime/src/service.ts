import { createContext, type ServiceContext } from './context.js';
import { readCommonEnv } from './env.js';
import { createLogger } from './logger.js';
import type { Logger } from '@taskstream/nats';

/** A running service: `stop` stops taking work, finishes or hands back what it holds, and resolves. */
export interface ServiceHandle {
  name: string;
  stop(): Promise<void>;
}

/**
 * Stops `handles` (in reverse start order) on SIGTERM or SIGINT, bounded by `timeoutMs`, then exits.
 * Returns a function that removes the signal handlers.
 */
export function stopOnSignals(handles: ServiceHandle[], log: Logger, onStopped: () => Promise<void> = async () => {}, timeoutMs = 15_000): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    (async () => {
      for (const handle of [...handles].reverse()) {
        try {
          await handle.stop();
        } catch (error) {
          log.error({ err: error, service: handle.name }, 'error while stopping');
        }
      }
      await onStopped();
      process.exit(0);
    })();
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}

/**
 * The whole of a service's main.ts: read the common environment, connect, start, stop on signals,
 * and turn a startup failure into one fatal log line and exit code 1.
 */
export async function runService(
  name: string,
  start: (ctx: ServiceContext, env: NodeJS.ProcessEnv) => Promise<ServiceHandle>,
  connectionName = `taskstream-${name}`,
): Promise<void> {
  const common = readCommonEnv();
  const log = createLogger(name, common.logLevel);
  try {
    const ctx = await createContext({ natsUrl: common.natsUrl, name: connectionName, log, prefix: common.prefix, replicas: common.replicas, asyncTraces: common.natsAsyncTraces });
    const handle = await start(ctx, process.env);
    stopOnSignals([handle], log, () => ctx.nc.drain());
  } catch (error) {
    log.fatal({ err: error }, (error as Error).message);
    process.exit(1);
  }
}
