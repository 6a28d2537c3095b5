import { startDispatcher } from '@taskstream/dispatcher';
import { parseAllowSetting, startExecutor } from '@taskstream/executor';
import { startPlanner } from '@taskstream/planner';
import { startProjector } from '@taskstream/projector';
import { createContext, createLogger, stopOnSignals, type ServiceHandle } from '@taskstream/runtime';
import { UserError } from '../user-error.js';

export const SERVICES = ['gateway', 'planner', 'dispatcher', 'executor', 'projector'] as const;
export type ServiceName = Exclude<(typeof SERVICES)[number], 'gateway'>;

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
  /** executor: comma-separated CIDRs and host names http steps may reach besides public addresses. */
  httpAllow?: string;
  rebuild?: boolean;
  dispatchWindow?: number;
  ackWaitMs?: number;
}

/** The --http-allow setting, refused with what to write when an entry is not valid. */
export function httpAllowOf(setting: string | undefined): string[] {
  try {
    return parseAllowSetting(setting);
  } catch (error) {
    throw new UserError(`--http-allow: ${(error as Error).message}`, 'give CIDRs (10.0.0.0/8), addresses (::1) or host names (api.internal), comma-separated', 2);
  }
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
      handle = await startExecutor(ctx, { queue: options.queue, concurrency: options.concurrency, shellEnabled: options.allowShell, httpAllow: httpAllowOf(options.httpAllow) });
      break;
  }
  stopOnSignals([handle], log, () => ctx.nc.drain());
}
