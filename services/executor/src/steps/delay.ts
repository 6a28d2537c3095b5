import type { DelayConfig } from '@taskstream/domain';
import { sleep } from '../timers.js';
import type { StepContext } from './types.js';

/**
 * Waits the configured time (a cancel or the task's timeout ends the wait), then outputs Tasked's
 * `{"delayed_seconds": n}`, n the wait in seconds (the milliseconds waited / 1000), or the
 * config's `output` instead when it has one (null included).
 */
export async function runDelay(ctx: StepContext): Promise<unknown> {
  const config = ctx.spec.config as DelayConfig;
  await sleep(config.ms, ctx.signal);
  return config.output !== undefined ? config.output : { delayed_seconds: config.ms / 1000 };
}
