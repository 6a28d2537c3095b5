import { startStack } from '../embedded.js';

export interface UpOptions {
  host: string;
  port: number;
  nats?: string;
  dataDir?: string;
  queue: string;
  concurrency: number;
  logLevel: string;
}

/** The embedded stack in the foreground until Ctrl-C. */
export async function upCommand(options: UpOptions): Promise<void> {
  const stack = await startStack({ ...options, natsUrl: options.nats, shellEnabled: true });
  console.log(`Taskstream is up: gateway ${stack.gatewayUrl}`);
  console.log(`  NATS ${stack.natsUrl}${stack.nats ? ` (embedded, data in ${stack.nats.storeDir})` : ''}`);
  console.log(`  executor serving ${options.queue === '*' ? 'every queue' : `queue "${options.queue}"`}, shell steps on, bound to ${options.host}`);
  console.log('Press Ctrl-C to stop.');
  await new Promise<void>((resolve) => {
    const stop = () => {
      console.log('\nStopping...');
      void stack.stop().then(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
