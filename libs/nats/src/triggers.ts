import type { JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { MAX_TRIGGERS, StoredTrigger, TriggerName, TRIGGER_NAME_RULE, type TriggerBody } from '@taskstream/domain';
import { encodeJson } from './codec.js';
import { decodeRecord, type Layout } from './records.js';
import type { Topology } from './topology.js';

/**
 * The triggers bucket (`<prefix>_triggers`): one key per webhook trigger, its definition. A trigger
 * names the secret its deliveries are verified with, never holds its value. The only module that
 * reads or writes it.
 */
export const TRIGGERS_LAYOUT: Layout = {
  bucket: (topo) => topo.triggersBucket,
  kind: 'KV',
  keys: '`<name>` → `{name, template, version?, params, verify: {scheme, secret?, header?, tolerance_secs?}, description?, created_at, updated_at}`',
  value: 'a secret\'s name, never its value',
  writers: ['gateway'],
  readers: ['gateway'],
};

/** Refused because the installation already has MAX_TRIGGERS triggers. */
export class TooManyTriggersError extends Error {
  constructor(readonly limit: number) {
    super(`there are already ${limit} triggers, the most one installation keeps; delete triggers no longer used`);
    this.name = 'TooManyTriggersError';
  }
}

const isLive = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT' && entry.value.length > 0;

function checkName(name: string): void {
  if (!TriggerName.safeParse(name).success) throw new Error(`invalid trigger name ${JSON.stringify(name.slice(0, 70))}: a trigger name is ${TRIGGER_NAME_RULE}`);
}

export class TriggerStore {
  constructor(
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<TriggerStore> {
    return new TriggerStore(await new Kvm(js).open(topo.triggersBucket), topo.triggersBucket);
  }

  /** Creates or replaces a trigger (validated by the caller); `created` tells which. */
  async put(name: string, body: TriggerBody, now: Date = new Date()): Promise<{ trigger: StoredTrigger; created: boolean }> {
    checkName(name);
    const existing = await this.get(name);
    if (!existing && (await this.names()).length >= MAX_TRIGGERS) throw new TooManyTriggersError(MAX_TRIGGERS);
    const trigger: StoredTrigger = {
      name,
      template: body.template,
      ...(body.version !== undefined && { version: body.version }),
      params: body.params,
      verify: body.verify,
      ...(body.description !== undefined && { description: body.description }),
      created_at: existing?.created_at ?? now.toISOString(),
      updated_at: now.toISOString(),
    };
    await this.kv.put(name, encodeJson(trigger));
    return { trigger, created: existing === undefined };
  }

  async get(name: string): Promise<StoredTrigger | undefined> {
    checkName(name);
    const entry = await this.kv.get(name);
    return isLive(entry) ? decodeRecord(StoredTrigger, this.bucket, name, entry.value) : undefined;
  }

  /** Every trigger, by name (at most MAX_TRIGGERS). */
  async list(): Promise<StoredTrigger[]> {
    const out: StoredTrigger[] = [];
    for (const name of (await this.names()).sort()) {
      const trigger = await this.get(name);
      if (trigger) out.push(trigger);
    }
    return out;
  }

  /** Removes a trigger; false when there was none. */
  async delete(name: string): Promise<boolean> {
    checkName(name);
    if (!isLive(await this.kv.get(name))) return false;
    await this.kv.purge(name);
    return true;
  }

  private async names(): Promise<string[]> {
    const names: string[] = [];
    for await (const key of await this.kv.keys()) names.push(key);
    return names;
  }
}
