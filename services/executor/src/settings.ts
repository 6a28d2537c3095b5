import { readSettings, runService, switchSetting, wholeSetting, type Settings } from '@taskstream/runtime';
import { z } from 'zod';
import { startExecutor } from './executor.js';
import { parseAllowSetting } from './steps/address-policy.js';

function allowListSetting() {
  return z.string().transform((raw, issue) => {
    try {
      return parseAllowSetting(raw);
    } catch (error) {
      issue.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
}

export const EXECUTOR_SETTINGS = {
  queue: { env: 'TASKSTREAM_QUEUE', flag: '-q, --queue <name>', default: 'default', help: 'the queue it serves ("*" for every queue)', schema: z.string().regex(/^(\*|[A-Za-z0-9_-]{1,64})$/, 'must be a queue name or "*"') },
  concurrency: { env: 'TASKSTREAM_CONCURRENCY', flag: '-c, --concurrency <n>', default: '8', help: 'tasks run at once per process', schema: wholeSetting(1) },
  shellEnabled: { env: 'TASKSTREAM_ALLOW_SHELL', flag: '--allow-shell', default: 'off', help: 'run shell steps', schema: switchSetting() },
  httpAllow: {
    env: 'TASKSTREAM_HTTP_ALLOW',
    flag: '--http-allow <list>',
    default: '',
    help: 'CIDRs, addresses and host names http steps may reach besides public addresses, comma-separated',
    schema: allowListSetting(),
  },
  webhookAllow: {
    env: 'TASKSTREAM_WEBHOOK_ALLOW',
    flag: '--webhook-allow <list>',
    default: '',
    help: "CIDRs, addresses and host names flows' completion webhooks may reach besides public addresses; give every executor the same list",
    schema: allowListSetting(),
  },
  crashLimit: { env: 'TASKSTREAM_CRASH_LIMIT', default: '4', help: 'attempts of one work item that may crash their executor before it is set aside as poison', schema: wholeSetting(1) },
  shutdownGraceMs: { env: 'TASKSTREAM_SHUTDOWN_GRACE_MS', default: '10000', help: 'on SIGTERM, how long running steps may go on before they are stopped and handed back', schema: wholeSetting(0) },
  killGraceMs: { env: 'TASKSTREAM_KILL_GRACE_MS', default: '2000', help: "after SIGTERM to a stopped shell step's process group, how long before SIGKILL", schema: wholeSetting(0) },
  artifactMaxFileBytes: { env: 'TASKSTREAM_ARTIFACT_MAX_FILE_BYTES', default: '104857600', help: "bytes one file a shell step stores as an artifact may take (100 MiB)", schema: wholeSetting(0) },
  artifactMaxFiles: { env: 'TASKSTREAM_ARTIFACT_MAX_FILES', default: '100', help: 'files one attempt of a shell step may store as artifacts', schema: wholeSetting(0) },
  artifactMaxFlowBytes: { env: 'TASKSTREAM_ARTIFACT_MAX_FLOW_BYTES', default: '1073741824', help: "bytes one flow's artifacts may take, every attempt's counted (1 GiB)", schema: wholeSetting(0) },
  durableRetryAfterMs: { env: 'TASKSTREAM_DURABLE_RETRY_MS', default: '5000', help: 'retry delays at least this long are handed back to JetStream instead of waiting in the process', schema: wholeSetting(0) },
  ackWaitMs: { env: 'TASKSTREAM_ACK_WAIT_MS', flag: '--ack-wait-ms <ms>', default: '30000', help: 'how long a message held by a dead process waits before redelivery', schema: wholeSetting(1) },
} satisfies Settings;

/** The executor as its own process: settings from the environment, stopped by SIGTERM. `main.ts` and `taskstream executor` both run this. */
export function runExecutorService(): Promise<void> {
  const queue = process.env.TASKSTREAM_QUEUE || 'default';
  return runService('executor', (ctx, env) => startExecutor(ctx, readSettings(EXECUTOR_SETTINGS, env)), `taskstream-executor-${queue}`);
}
