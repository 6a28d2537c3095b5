import { z } from 'zod';

/**
 * One setting of a service: the environment variable that sets it, the CLI flag that sets the same
 * variable, its default and how it is checked. A service's settings are read from the environment
 * only, through `readSettings`; `taskstream <service>` turns its flags into those variables first,
 * so `main.ts` and the CLI start a service the same way.
 */
export interface Setting {
  env: string;
  /** Commander spelling: `--queue <name>`, or `--allow-shell` for a switch. */
  flag?: string;
  /** What docs/operations.md says the default is. */
  default: string;
  help: string;
  schema: z.ZodType;
}

export type Settings = Record<string, Setting>;
export type SettingValues<S extends Settings> = { [K in keyof S]: z.output<S[K]['schema']> };

export const wholeSetting = (min = 0) => z.coerce.number({ error: 'must be a whole number' }).int('must be a whole number').min(min, `must be at least ${min}`);
export const switchSetting = () =>
  z
    .string()
    .regex(/^(1|true|yes|on|0|false|no|off)$/i, 'must be true or false')
    .transform((raw) => /^(1|true|yes|on)$/i.test(raw));

/** Reads `settings` from `env`; an invalid value stops the start with an error naming the variable. */
export function readSettings<S extends Settings>(settings: S, env: NodeJS.ProcessEnv): SettingValues<S> {
  const values: Record<string, unknown> = {};
  for (const [name, setting] of Object.entries(settings)) {
    const raw = env[setting.env];
    const parsed = setting.schema.safeParse(raw === undefined || raw === '' ? setting.default : raw);
    if (!parsed.success) throw new Error(`${setting.env} ${parsed.error.issues[0]!.message}, not ${JSON.stringify(String(raw).slice(0, 60))}`);
    values[name] = parsed.data;
  }
  return values as SettingValues<S>;
}

/** Commander's name for a flag's value: `-w, --dispatch-window <n>` → `dispatchWindow`. */
export function flagKey(flag: string): string {
  const long = /--([a-z][a-z-]*)/.exec(flag)?.[1] ?? flag;
  return long.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** The variables a CLI invocation's flags set, to lay over the environment before the service reads it. */
export function flagsAsEnv(settings: Settings, options: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const setting of Object.values(settings)) {
    if (setting.flag === undefined) continue;
    const value = options[flagKey(setting.flag)];
    if (value !== undefined) env[setting.env] = String(value);
  }
  return env;
}

/** The settings every service reads (see readCommonEnv). */
export const COMMON_SETTINGS = {
  natsUrl: { env: 'TASKSTREAM_NATS_URL', flag: '--nats <url>', default: 'nats://127.0.0.1:4222', help: 'NATS server URL(s), comma-separated', schema: z.string().min(1) },
  prefix: { env: 'TASKSTREAM_PREFIX', flag: '--prefix <prefix>', default: 'ts', help: 'subject and stream prefix', schema: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "-" or "_"') },
  replicas: { env: 'TASKSTREAM_REPLICAS', flag: '--replicas <n>', default: '1', help: 'stream replicas (3 on a cluster)', schema: wholeSetting(1) },
  logLevel: { env: 'TASKSTREAM_LOG_LEVEL', flag: '--log-level <level>', default: 'info', help: 'log level', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'must be fatal, error, warn, info, debug, trace or silent' }) },
} satisfies Settings;
