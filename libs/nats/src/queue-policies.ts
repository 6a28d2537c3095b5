import type { JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { DEFAULT_QUEUE_POLICY, FlowDefinition, QueueName, type QueuePolicy } from '@taskstream/domain';
import type { z } from 'zod';
import { encodeJson } from './codec.js';
import { decodeRecord } from './records.js';
import type { Topology } from './topology.js';

/**
 * The queue policies bucket (`<prefix>_queues`): one key per queue, its policy (limits and task
 * defaults). The only module that reads or writes it: the gateway stores policies, the dispatcher
 * follows them by a watch. Records are checked when read; a corrupt one is reported, never trusted.
 */

/** What this bucket is, as docs/architecture.md's table of resources describes it. */
export const LAYOUT = {
  bucket: (topo: Topology) => topo.queuesBucket,
  kind: 'KV' as const,
  keys: '`<queue>`',
  value: 'queue policy',
  writers: ['gateway'],
  readers: ['dispatcher', 'gateway'],
};

/**
 * A stored policy: the shape a flow definition records its queue's policy with (the input bounds
 * left out, so a policy accepted under earlier bounds still reads back).
 */
export const QueuePolicyRecord = FlowDefinition.shape.queue_config.unwrap();
export type QueuePolicyRecord = z.infer<typeof QueuePolicyRecord>;

/** A stored record that is not a valid queue policy: never trusted, reported with its key. */
export class CorruptQueuePolicyError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    reason: string,
  ) {
    super(`the policy of queue "${key}" in bucket ${bucket} is corrupt (${reason}); put the queue's policy again to replace it, or delete it`);
    this.name = 'CorruptQueuePolicyError';
  }
}

/** A queue's key: its name, which is already a single KV token (letters, digits, "-", "_"). */
export function queuePolicyKey(queue: string): string {
  if (!QueueName.safeParse(queue).success) throw new Error(`invalid queue name ${JSON.stringify(queue.slice(0, 70))}: a queue name is letters, digits, "-" and "_", at most 64 characters`);
  return queue;
}

export function queueOfPolicyKey(key: string): string {
  return key;
}

/** Checks a stored record; reasons name fields and what is wrong with them. */
export function decodeQueuePolicy(bucket: string, key: string, data: Uint8Array): QueuePolicy {
  return decodeRecord(QueuePolicyRecord, bucket, key, data, (reason) => new CorruptQueuePolicyError(bucket, key, reason));
}

const isLive = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT' && entry.value.length > 0;

/** Queue policies: put, get, delete, list, and a live table kept current by a watch. */
export class QueuePolicyStore {
  constructor(
    private readonly kv: KV,
    readonly bucket: string,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<QueuePolicyStore> {
    return new QueuePolicyStore(await new Kvm(js).open(topo.queuesBucket), topo.queuesBucket);
  }

  /** Creates or replaces a queue's policy; a policy that would not read back is refused. */
  async put(queue: string, policy: QueuePolicy): Promise<void> {
    const key = queuePolicyKey(queue);
    const checked = QueuePolicyRecord.safeParse(policy);
    if (!checked.success) throw new Error(`the policy of queue "${queue}" is not a valid queue policy: ${checked.error.issues.map((issue) => issue.path.join('.') || 'policy').join(', ')}`);
    await this.kv.put(key, encodeJson(policy));
  }

  /** A queue's policy, or undefined when it has none. */
  async get(queue: string): Promise<QueuePolicy | undefined> {
    const key = queuePolicyKey(queue);
    const entry = await this.kv.get(key);
    return isLive(entry) ? decodeQueuePolicy(this.bucket, key, entry.value) : undefined;
  }

  async delete(queue: string): Promise<void> {
    await this.kv.delete(queuePolicyKey(queue));
  }

  /** Every queue with a policy, by name. */
  async list(): Promise<Array<{ queue: string; policy: QueuePolicy }>> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    const policies: Array<{ queue: string; policy: QueuePolicy }> = [];
    for (const key of keys.sort()) {
      const entry = await this.kv.get(key);
      if (isLive(entry)) policies.push({ queue: queueOfPolicyKey(key), policy: decodeQueuePolicy(this.bucket, key, entry.value) });
    }
    return policies;
  }

  /**
   * Every policy in memory, kept current by a watch; resolves once the stored ones are in (or after
   * two seconds). `onChange` hears of each queue whose policy was put or deleted.
   */
  async watch(onChange: (queue: string) => void, onCorrupt: (error: CorruptQueuePolicyError) => void = () => {}): Promise<QueuePolicyTable> {
    return QueuePolicyTable.start(this.kv, this.bucket, onChange, onCorrupt);
  }
}

/**
 * The policies of a bucket in memory, from a KV watch. A corrupt record is reported and leaves the
 * queue's last valid policy in place (its limits stay enforced); without one the queue has none.
 */
export class QueuePolicyTable {
  private readonly byQueue = new Map<string, QueuePolicy>();
  private stopped = false;
  private stopWatch: (() => void) | undefined;

  static async start(kv: KV, bucket: string, onChange: (queue: string) => void, onCorrupt: (error: CorruptQueuePolicyError) => void): Promise<QueuePolicyTable> {
    const table = new QueuePolicyTable();
    const watch = await kv.watch({ key: '>' });
    table.stopWatch = () => watch.stop();
    let ready!: () => void;
    const initialized = new Promise<void>((resolve) => (ready = resolve));
    void (async () => {
      for await (const entry of watch) {
        if (table.stopped) break;
        if (table.apply(bucket, entry, onCorrupt)) onChange(queueOfPolicyKey(entry.key));
        if (entry.delta === 0) ready();
      }
    })();
    // An empty bucket sends no initial entries.
    if ((await kv.status()).values === 0) ready();
    await Promise.race([initialized, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    return table;
  }

  /** Takes in one entry of the watch; false when it was corrupt and changed nothing. */
  private apply(bucket: string, entry: KvEntry, onCorrupt: (error: CorruptQueuePolicyError) => void): boolean {
    const queue = queueOfPolicyKey(entry.key);
    if (!isLive(entry)) {
      this.byQueue.delete(queue);
      return true;
    }
    try {
      this.byQueue.set(queue, decodeQueuePolicy(bucket, entry.key, entry.value));
      return true;
    } catch (error) {
      onCorrupt(error as CorruptQueuePolicyError);
      return false;
    }
  }

  /** The queue's policy; the default (no limits) when it has none. */
  get(queue: string): QueuePolicy {
    return this.byQueue.get(queue) ?? DEFAULT_QUEUE_POLICY;
  }

  stop(): void {
    this.stopped = true;
    this.stopWatch?.();
  }
}
