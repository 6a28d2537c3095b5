import type { QueueLimitsRecord } from '@taskstream/domain';
import type { Logger, QueueLimitsStore } from '@taskstream/nats';

/**
 * The limited queues' records as the limits bucket's watch last showed them: which queues have a
 * record (so a release knows where to look) and who holds their slots. Each change also wakes the
 * queue's gate, as another dispatcher's release may let a waiting task in.
 */
export class LimitsWatch {
  private readonly records = new Map<string, QueueLimitsRecord>();
  private stopWatch: (() => void) | undefined;

  static async start(limits: QueueLimitsStore, onChange: (queue: string) => void, log: Logger): Promise<LimitsWatch> {
    const watched = new LimitsWatch();
    const watch = await limits.watch(
      (queue, record) => {
        if (record) watched.records.set(queue, record);
        else watched.records.delete(queue);
        onChange(queue);
      },
      (error) => log.error({ err: error, bucket: error.bucket, key: error.key }, 'corrupt limits record; its queue admits nothing until it is deleted'),
    );
    watched.stopWatch = () => watch.stop();
    return watched;
  }

  /** Queues with a record. */
  get size(): number {
    return this.records.size;
  }

  queues(): string[] {
    return [...this.records.keys()];
  }

  /** The queue whose watched record has `holder` holding a slot, if any. */
  holding(holder: string): string | undefined {
    for (const [queue, record] of this.records) if (Object.hasOwn(record.holders, holder)) return queue;
    return undefined;
  }

  stop(): void {
    this.stopWatch?.();
  }
}
