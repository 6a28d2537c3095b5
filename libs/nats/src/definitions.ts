import { createHash } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { StorageType } from '@nats-io/jetstream';
import type { DefinitionRef, FlowDefinition, FlowEvent, Lineage } from '@taskstream/domain';
import type { Topology } from './topology.js';
import type { Layout } from './records.js';
import { purgeObject } from './object-purge.js';

interface StoredDefinition {
  definition: FlowDefinition;
  lineage?: Lineage;
}

/**
 * Definitions kept parsed, by the bytes they were stored in: a definition is needed again by every
 * refold of its flow, but a count bound (64, before) let 64 of the largest (10,000 tasks, 2 MiB
 * each, several times that parsed) hold hundreds of MiB in every service that folds. Services
 * release a flow's definition when they stop holding the flow, so a finished flow's stays only
 * where nothing says so (the gateway's reads), within this bound.
 */
export const DEFINITION_CACHE_BYTES = 32 * 1024 * 1024;

export const DEFINITIONS_LAYOUT: Layout = {
  bucket: (topo) => topo.definitionsBucket,
  kind: 'object store',
  keys: '`<flow_id>` → `{definition, lineage?}`',
  value: 'chunked by the object store',
  writers: ['gateway', 'scheduler', 'planner'],
  readers: ['planner', 'projector', 'gateway', 'executor'],
};

/**
 * The definitions object store: large flow definitions are kept here once, chunked by the object
 * store, instead of riding in a `flow.submitted` that could not fit in a message. The owner of the
 * bucket; everything that folds a submission hydrates it through `hydrate`.
 */
export class Definitions {
  /**
   * Parsed definitions by object (the flow they were stored for), least recently used first, with
   * their digest and the bytes they were stored in.
   */
  private readonly cache = new Map<string, { stored: StoredDefinition; sha256: string; bytes: number }>();
  private cachedBytes = 0;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly store: ObjectStore,
    private readonly bucket: string,
    private readonly cacheBytes: number,
  ) {}

  static async open(js: JetStreamClient, topo: Topology, options: { cacheBytes?: number } = {}): Promise<Definitions> {
    const objm = new Objm(js);
    const store = await objm.create(topo.definitionsBucket, { replicas: topo.replicas, storage: StorageType.File });
    return new Definitions(js, store, topo.definitionsBucket, options.cacheBytes ?? DEFINITION_CACHE_BYTES);
  }

  /** Stores a definition before its submission is appended, so no event names a missing object. */
  async offload(flowId: string, stored: StoredDefinition): Promise<DefinitionRef> {
    const bytes = new TextEncoder().encode(JSON.stringify(stored));
    await this.store.putBlob({ name: flowId }, bytes);
    return { object: flowId, bytes: bytes.length, sha256: sha256(bytes), tasks: stored.definition.tasks.length };
  }

  /** The event with its stored definition put back; any other event as it is. */
  async hydrate(event: FlowEvent): Promise<FlowEvent> {
    if (event.type !== 'flow.submitted' || event.data.definition_ref === undefined) return event;
    const ref = event.data.definition_ref;
    const stored = this.cached(ref) ?? (await this.read(event.flow_id, ref));
    const { definition_ref: _ref, ...data } = event.data;
    return { ...event, data: { ...data, definition: stored.definition, ...(stored.lineage && { lineage: stored.lineage }) } };
  }

  /**
   * Forgets the definition stored for `flowId` (objects are named by flow), when the caller no
   * longer holds the flow: it ended, or left memory. A later hydration reads it again.
   */
  release(flowId: string): void {
    const entry = this.cache.get(flowId);
    if (entry === undefined) return;
    this.cache.delete(flowId);
    this.cachedBytes -= entry.bytes;
  }

  /** Removes the definition stored for `flowId`, if one was (retention), leaving nothing behind. */
  async remove(flowId: string): Promise<void> {
    this.release(flowId);
    await purgeObject(await this.js.jetstreamManager(), this.store, this.bucket, flowId);
  }

  private cached(ref: DefinitionRef): StoredDefinition | undefined {
    const entry = this.cache.get(ref.object);
    if (entry?.sha256 !== ref.sha256) return undefined;
    this.cache.delete(ref.object);
    this.cache.set(ref.object, entry);
    return entry.stored;
  }

  private async read(flowId: string, ref: DefinitionRef): Promise<StoredDefinition> {
    const bytes = await this.store.getBlob(ref.object);
    if (bytes === null) throw new Error(`the definition of flow ${flowId} is missing from the definitions store (object "${ref.object}"); restore the ${this.bucket} object store from the backup taken with the event stream`);
    if (sha256(bytes) !== ref.sha256) throw new Error(`the stored definition of flow ${flowId} does not match the digest its submission recorded (object "${ref.object}" in ${this.bucket} was changed); restore it from the backup taken with the event stream`);
    const stored = JSON.parse(new TextDecoder().decode(bytes)) as StoredDefinition;
    if (bytes.length <= this.cacheBytes) {
      this.release(ref.object);
      this.cache.set(ref.object, { stored, sha256: ref.sha256, bytes: bytes.length });
      this.cachedBytes += bytes.length;
      for (const [object, entry] of this.cache) {
        if (this.cachedBytes <= this.cacheBytes) break;
        this.cache.delete(object);
        this.cachedBytes -= entry.bytes;
      }
    }
    return stored;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const opened = new WeakMap<JetStreamClient, Promise<Definitions>>();

/** One store handle per connection, opened on first use. */
export function definitionsOf(js: JetStreamClient, topo: Topology): Promise<Definitions> {
  let definitions = opened.get(js);
  if (definitions === undefined) {
    definitions = Definitions.open(js, topo);
    definitions.catch(() => opened.delete(js));
    opened.set(js, definitions);
  }
  return definitions;
}
