/** Reads the settings every service shares from the environment. Only main.ts files call this. */
export interface CommonEnv {
  natsUrl: string;
  prefix: string;
  replicas: number;
  logLevel: string;
  natsAsyncTraces: boolean;
}

export function readCommonEnv(env: NodeJS.ProcessEnv = process.env): CommonEnv {
  return {
    natsUrl: env.TASKSTREAM_NATS_URL ?? 'nats://127.0.0.1:4222',
    prefix: env.TASKSTREAM_PREFIX ?? 'ts',
    replicas: intFrom(env, 'TASKSTREAM_REPLICAS', 1),
    logLevel: env.TASKSTREAM_LOG_LEVEL ?? 'info',
    natsAsyncTraces: boolFrom(env, 'TASKSTREAM_NATS_ASYNC_TRACES', false),
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
