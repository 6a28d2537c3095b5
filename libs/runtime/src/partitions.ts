import { decodeRecord, encodeJson, type KV, type Layout, type Logger } from '@taskstream/nats';
import { z } from 'zod';

/** The leases bucket, owned by this module: one lease per partition of a role, and one member key per live instance. */
export const LEASES_LAYOUT: Layout = {
  bucket: (topo) => topo.leasesBucket,
  kind: 'KV',
  keys: '`<role>.lease.<N>` → owner and expiry',
  value: '`<role>.member.<instance>` → heartbeat',
  writers: ['planner', 'projector'],
  readers: ['planner', 'projector'],
};

const LeaseRecord = z.object({ owner: z.string(), expires_ms: z.number() });
export type Lease = z.infer<typeof LeaseRecord>;
const MemberRecord = z.object({ at: z.number() });

export interface PartitionOwnerOptions {
  kv: KV;
  /** What is partitioned, e.g. "planner": one set of leases per role. */
  role: string;
  instanceId: string;
  partitions: number;
  /** How long a lease lasts without renewal; renewed every third of it. */
  leaseMs?: number;
  /** Starts processing partition `p`; resolves to the function that stops it. */
  start: (partition: number) => Promise<() => Promise<void>>;
  log: Logger;
}

/**
 * Removes every lease and member record, of every role: for a process that started the server
 * itself (the embedded stack), which no other instance can have reached yet. Its own earlier run,
 * ended without releasing (a kill, a crash), would otherwise keep every partition until the leases
 * ran out. Never call it on a server other processes use.
 */
export async function releaseEveryLease(kv: KV): Promise<number> {
  let released = 0;
  for await (const key of await kv.keys()) {
    await kv.delete(key);
    released++;
  }
  return released;
}

/** Partitions this instance should own: an even share of those held by live instances. */
export function fairShare(partitions: number, liveInstances: number): number {
  return Math.ceil(partitions / Math.max(1, liveInstances));
}

/**
 * Spreads a role's partitions over its live instances with leases in KV. A lease is taken and
 * renewed only by compare-and-set, so each partition has at most one owner; an owner that cannot
 * renew stops processing at once, and a partition whose owner died is taken over once its lease
 * expires. Instances announce themselves with member keys so each can aim for a fair share and
 * hand extra partitions back when others join.
 */
export class PartitionOwner {
  private readonly owned = new Map<number, { revision: number; stop: () => Promise<void> }>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private readonly leaseMs: number;

  constructor(private readonly options: PartitionOwnerOptions) {
    this.leaseMs = options.leaseMs ?? 10_000;
  }

  get partitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  private leaseKey(p: number) {
    return `${this.options.role}.lease.${p}`;
  }

  /** One KV key token: letters, digits, "-", "_" and "=" only. */
  private memberKey(id: string) {
    return `${this.options.role}.member.${id.replace(/[^-_=A-Za-z0-9]/g, '_')}`;
  }

  /**
   * Takes a first share of partitions and keeps renewing. A round that fails (JetStream busy
   * electing a leader after a node loss) is logged and tried again on the next round: a partition
   * without an owner is only ever a delay, never a reason for the instance to exit.
   */
  async start(): Promise<void> {
    const round = () => (this.ticking = this.tick().catch((error) => this.options.log.error({ err: error, role: this.options.role }, 'partition lease round failed; retrying')));
    await round();
    const loop = () => {
      if (this.stopped) return;
      this.timer = setTimeout(async () => {
        await round();
        loop();
      }, this.leaseMs / 3);
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    for (const p of [...this.owned.keys()]) await this.release(p);
    await this.options.kv.delete(this.memberKey(this.options.instanceId)).catch(() => undefined);
  }

  /** A corrupt lease or member record is reported and read as absent (expired), so it is taken over by compare-and-set. */
  private decoded<S extends z.ZodType>(schema: S, key: string, data: Uint8Array): z.output<S> | undefined {
    try {
      return decodeRecord(schema, 'leases', key, data);
    } catch (error) {
      this.options.log.error({ role: this.options.role, key, err: error }, 'corrupt lease record; treating it as expired');
      return undefined;
    }
  }

  private async liveMembers(now: number): Promise<number> {
    let live = 0;
    for await (const key of await this.options.kv.keys(`${this.options.role}.member.*`)) {
      const entry = await this.options.kv.get(key);
      if (entry && entry.operation === 'PUT' && entry.value.length > 0 && (this.decoded(MemberRecord, key, entry.value)?.at ?? 0) > now - this.leaseMs) live++;
    }
    return live;
  }

  private async release(p: number): Promise<void> {
    const held = this.owned.get(p);
    if (!held) return;
    this.owned.delete(p);
    await held.stop();
    // Hand over at once instead of letting the lease run out.
    await this.options.kv.update(this.leaseKey(p), encodeJson({ owner: '', expires_ms: 0 }), held.revision).catch(() => undefined);
    this.options.log.info({ role: this.options.role, partition: p }, 'released partition');
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const { kv, role, instanceId, partitions } = this.options;
    const now = Date.now();
    await kv.put(this.memberKey(instanceId), encodeJson({ at: now }));
    const target = fairShare(partitions, await this.liveMembers(now));

    for (const [p, held] of [...this.owned]) {
      try {
        held.revision = await kv.update(this.leaseKey(p), encodeJson({ owner: instanceId, expires_ms: now + this.leaseMs } satisfies Lease), held.revision);
      } catch {
        // Someone else holds it now (we were too slow to renew): stop processing at once.
        this.owned.delete(p);
        await held.stop();
        this.options.log.warn({ role, partition: p }, 'lost partition lease');
      }
    }
    while (this.owned.size > target) await this.release(Math.max(...this.owned.keys()));

    for (let i = 0; i < partitions && this.owned.size < target && !this.stopped; i++) {
      // Start from an instance-specific offset so instances do not all race for partition 0.
      const p = (i + hashOf(instanceId)) % partitions;
      if (this.owned.has(p)) continue;
      const entry = await kv.get(this.leaseKey(p));
      const lease = entry && entry.operation === 'PUT' && entry.value.length > 0 ? this.decoded(LeaseRecord, this.leaseKey(p), entry.value) : undefined;
      if (lease && lease.owner !== '' && lease.expires_ms > now && lease.owner !== instanceId) continue;
      const value = encodeJson({ owner: instanceId, expires_ms: now + this.leaseMs } satisfies Lease);
      let revision: number;
      try {
        revision = entry && entry.operation === 'PUT' ? await kv.update(this.leaseKey(p), value, entry.revision) : await kv.create(this.leaseKey(p), value);
      } catch {
        continue; // another instance took it first
      }
      try {
        this.owned.set(p, { revision, stop: await this.options.start(p) });
        this.options.log.info({ role, partition: p }, 'took partition');
      } catch (error) {
        await kv.update(this.leaseKey(p), encodeJson({ owner: '', expires_ms: 0 }), revision).catch(() => undefined);
        this.options.log.error({ err: error, role, partition: p }, 'could not start processing a partition; handed its lease back to retry');
      }
    }
  }
}

function hashOf(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) >>> 0;
  return hash;
}
