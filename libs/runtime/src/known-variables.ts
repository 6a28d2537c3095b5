import { SettingError } from './settings.js';

/**
 * Every TASKSTREAM_* variable Taskstream reads or sets, whichever process reads it: the services'
 * declared settings, the gateway's protection and the metrics port (read apart from the
 * declarations), the CLI's own, the variables a step finds in its environment, and the NATS
 * servers' passwords in deploy/nats/permissions.conf (often exported in the same shell). A test
 * holds this list to the declarations and to docs/operations.md.
 */
export const TASKSTREAM_VARIABLES: ReadonlySet<string> = new Set([
  // Shared by every service (COMMON_SETTINGS).
  'TASKSTREAM_NATS_URL', 'TASKSTREAM_PREFIX', 'TASKSTREAM_REPLICAS', 'TASKSTREAM_LOG_LEVEL', 'TASKSTREAM_HEAP_GROWTH_PERCENT', 'TASKSTREAM_NATS_ASYNC_TRACES',
  'TASKSTREAM_NATS_USER', 'TASKSTREAM_NATS_PASSWORD', 'TASKSTREAM_NATS_CREDS', 'TASKSTREAM_PROVISION',
  'TASKSTREAM_METRICS_PORT', 'TASKSTREAM_METRICS_HOST',
  // Gateway.
  'TASKSTREAM_HOST', 'TASKSTREAM_PORT', 'TASKSTREAM_BODY_LIMIT', 'TASKSTREAM_CLIENT_STALL_SECS', 'TASKSTREAM_AUTH', 'TASKSTREAM_ALLOW_UNAUTHENTICATED',
  'TASKSTREAM_BOOTSTRAP_ADMIN_KEY', 'TASKSTREAM_RATE_LIMIT', 'TASKSTREAM_CORS_ORIGINS',
  // Planner, dispatcher, projector.
  'TASKSTREAM_LEASE_MS', 'TASKSTREAM_PLANNER_CONCURRENCY', 'TASKSTREAM_DISPATCH_WINDOW', 'TASKSTREAM_DISPATCH_LEASE_MS', 'TASKSTREAM_ACK_WAIT_MS', 'TASKSTREAM_REBUILD', 'TASKSTREAM_FLOW_RETENTION_SECS',
  // Executor.
  'TASKSTREAM_QUEUE', 'TASKSTREAM_CONCURRENCY', 'TASKSTREAM_ALLOW_SHELL', 'TASKSTREAM_HTTP_ALLOW', 'TASKSTREAM_WEBHOOK_ALLOW', 'TASKSTREAM_CRASH_LIMIT',
  'TASKSTREAM_SHUTDOWN_GRACE_MS', 'TASKSTREAM_KILL_GRACE_MS', 'TASKSTREAM_DURABLE_RETRY_MS',
  'TASKSTREAM_ARTIFACT_MAX_FILE_BYTES', 'TASKSTREAM_ARTIFACT_MAX_FILES', 'TASKSTREAM_ARTIFACT_MAX_FLOW_BYTES',
  // Scheduler.
  'TASKSTREAM_SCHEDULE_GRACE_MS',
  // The CLI's.
  'TASKSTREAM_URL', 'TASKSTREAM_API_KEY', 'TASKSTREAM_DEBUG',
  // A step's environment.
  'TASKSTREAM_FLOW_ID', 'TASKSTREAM_TASK_ID', 'TASKSTREAM_ATTEMPT', 'TASKSTREAM_IDEMPOTENCY_KEY', 'TASKSTREAM_ARTIFACTS',
  // The NATS servers' (deploy/nats/permissions.conf).
  'TASKSTREAM_PROVISIONER_PASSWORD', 'TASKSTREAM_GATEWAY_PASSWORD', 'TASKSTREAM_PLANNER_PASSWORD',
  'TASKSTREAM_DISPATCHER_PASSWORD', 'TASKSTREAM_EXECUTOR_PASSWORD', 'TASKSTREAM_PROJECTOR_PASSWORD', 'TASKSTREAM_SCHEDULER_PASSWORD',
]);

/**
 * Refuses a TASKSTREAM_* variable that Taskstream does not know but that is a few letters from one
 * it does: a misspelt setting, which would otherwise be ignored in silence and leave its default in
 * force. Other TASKSTREAM_* names are left alone (a queue's secret may come from any variable).
 */
export function checkKnownVariables(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(env)) {
    if (!name.startsWith('TASKSTREAM_') || TASKSTREAM_VARIABLES.has(name)) continue;
    const closest = closestName(name);
    if (closest === undefined) continue;
    throw new SettingError(name, `${name} is not a Taskstream setting (did you mean ${closest}?); docs/operations.md lists every setting, and a misspelt one would leave its default in force`);
  }
}

function closestName(name: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const known of TASKSTREAM_VARIABLES) {
    const distance = editDistance(name, known);
    if (distance <= 3 && (best === undefined || distance < best.distance)) best = { name: known, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}
