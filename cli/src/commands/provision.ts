import { NatsUnreachableError, silentLogger, type Topology } from '@taskstream/nats';
import { COMMON_SETTINGS, createContext, flagsAsEnv, readSettings, SettingError, type Settings } from '@taskstream/runtime';
import { UserError } from '../user-error.js';

/** The shared settings `taskstream provision` takes as flags, with the same variables, defaults and checks as a service. */
export const PROVISION_FLAGS = {
  natsUrl: COMMON_SETTINGS.natsUrl,
  natsCreds: COMMON_SETTINGS.natsCreds,
  prefix: COMMON_SETTINGS.prefix,
  replicas: COMMON_SETTINGS.replicas,
} satisfies Settings;

export interface ProvisionOptions {
  nats?: string;
  natsCreds?: string;
  prefix?: string;
  /** Stream and bucket replicas, as text from the command line: 1, or 3 on a three-node cluster. */
  replicas?: string;
  /** The NATS user (else TASKSTREAM_NATS_USER); its password is read from TASKSTREAM_NATS_PASSWORD only. */
  user?: string;
}

/**
 * `taskstream provision`: creates or updates every stream, key-value bucket and object store of an
 * installation, as a NATS user allowed to administer streams, so that the services can run under
 * users that may not (TASKSTREAM_PROVISION=false: they only check that all of it exists). Safe to run
 * again: an existing stream or bucket is updated to the configuration the services expect.
 */
export async function provisionCommand(options: ProvisionOptions): Promise<void> {
  const env = { ...process.env, ...flagsAsEnv(PROVISION_FLAGS, { ...options }), ...(options.user !== undefined && { TASKSTREAM_NATS_USER: options.user }) };
  const settings = readSettings(PROVISION_FLAGS, env);
  let ctx;
  try {
    ctx = await createContext({ natsUrl: settings.natsUrl.split(','), name: 'taskstream-provision', log: silentLogger, prefix: settings.prefix, replicas: settings.replicas, provision: true, env });
  } catch (error) {
    if (error instanceof NatsUnreachableError || error instanceof SettingError) throw error;
    throw new UserError((error as Error).message, 'provision as the NATS user allowed to administer streams (the provisioner): TASKSTREAM_NATS_USER and TASKSTREAM_NATS_PASSWORD, --user, or --nats-creds', 3);
  }
  try {
    for (const line of provisioned(ctx.topo)) console.log(line);
  } finally {
    await ctx.nc.close().catch(() => undefined);
  }
}

function provisioned(topo: Topology): string[] {
  const buckets = [topo.flowsBucket, topo.summariesBucket, topo.idempotencyBucket, topo.leasesBucket, topo.queuesBucket, topo.limitsBucket, topo.secretsBucket, topo.apiKeysBucket, topo.templatesBucket, topo.triggersBucket, topo.schedulesBucket, topo.signalWaitsBucket];
  return [
    `streams: ${[topo.eventsStream, topo.workStream, topo.timersStream, topo.signalsStream, topo.dlqStream].join(', ')}`,
    `key-value buckets: ${buckets.join(', ')}`,
    `object stores: ${topo.definitionsBucket}, ${topo.artifactsBucket}`,
    `provisioned with ${topo.replicas} replica${topo.replicas === 1 ? '' : 's'}; services may now start with TASKSTREAM_PROVISION=false`,
  ];
}
