import { startDispatcher } from '@taskstream/dispatcher';
import { startExecutor } from '@taskstream/executor';
import { buildGateway } from '@taskstream/gateway';
import { startPlanner } from '@taskstream/planner';
import { startProjector } from '@taskstream/projector';
import { createContext, createLogger, stopOnSignals, type ServiceHandle } from '@taskstream/runtime';
import { UserError } from '../user-error.js';

export const SERVICES = ['gateway', 'planner', 'dispatcher', 'executor', 'projector'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ServiceOptions {
  nats: string;
  prefix: string;
  replicas: number;
  logLevel: string;
  host: string;
  port: number;
  queue: string;
  concurrency: number;
  allowShell: boolean;
  rebuild?: boolean;
  dispatchWindow?: number;
  ackWaitMs?: number;
}

/** One service alone in this process, for scaled deployments. Runs until SIGTERM or Ctrl-C. */
export async function serviceCommand(name: ServiceName, options: ServiceOptions): Promise<void> {
  const log = createLogger(name, options.logLevel);
  const ctx = await createContext({ natsUrl: options.nats, name: `taskstream-${name}`, log, prefix: options.prefix, replicas: options.replicas });
  let handle: ServiceHandle;
  switch (name) {
    case 'planner':
      handle = await startPlanner(ctx);
      break;
    case 'dispatcher':
      handle = await startDispatcher(ctx, {
        ...(options.dispatchWindow !== undefined && { dispatchWindow: options.dispatchWindow }),
        ...(options.ackWaitMs !== undefined && { ackWaitMs: options.ackWaitMs }),
      });
      break;
    case 'projector':
      handle = await startProjector(ctx, { rebuild: options.rebuild === true });
      break;
    case 'executor':
      handle = await startExecutor(ctx, { queue: options.queue, concurrency: options.concurrency, shellEnabled: options.allowShell });
      break;
    case 'gateway': {
      const app = await buildGateway(ctx, { logger: log });
      try {
        await app.listen({ host: options.host, port: options.port });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UserError(`port ${options.port} on ${options.host} is already in use`, 'pass --port with a free port', 3);
        throw error;
      }
      handle = { name, stop: () => app.close() };
      break;
    }
  }
  stopOnSignals([handle], log, () => ctx.nc.drain());
}
