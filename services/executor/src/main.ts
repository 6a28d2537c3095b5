import { boolFrom, intFrom, runService } from '@taskstream/runtime';
import { startExecutor } from './executor.js';

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
    }),
  `taskstream-executor-${queue}`,
);
