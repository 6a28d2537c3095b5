import { readFileSync } from 'node:fs';
import {
  ArtifactStore,
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
import { readNatsAuth, type NatsAuth } from './env.js';
import { COMMON_SETTINGS, readSettings, SettingError } from './settings.js';

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
  /** How to authenticate; by default TASKSTREAM_NATS_USER and TASKSTREAM_NATS_PASSWORD, or TASKSTREAM_NATS_CREDS. */
  auth?: NatsAuth;
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
  const env = options.env ?? process.env;
  const auth = options.auth ?? readNatsAuth(env);
  const provision = options.provision ?? readSettings({ provision: COMMON_SETTINGS.provision }, env).provision;
  const nc = await connectNats({
    servers: options.natsUrl,
    name: options.name,
    asyncTraces: options.asyncTraces ?? false,
    ...(auth.user !== undefined && { user: auth.user, pass: auth.password ?? '' }),
    ...(auth.credsFile !== undefined && { creds: readCredsFile(auth.credsFile) }),
  }).catch((error: unknown) => Promise.reject(isAuthorizationError(error) ? refused(error, auth) : error));
  const topo = topology(options);
  try {
    const jsm = await patiently(() => (provision ? provisionTopology(nc, topo) : checkTopology(nc, topo)), 60_000);
    return { nc, js: jetstream(nc), jsm, topo, log: options.log };
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw provision && isPermissionViolation(error) ? notAllowedToProvision(error) : error;
  }
}

const CREDS = COMMON_SETTINGS.natsCreds.env;
// What `nsc generate creds` writes: a user JWT, then a user nkey seed, each between dashed lines.
const CREDS_FILE = /-{3,}BEGIN NATS USER JWT-{3,}\s+[\w-]+\.[\w-]+\.[\w-]+\s+-{3,}END NATS USER JWT-{3,}[\s\S]*-{3,}BEGIN USER NKEY SEED-{3,}\s+SU[A-Z2-7]+\s+-{3,}END USER NKEY SEED-{3,}/;

/** The credentials file's contents, checked here so a wrong path or file is told as such, not as NATS refusing us. */
function readCredsFile(path: string): Uint8Array {
  let contents: Buffer;
  try {
    contents = readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new SettingError(CREDS, `${CREDS} names ${path}, which cannot be read (${reason})`);
  }
  if (!CREDS_FILE.test(contents.toString('utf8'))) {
    throw new SettingError(CREDS, `${CREDS} names ${path}, which is not a NATS credentials file: it must hold a user JWT and a user nkey seed, each between dashed BEGIN and END lines, as \`nsc generate creds\` writes them`);
  }
  return contents;
}

/**
 * Creates or updates every stream and bucket of `topo`, and the definitions and artifacts object
 * stores (which services that read them otherwise create on first use), as `taskstream provision` and services
 * started with TASKSTREAM_PROVISION=true do.
 */
async function provisionTopology(nc: NatsConnection, topo: Topology): Promise<JetStreamManager> {
  const jsm = await ensureTopology(nc, topo);
  await Definitions.open(jetstream(nc), topo);
  await ArtifactStore.provision(jetstream(nc), jsm, topo);
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

function refused(error: unknown, auth: NatsAuth): Error {
  if (auth.credsFile !== undefined) {
    return new Error(`NATS refused the credentials in ${auth.credsFile} (${CREDS}): check that the file is this server's operator's, and that its user is neither expired nor revoked`, { cause: error });
  }
  const who = auth.user === undefined ? 'a connection without a user (TASKSTREAM_NATS_USER and TASKSTREAM_NATS_CREDS are unset)' : `the user "${auth.user}" with the password given`;
  return new Error(`NATS refused ${who}: set TASKSTREAM_NATS_USER and TASKSTREAM_NATS_PASSWORD to a user of the server's authorization, or TASKSTREAM_NATS_CREDS to a credentials file`, { cause: error });
}

function notAllowedToProvision(error: unknown): Error {
  return new Error(
    `${(error as Error).message}: this NATS user may not create or update streams and buckets. ` +
      'Provision them once with `taskstream provision --nats <url>` as a user that may, and start services with TASKSTREAM_PROVISION=false so that they only check them.',
    { cause: error },
  );
}
