import { startStack } from '../embedded.js';
import { stopOnInterrupt } from '../stopping.js';

export interface UpOptions {
  host: string;
  port: number;
  nats?: string;
  dataDir?: string;
  queue: string;
  concurrency: number;
  logLevel: string;
}

/** The embedded stack in the foreground until Ctrl-C or SIGTERM, which exit the process. */
export async function upCommand(options: UpOptions): Promise<void> {
  const interrupt = stopOnInterrupt();
  const stack = (interrupt.stack = await startStack({ ...options, natsUrl: options.nats, shellEnabled: true }));
  console.log(`Taskstream is up: gateway ${stack.gatewayUrl}`);
  console.log(`  NATS ${stack.natsUrl}${stack.nats ? ` (embedded, data in ${stack.nats.storeDir})` : ''}`);
  console.log(`  executor serving ${options.queue === '*' ? 'every queue' : `queue "${options.queue}"`}, shell steps on, bound to ${options.host}`);
  console.log('Press Ctrl-C to stop.');
}
