import { DISPATCHER_SETTINGS } from '@taskstream/dispatcher';
import { EXECUTOR_SETTINGS, LOCAL_HTTP_ALLOW } from '@taskstream/executor';
import { GATEWAY_SETTINGS } from '@taskstream/gateway';
import { PLANNER_SETTINGS } from '@taskstream/planner';
import { PROJECTOR_SETTINGS } from '@taskstream/projector';
import { SCHEDULER_SETTINGS } from '@taskstream/scheduler';
import { COMMON_SETTINGS, layeredEnv, readCommonEnv, readSettings, type CommonEnv, type RawSettings, type Settings, type SettingValues } from '@taskstream/runtime';

/** What the embedded stack is asked for: `taskstream up` and `taskstream run` build this from their flags. */
export interface StackSettingOptions {
  /** Use this NATS instead of starting a nats-server child process. */
  natsUrl?: string;
  /** With `natsUrl`: the NATS credentials file to connect with (TASKSTREAM_NATS_CREDS). */
  natsCreds?: string;
  prefix?: string;
  /** pino level for the services' logs; "silent" keeps them quiet. */
  logLevel?: string;
  /** Queue the executor serves; "*" (default) serves every queue. */
  queue?: string;
  concurrency?: number;
  shellEnabled?: boolean;
  /** CIDRs and host names http steps may reach besides public addresses (default: loopback, 127.0.0.0/8 and ::1). */
  httpAllow?: readonly string[];
  /** On stop, running steps get this long to finish before they are stopped and handed back (default 5 s). */
  stepGraceMs?: number;
  /**
   * The environment the services' settings are read from, as each service's own process reads it
   * (TASKSTREAM_LEASE_MS, TASKSTREAM_ACK_WAIT_MS, ...), under the stack's own choices below. None by
   * default: every setting then has its declared default. The CLI passes its own environment.
   */
  env?: NodeJS.ProcessEnv;
}

/** Each service's settings, read through its own declarations, as the embedded stack runs it. */
export interface StackSettings {
  common: CommonEnv;
  /** The gateway's listen address and port come from the stack's own flags; the rest from here. */
  gateway: SettingValues<typeof GATEWAY_SETTINGS>;
  planner: SettingValues<typeof PLANNER_SETTINGS>;
  dispatcher: SettingValues<typeof DISPATCHER_SETTINGS>;
  executor: SettingValues<typeof EXECUTOR_SETTINGS>;
  projector: SettingValues<typeof PROJECTOR_SETTINGS>;
  scheduler: SettingValues<typeof SCHEDULER_SETTINGS>;
}

/** How long running steps get on stop: the whole stop must fit the CLI's 10 s bound. */
const STEP_GRACE_MS = 5_000;

/**
 * Where the embedded stack deliberately differs from a deployed service, as raw settings laid over
 * the environment (`overrides`) or under it (`defaults`), so that each is still checked by the
 * setting's own schema and every other setting keeps its declared default.
 */
type Layers<S extends Settings> = { defaults?: RawSettings<S>; overrides?: RawSettings<S> };

function embeddedLayers(options: StackSettingOptions): { common: Layers<typeof COMMON_SETTINGS>; executor: Layers<typeof EXECUTOR_SETTINGS> } {
  const ownServer = options.natsUrl === undefined;
  return {
    common: {
      overrides: {
        natsUrl: options.natsUrl,
        natsCreds: options.natsCreds,
        prefix: options.prefix,
        logLevel: options.logLevel,
        // The child nats-server is one node without users, whatever a deployment's environment says.
        ...(ownServer && { replicas: '1', provision: 'true', natsUser: '', natsPassword: '', natsCreds: '' }),
      },
    },
    executor: {
      // A developer's flows call services on this machine; the environment may still narrow or widen it.
      defaults: { httpAllow: LOCAL_HTTP_ALLOW.join(','), webhookAllow: LOCAL_HTTP_ALLOW.join(',') },
      overrides: {
        // One executor runs every queue: a flow on any queue must finish.
        queue: options.queue ?? '*',
        concurrency: options.concurrency?.toString(),
        shellEnabled: String(options.shellEnabled ?? true),
        httpAllow: options.httpAllow?.join(','),
        shutdownGraceMs: String(options.stepGraceMs ?? STEP_GRACE_MS),
      },
    },
  };
}

/**
 * The settings the embedded stack starts each service with: the same declarations, defaults and
 * checks as `taskstream <service>` and each service's main, under the stack's own choices
 * (embeddedLayers). An invalid one throws the SettingError naming it, before anything starts.
 */
export function stackSettings(options: StackSettingOptions): StackSettings {
  const env = options.env ?? {};
  const layers = embeddedLayers(options);
  return {
    common: readCommonEnv(layeredEnv(COMMON_SETTINGS, env, layers.common)),
    gateway: readSettings(GATEWAY_SETTINGS, env),
    planner: readSettings(PLANNER_SETTINGS, env),
    dispatcher: readSettings(DISPATCHER_SETTINGS, env),
    executor: readSettings(EXECUTOR_SETTINGS, layeredEnv(EXECUTOR_SETTINGS, env, layers.executor)),
    projector: readSettings(PROJECTOR_SETTINGS, env),
    scheduler: readSettings(SCHEDULER_SETTINGS, env),
  };
}
