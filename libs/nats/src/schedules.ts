import type { JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { SCHEDULE_LIMITS, ScheduleProgress, ScheduleRecord, ULID_PATTERN } from '@taskstream/domain';
import { encodeJson } from './codec.js';
import { decodeRecord, type Layout } from './records.js';
import type { Topology } from './topology.js';

/**
 * The schedules bucket (`<prefix>_schedules`): `s.<id>` holds a schedule, written by the gateway;
 * `p.<id>` its progress (which scheduled times were decided, and the runs started), written only
 * by compare-and-set by the schedulers. The only module that reads or writes it.
 */
export const SCHEDULES_LAYOUT: Layout = {
  bucket: (topo) => topo.schedulesBucket,
  kind: 'KV',
  keys: '`s.<id>` → schedule `{id, name, cron, timezone, flow or template, params, enabled, catchup, overlap, …}`; `p.<id>`',
  value: 'progress `{through, started, submitted, last_run, buffered, skipped}`',
  writers: ['gateway', 'scheduler'],
  readers: ['gateway', 'scheduler'],
};

/** Refused because the installation already has SCHEDULE_LIMITS.schedules schedules. */
export class TooManySchedulesError extends Error {
  constructor(readonly limit: number) {
    super(`there are already ${limit} schedules, the most one installation keeps; delete schedules no longer used`);
    this.name = 'TooManySchedulesError';
  }
}

const scheduleKey = (id: string) => `s.${id}`;
const progressKey = (id: string) => `p.${id}`;
const isLive = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT' && entry.value.length > 0;
const ATTEMPTS = 20;

/** A schedule and the revision it was read at. */
export interface StoredSchedule {
  schedule: ScheduleRecord;
  revision: number;
}

/** A change seen by a watch: a schedule stored, or (`schedule` undefined) removed. */
export interface ScheduleChange {
  id: string;
  schedule: ScheduleRecord | undefined;
}

export class ScheduleStore {
  constructor(
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<ScheduleStore> {
    return new ScheduleStore(await new Kvm(js).open(topo.schedulesBucket), topo.schedulesBucket);
  }

  /** Stores a new schedule; refused when the installation has SCHEDULE_LIMITS.schedules already. */
  async create(schedule: ScheduleRecord): Promise<void> {
    if ((await this.ids()).length >= SCHEDULE_LIMITS.schedules) throw new TooManySchedulesError(SCHEDULE_LIMITS.schedules);
    await this.kv.create(scheduleKey(schedule.id), encodeJson(ScheduleRecord.parse(schedule)));
  }

  async get(id: string): Promise<StoredSchedule | undefined> {
    if (!ULID_PATTERN.test(id)) return undefined;
    const key = scheduleKey(id);
    const entry = await this.kv.get(key);
    return isLive(entry) ? { schedule: decodeRecord(ScheduleRecord, this.bucket, key, entry.value), revision: entry.revision } : undefined;
  }

  /**
   * Changes a schedule by compare-and-set: `change` gets the stored record (again after a racing
   * write) and returns the new one. Undefined when there is no such schedule.
   */
  async update(id: string, change: (current: ScheduleRecord) => ScheduleRecord): Promise<ScheduleRecord | undefined> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const stored = await this.get(id);
      if (!stored) return undefined;
      const next = ScheduleRecord.parse(change(stored.schedule));
      try {
        await this.kv.update(scheduleKey(id), encodeJson(next), stored.revision);
        return next;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
    throw new Error(`schedule "${id}" is being changed by many requests at once; try again`);
  }

  /** Removes a schedule and its progress; false when there was none. */
  async delete(id: string): Promise<boolean> {
    const stored = await this.get(id);
    if (!stored) return false;
    await this.kv.purge(scheduleKey(id));
    await this.kv.purge(progressKey(id));
    return true;
  }

  /** Every schedule, oldest first (ids are time-ordered). */
  async list(): Promise<ScheduleRecord[]> {
    const out: ScheduleRecord[] = [];
    for (const id of (await this.ids()).sort()) {
      const stored = await this.get(id);
      if (stored) out.push(stored.schedule);
    }
    return out;
  }

  /** A schedule's progress and its revision (0 when it has none yet). */
  async progress(id: string): Promise<{ progress: ScheduleProgress | undefined; revision: number }> {
    const key = progressKey(id);
    const entry = await this.kv.get(key);
    if (isLive(entry)) return { progress: decodeRecord(ScheduleProgress, this.bucket, key, entry.value), revision: entry.revision };
    // A deleted or purged record leaves a marker: a new one is written over its revision.
    return { progress: undefined, revision: (entry as KvEntry | null)?.revision ?? 0 };
  }

  /**
   * Stores progress only if it is still at `revision` (0: none stored yet). False when another
   * scheduler wrote first: the caller reads it again and decides anew.
   */
  async writeProgress(id: string, progress: ScheduleProgress, revision: number): Promise<boolean> {
    const value = encodeJson(ScheduleProgress.parse(progress));
    try {
      if (revision === 0) await this.kv.create(progressKey(id), value);
      else await this.kv.update(progressKey(id), value, revision);
      return true;
    } catch (error) {
      if (isWrongLastSequence(error) || /exists/i.test((error as Error).message ?? '')) return false;
      throw error;
    }
  }

  /**
   * Every schedule, then every change, until stopped; `ready` once the schedules stored at the
   * start have been seen. A corrupt record is reported to `corrupt` and skipped.
   */
  async watch(onChange: (change: ScheduleChange) => void, ready: () => void, corrupt: (error: Error) => void): Promise<() => void> {
    const watch = await this.kv.watch({ key: 's.>' });
    let isReady = false;
    const readyOnce = () => {
      if (isReady) return;
      isReady = true;
      ready();
    };
    void (async () => {
      for await (const entry of watch) {
        const id = entry.key.slice(2);
        if (isLive(entry)) {
          try {
            onChange({ id, schedule: decodeRecord(ScheduleRecord, this.bucket, entry.key, entry.value) });
          } catch (error) {
            corrupt(error as Error);
          }
        } else onChange({ id, schedule: undefined });
        if (entry.delta === 0) readyOnce();
      }
    })();
    if ((await this.ids()).length === 0) readyOnce();
    return () => watch.stop();
  }

  private async ids(): Promise<string[]> {
    const ids: string[] = [];
    for await (const key of await this.kv.keys('s.*')) ids.push(key.slice(2));
    return ids;
  }
}

function isWrongLastSequence(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: string };
  return code === 10071 || /wrong last sequence/i.test(message ?? '');
}
