import {
  checkTopology,
  connectNats,
  Definitions,
  ensureTopology,
  patiently,
  jetstream,
  topology,
  type JetStreamClient,
  type JetStreamManager,
  type Logger,
  type NatsConnection,
  type Topology,
  type TopologyOptions,
} from '@taskstream/nats';
import { readCommonEnv } from './env.js';

/** A connected, topology-checked NATS handle for one service. */
export interface ServiceContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  topo: Topology;
  log: Logger;
}

export interface ContextOptions extends TopologyOptions {
  natsUrl: string | string[];
  name: string;
  log: Logger;
  /** Stack traces naming where a timed-out NATS request started (a debugging aid with a CPU cost). */
  asyncTraces?: boolean;
  /** The NATS user to connect as; by default TASKSTREAM_NATS_USER, none when that is unset. */
  user?: string;
  /** Its password; by default TASKSTREAM_NATS_PASSWORD. */
  password?: string;
  /**
   * Create or update every stream and bucket at start (the default), or only check that they exist
   * and fail naming what is missing: for NATS users not allowed to administer streams. By default
   * TASKSTREAM_PROVISION (true when unset).
   */
  provision?: boolean;
  /** Where the defaults above are read from (process.env unless given). */
  env?: NodeJS.ProcessEnv;
}

/**
 * A cluster that is starting or electing a JetStream leader answers API calls with timeouts for a
 * while: a service started then waits (up to a minute) instead of exiting.
 */
export async function createContext(options: ContextOptions): Promise<ServiceContext> {
  const access = natsAccess(options);
  const nc = await connectNats({
    servers: options.natsUrl,
    name: options.name,
    asyncTraces: options.asyncTraces ?? false,
    ...(access.user !== undefined && { user: access.user, pass: access.password ?? '' }),
  }).catch((error: unknown) => Promise.reject(isAuthorizationError(error) ? refused(error, access.user) : error));
  const topo = topology(options);
  try {
    const jsm = await patiently(() => (access.provision ? provisionTopology(nc, topo) : checkTopology(nc, topo)), 60_000);
    return { nc, js: jetstream(nc), jsm, topo, log: options.log };
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw access.provision && isPermissionViolation(error) ? notAllowedToProvision(error) : error;
  }
}

/** The user, password and provisioning choice of `options`, each from the environment when not given. */
function natsAccess(options: ContextOptions): { user?: string; password?: string; provision: boolean } {
  const defined = options.user !== undefined && options.password !== undefined && options.provision !== undefined;
  const env = defined ? undefined : readCommonEnv(options.env ?? process.env);
  const user = options.user ?? env?.natsUser;
  const password = options.password ?? env?.natsPassword;
  if (user === undefined && password !== undefined) throw new Error('TASKSTREAM_NATS_PASSWORD is set but TASKSTREAM_NATS_USER is not: set the NATS user too');
  return { user, password, provision: options.provision ?? env?.provision ?? true };
}

/**
 * Creates or updates every stream and bucket of `topo`, and the definitions object store (which
 * services that read it otherwise create on first use), as `taskstream provision` and services
 * started with TASKSTREAM_PROVISION=true do.
 */
async function provisionTopology(nc: NatsConnection, topo: Topology): Promise<JetStreamManager> {
  const jsm = await ensureTopology(nc, topo);
  await Definitions.open(jetstream(nc), topo);
  return jsm;
}

/** Whether `error`, or an error that caused it, is NATS refusing something: `pattern` matches its name or message. */
function causedBy(error: unknown, pattern: RegExp): boolean {
  for (let e = error as { name?: string; message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (pattern.test(e.name ?? '') || pattern.test(e.message ?? '')) return true;
  }
  return false;
}

const isPermissionViolation = (error: unknown) => causedBy(error, /^PermissionViolationError$|permissions violation/i);
const isAuthorizationError = (error: unknown) => causedBy(error, /^AuthorizationError$|authorization violation/i);

function refused(error: unknown, user: string | undefined): Error {
  const who = user === undefined ? 'a connection without a user (TASKSTREAM_NATS_USER is unset)' : `the user "${user}" with the password given`;
  return new Error(`NATS refused ${who}: set TASKSTREAM_NATS_USER and TASKSTREAM_NATS_PASSWORD to a user of the server's authorization`, { cause: error });
}

function notAllowedToProvision(error: unknown): Error {
  return new Error(
    `${(error as Error).message}: this NATS user may not create or update streams and buckets. ` +
      'Provision them once with `taskstream provision --nats <url>` as a user that may, and start services with TASKSTREAM_PROVISION=false so that they only check them.',
    { cause: error },
  );
}
