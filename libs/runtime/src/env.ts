/** Reads the settings every service shares from the environment. Only main.ts files call this. */
export interface CommonEnv {
  natsUrl: string;
  prefix: string;
  replicas: number;
  logLevel: string;
  natsAsyncTraces: boolean;
  /** The service's NATS user and password (TASKSTREAM_NATS_USER, TASKSTREAM_NATS_PASSWORD); none on a server without authorization. */
  natsUser?: string;
  natsPassword?: string;
  /** Create or update the streams and buckets at start (TASKSTREAM_PROVISION), or only check that they exist. */
  provision: boolean;
}

export function readCommonEnv(env: NodeJS.ProcessEnv = process.env): CommonEnv {
  return {
    natsUrl: env.TASKSTREAM_NATS_URL ?? 'nats://127.0.0.1:4222',
    prefix: env.TASKSTREAM_PREFIX ?? 'ts',
    replicas: intFrom(env, 'TASKSTREAM_REPLICAS', 1),
    logLevel: env.TASKSTREAM_LOG_LEVEL ?? 'info',
    natsAsyncTraces: boolFrom(env, 'TASKSTREAM_NATS_ASYNC_TRACES', false),
    natsUser: env.TASKSTREAM_NATS_USER || undefined,
    natsPassword: env.TASKSTREAM_NATS_PASSWORD || undefined,
    provision: boolFrom(env, 'TASKSTREAM_PROVISION', true),
  };
}

export function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a whole number, not "${raw}"`);
  return value;
}

export function boolFrom(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, not "${raw}"`);
}
