import { startStack } from '../embedded.js';
import { stopOnInterrupt } from '../stopping.js';
import { httpAllowOf } from './service.js';

export interface UpOptions {
  host: string;
  port: number;
  nats?: string;
  /** With `nats`: the NATS credentials file to connect with. */
  natsCreds?: string;
  dataDir?: string;
  queue: string;
  concurrency?: number;
  logLevel: string;
  /** Require API keys; creates an admin key when the stack has no usable one. */
  auth?: boolean;
  /** CIDRs and host names http steps may reach besides public addresses, comma-separated. */
  httpAllow?: string;
}

/** The embedded stack in the foreground until Ctrl-C or SIGTERM, which exit the process. */
export async function upCommand(options: UpOptions): Promise<void> {
  const interrupt = stopOnInterrupt();
  const allowUnauthenticated = /^(1|true|yes|on)$/i.test(process.env.TASKSTREAM_ALLOW_UNAUTHENTICATED ?? '');
  const { httpAllow, nats, ...rest } = options;
  const stack = (interrupt.stack = await startStack({
    ...rest,
    auth: options.auth === true,
    allowUnauthenticated,
    natsUrl: nats,
    shellEnabled: true,
    ...(httpAllow !== undefined && { httpAllow: httpAllowOf(httpAllow) }),
    env: process.env,
  }));
  console.log(`Taskstream is up: gateway ${stack.gatewayUrl}`);
  console.log(`  web UI ${stack.gatewayUrl}/ui/${options.auth ? ' (sign in with an API key)' : ''}`);
  console.log(`  metrics ${stack.metricsUrl} (Prometheus text format, no key needed)`);
  console.log(`  NATS ${stack.natsUrl}${stack.nats ? ` (embedded, data in ${stack.nats.storeDir})` : ''}`);
  console.log(`  executor serving ${options.queue === '*' ? 'every queue' : `queue "${options.queue}"`}, shell steps on, bound to ${options.host}`);
  if (options.auth) {
    console.log('  API keys required (send Authorization: Bearer ts_…, or set TASKSTREAM_API_KEY for the CLI)');
    if (stack.adminKey) {
      console.log('  created an admin key, shown only this once:');
      console.log(`admin key: ${stack.adminKey}`);
    } else {
      console.log(`  using the keys already stored; to add one: taskstream keys create --scope admin --name NAME --nats ${stack.natsUrl}`);
    }
  }
  console.log('Press Ctrl-C to stop.');
}
