import { release, type QueueLimitsRecord } from '@taskstream/domain';
import { encodeJson, type KV } from '@taskstream/nats';

const MAX_CAS_ATTEMPTS = 50;

/**
 * Limit records in the `<prefix>_limits` bucket. Every change is compare-and-set on the entry's
 * revision and retried on conflict, so any number of dispatchers together never over-admit.
 */
export class LimitsStore {
  constructor(private readonly kv: KV) {}

  async read(queue: string): Promise<{ record: QueueLimitsRecord; revision: number }> {
    const entry = await this.kv.get(queue);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return { record: { holders: {} }, revision: 0 };
    return { record: entry.json<QueueLimitsRecord>(), revision: entry.revision };
  }

  /**
   * Applies `change` until it is written without conflict. `change` returning undefined writes
   * nothing and gives undefined; returning no `record` writes nothing and gives the result.
   */
  async update<T>(queue: string, change: (record: QueueLimitsRecord) => { record?: QueueLimitsRecord; result: T } | undefined): Promise<T | undefined> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const { record, revision } = await this.read(queue);
      const next = change(record);
      if (next === undefined) return undefined;
      if (next.record === undefined) return next.result;
      try {
        if (revision === 0) await this.kv.create(queue, encodeJson(next.record));
        else await this.kv.update(queue, encodeJson(next.record), revision);
        return next.result;
      } catch (error) {
        if (!/wrong last sequence|key exists/i.test((error as Error).message)) throw error;
        // Another dispatcher changed the record first: read it again and re-decide.
      }
    }
    throw new Error(`could not update the limits of queue "${queue}" after ${MAX_CAS_ATTEMPTS} conflicting attempts`);
  }

  /** Gives `holder`'s slot back in whichever queue holds it; true when one was released. */
  async release(queues: Iterable<string>, holder: string): Promise<boolean> {
    for (const queue of queues) {
      const released = await this.update(queue, (record) => {
        const next = release(record, holder);
        return next === record ? undefined : { record: next, result: true };
      });
      if (released) return true;
    }
    return false;
  }
}
