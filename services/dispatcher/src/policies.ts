import { DEFAULT_QUEUE_POLICY, type QueuePolicy } from '@taskstream/domain';
import type { KV } from '@taskstream/nats';

/** Queue policies kept current from the `<prefix>_queues` bucket by a watch. */
export class Policies {
  private readonly byQueue = new Map<string, QueuePolicy>();
  private stopped = false;

  private constructor(private readonly onChange: (queue: string) => void) {}

  static async open(kv: KV, onChange: (queue: string) => void): Promise<Policies> {
    const policies = new Policies(onChange);
    const watch = await kv.watch({ key: '>' });
    let ready!: () => void;
    const initialized = new Promise<void>((resolve) => (ready = resolve));
    (async () => {
      for await (const entry of watch) {
        if (policies.stopped) break;
        if (entry.operation === 'PUT') policies.byQueue.set(entry.key, entry.json<QueuePolicy>());
        else policies.byQueue.delete(entry.key);
        policies.onChange(entry.key);
        if (entry.delta === 0) ready();
      }
    })();
    // An empty bucket sends no initial entries.
    if ((await kv.status()).values === 0) ready();
    await Promise.race([initialized, new Promise((r) => setTimeout(r, 2_000))]);
    policies.watchHandle = watch;
    return policies;
  }

  private watchHandle: { stop(): void } | undefined;

  get(queue: string): QueuePolicy {
    return this.byQueue.get(queue) ?? DEFAULT_QUEUE_POLICY;
  }

  stop(): void {
    this.stopped = true;
    this.watchHandle?.stop();
  }
}
