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
/** Raw values (as the environment would hold them) for some of `S`, by setting name. */
export type RawSettings<S extends Settings> = { [K in keyof S]?: string };

/** A setting that stops a start: the message names the variable, and never quotes a secret. */
export class SettingError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = 'SettingError';
  }
}

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
    if (!parsed.success) throw new SettingError(setting.env, `${setting.env} ${parsed.error.issues[0]!.message}, not ${JSON.stringify(String(raw).slice(0, 60))}`);
    values[name] = parsed.data;
  }
  return values as SettingValues<S>;
}

/**
 * `env` as a caller that chooses some settings itself (the embedded stack) hands it to
 * `readSettings`: `defaults` where `env` leaves a setting unset, `overrides` whatever it says. Both
 * are raw text, so they are checked, and unset ones defaulted, exactly as the environment's are.
 */
export function layeredEnv<S extends Settings>(settings: S, env: NodeJS.ProcessEnv, layers: { defaults?: RawSettings<S>; overrides?: RawSettings<S> }): NodeJS.ProcessEnv {
  const layered = { ...env };
  for (const [name, raw] of Object.entries(layers.defaults ?? {}) as Array<[string, string | undefined]>) {
    const variable = settings[name]!.env;
    if (raw !== undefined && (layered[variable] ?? '') === '') layered[variable] = raw;
  }
  for (const [name, raw] of Object.entries(layers.overrides ?? {}) as Array<[string, string | undefined]>) {
    if (raw !== undefined) layered[settings[name]!.env] = raw;
  }
  return layered;
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

/**
 * How a connection proves who it is to NATS: a user and password, or a credentials file (a user
 * JWT and its nkey seed, for operator mode), never both; none on a server without authorization.
 * The password is read from the environment only: a flag would show it in the process list.
 */
export const NATS_AUTH_SETTINGS = {
  natsUser: { env: 'TASKSTREAM_NATS_USER', default: '', help: 'the NATS user to connect as', schema: z.string() },
  natsPassword: { env: 'TASKSTREAM_NATS_PASSWORD', default: '', help: "that user's password", schema: z.string() },
  natsCreds: { env: 'TASKSTREAM_NATS_CREDS', flag: '--nats-creds <file>', default: '', help: 'a NATS credentials file (user JWT and nkey seed) to connect with', schema: z.string() },
} satisfies Settings;

/** The settings every service reads (see readCommonEnv). */
export const COMMON_SETTINGS = {
  natsUrl: { env: 'TASKSTREAM_NATS_URL', flag: '--nats <url>', default: 'nats://127.0.0.1:4222', help: 'NATS server URL(s), comma-separated', schema: z.string().min(1) },
  prefix: { env: 'TASKSTREAM_PREFIX', flag: '--prefix <prefix>', default: 'ts', help: 'subject and stream prefix', schema: z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be letters, digits, "-" or "_"') },
  replicas: { env: 'TASKSTREAM_REPLICAS', flag: '--replicas <n>', default: '1', help: 'stream replicas (3 on a cluster)', schema: wholeSetting(1) },
  logLevel: { env: 'TASKSTREAM_LOG_LEVEL', flag: '--log-level <level>', default: 'info', help: 'log level', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'must be fatal, error, warn, info, debug, trace or silent' }) },
  heapGrowthPercent: {
    env: 'TASKSTREAM_HEAP_GROWTH_PERCENT',
    default: '0',
    help: 'how far the heap may grow past what the last full garbage collection kept before the next one, in percent (0: as V8 decides); lower holds less memory for more CPU',
    schema: wholeSetting(0).max(300, 'must be at most 300'),
  },
  natsAsyncTraces: { env: 'TASKSTREAM_NATS_ASYNC_TRACES', default: 'false', help: "a timed-out NATS request's error names the call that started it (costs CPU)", schema: switchSetting() },
  ...NATS_AUTH_SETTINGS,
  provision: { env: 'TASKSTREAM_PROVISION', default: 'true', help: 'create or update the streams and buckets at start, or only check that they exist', schema: switchSetting() },
} satisfies Settings;
