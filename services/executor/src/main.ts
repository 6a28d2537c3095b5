import { boolFrom, intFrom, runService } from '@taskstream/runtime';
import { startExecutor } from './executor.js';
import { parseAllowSetting } from './steps/address-policy.js';

/** TASKSTREAM_HTTP_ALLOW: comma-separated CIDRs, addresses and host names http steps may reach besides public addresses. */
function httpAllowFrom(env: NodeJS.ProcessEnv): string[] {
  try {
    return parseAllowSetting(env.TASKSTREAM_HTTP_ALLOW);
  } catch (error) {
    throw new Error(`TASKSTREAM_HTTP_ALLOW: ${(error as Error).message}`);
  }
}

const queue = process.env.TASKSTREAM_QUEUE ?? 'default';
await runService(
  'executor',
  (ctx, env) =>
    startExecutor(ctx, {
      queue,
      concurrency: intFrom(env, 'TASKSTREAM_CONCURRENCY', 8),
      shellEnabled: boolFrom(env, 'TASKSTREAM_ALLOW_SHELL', false),
      ackWaitMs: intFrom(env, 'TASKSTREAM_ACK_WAIT_MS', 30_000),
      crashLimit: intFrom(env, 'TASKSTREAM_CRASH_LIMIT', 4),
      durableRetryAfterMs: intFrom(env, 'TASKSTREAM_DURABLE_RETRY_MS', 5_000),
      shutdownGraceMs: intFrom(env, 'TASKSTREAM_SHUTDOWN_GRACE_MS', 10_000),
      killGraceMs: intFrom(env, 'TASKSTREAM_KILL_GRACE_MS', 2_000),
      httpAllow: httpAllowFrom(env),
    }),
  `taskstream-executor-${queue}`,
);
