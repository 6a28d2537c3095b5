import type { DelayConfig } from '@taskstream/domain';
import { sleep } from '../timers.js';
import { StepError } from './step-error.js';
import type { StepContext } from './types.js';

/**
 * Waits the configured time (a cancel or the task's timeout ends the wait), then outputs Tasked's
 * `{"delayed_seconds": n}`, n the wait in seconds (the milliseconds waited / 1000), or the
 * config's `output` instead when it has one (null included). A wait longer than the task's
 * timeout could only time out: it fails at once, not retryable, as Tasked's does.
 */
export async function runDelay(ctx: StepContext): Promise<unknown> {
  const config = ctx.spec.config as DelayConfig;
  const timeoutSecs = ctx.spec.timeout_secs;
  if (timeoutSecs !== undefined && config.ms > timeoutSecs * 1000) {
    throw new StepError({
      message: `delay ${config.ms / 1000}s exceeds task timeout ${timeoutSecs}s; shorten the delay or raise timeout_secs`,
      code: 'DELAY_EXCEEDS_TIMEOUT',
      retryable: false,
    });
  }
  await sleep(config.ms, ctx.signal);
  return config.output !== undefined ? config.output : { delayed_seconds: config.ms / 1000 };
}
