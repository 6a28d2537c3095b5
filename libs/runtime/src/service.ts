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
