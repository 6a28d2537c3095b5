import type { JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { QueueName, release, type QueueLimitsRecord } from '@taskstream/domain';
import { z } from 'zod';
import { encodeJson } from './codec.js';
import { decodeRecord } from './records.js';
import type { Topology } from './topology.js';

/**
 * The queue limits bucket (`<prefix>_limits`): one record per limited queue, its token bucket and
 * the tasks holding its concurrency slots. The only module that reads or writes it. Every change is
 * compare-and-set on the entry's revision, retried on conflict, so any number of dispatchers
 * together never over-admit. Records are checked when read; a corrupt one is reported, never trusted.
 */

/** What this bucket is, as docs/architecture.md's table of resources describes it. */
export const LAYOUT = {
  bucket: (topo: Topology) => topo.limitsBucket,
  kind: 'KV' as const,
  keys: '`<queue>`',
  value: 'token bucket + concurrency slot holders',
  writers: ['dispatcher'],
  readers: ['dispatcher', 'gateway'],
};

/** A stored limits record (the domain's `QueueLimitsRecord`): holder key `<flow id>:<task id>` -> concurrency key or "". */
export const QueueLimitsSchema = z.strictObject({
  bucket: z.strictObject({ tokens: z.number(), at_ms: z.number() }).optional(),
  holders: z.record(z.string(), z.string()),
}) satisfies z.ZodType<QueueLimitsRecord>;

/** A stored record that is not a valid limits record: never trusted, reported with its key. */
export class CorruptQueueLimitsError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    reason: string,
  ) {
    super(`the limits record of queue "${key}" in bucket ${bucket} is corrupt (${reason}); delete it to start the queue's limits afresh`);
    this.name = 'CorruptQueueLimitsError';
  }
}

/** A queue's key: its name, which is already a single KV token (letters, digits, "-", "_"). */
export function queueLimitsKey(queue: string): string {
  if (!QueueName.safeParse(queue).success) throw new Error(`invalid queue name ${JSON.stringify(queue.slice(0, 70))}: a queue name is letters, digits, "-" and "_", at most 64 characters`);
  return queue;
}

export function queueOfLimitsKey(key: string): string {
  return key;
}

/** Checks a stored record; reasons name fields and what is wrong with them. */
export function decodeQueueLimits(bucket: string, key: string, data: Uint8Array): QueueLimitsRecord {
  return decodeRecord(QueueLimitsSchema, bucket, key, data, (reason) => new CorruptQueueLimitsError(bucket, key, reason));
}

const isLive = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT' && entry.value.length > 0;

function isConflict(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: string };
  return code === 10071 || /wrong last sequence|key exists/i.test(message ?? '');
}

const MAX_CAS_ATTEMPTS = 50;

/** What `update` does with a record: write `record` (if any) and give `result`; undefined writes nothing and gives undefined. */
export type LimitsChange<T> = (record: QueueLimitsRecord) => { record?: QueueLimitsRecord; result: T } | undefined;

/** Queue limits: read, compare-and-set update, release of a slot, and a watch. */
export class QueueLimitsStore {
  constructor(
    private readonly kv: KV,
    readonly bucket: string,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<QueueLimitsStore> {
    return new QueueLimitsStore(await new Kvm(js).open(topo.limitsBucket), topo.limitsBucket);
  }

  /** A queue's record and its revision; an empty record at revision 0 when it has none. */
  async read(queue: string): Promise<{ record: QueueLimitsRecord; revision: number }> {
    const key = queueLimitsKey(queue);
    const entry = await this.kv.get(key);
    if (!isLive(entry)) return { record: { holders: {} }, revision: 0 };
    return { record: decodeQueueLimits(this.bucket, key, entry.value), revision: entry.revision };
  }

  /**
   * Applies `change` until it is written without conflict. `change` returning undefined writes
   * nothing and gives undefined; returning no `record` writes nothing and gives the result.
   */
  async update<T>(queue: string, change: LimitsChange<T>): Promise<T | undefined> {
    const key = queueLimitsKey(queue);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const { record, revision } = await this.read(queue);
      const next = change(record);
      if (next === undefined) return undefined;
      if (next.record === undefined) return next.result;
      try {
        if (revision === 0) await this.kv.create(key, encodeJson(next.record));
        else await this.kv.update(key, encodeJson(next.record), revision);
        return next.result;
      } catch (error) {
        if (!isConflict(error)) throw error;
        // Another dispatcher changed the record first: read it again and re-decide.
      }
    }
    throw new Error(`could not update the limits of queue "${queue}" after ${MAX_CAS_ATTEMPTS} conflicting attempts`);
  }

  /** Gives `holder`'s slot back in whichever of `queues` holds it (tried in order); true when one was released. */
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

  /**
   * Follows every record: `onChange` hears each queue's record as it is stored, undefined once it is
   * deleted. A corrupt record goes to `onCorrupt` and then counts as absent.
   */
  async watch(onChange: (queue: string, record: QueueLimitsRecord | undefined) => void, onCorrupt: (error: CorruptQueueLimitsError) => void = () => {}): Promise<{ stop(): void }> {
    const watch = await this.kv.watch({ key: '>' });
    void (async () => {
      for await (const entry of watch) {
        const queue = queueOfLimitsKey(entry.key);
        let record: QueueLimitsRecord | undefined;
        try {
          record = isLive(entry) ? decodeQueueLimits(this.bucket, entry.key, entry.value) : undefined;
        } catch (error) {
          onCorrupt(error as CorruptQueueLimitsError);
        }
        onChange(queue, record);
      }
    })();
    return { stop: () => watch.stop() };
  }
}
