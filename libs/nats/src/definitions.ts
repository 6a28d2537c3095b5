import { createHash } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { StorageType } from '@nats-io/jetstream';
import type { DefinitionRef, FlowDefinition, FlowEvent, Lineage } from '@taskstream/domain';
import type { Topology } from './topology.js';
import type { Layout } from './records.js';

interface StoredDefinition {
  definition: FlowDefinition;
  lineage?: Lineage;
}

const CACHED = 64;

export const DEFINITIONS_LAYOUT: Layout = {
  bucket: (topo) => topo.definitionsBucket,
  kind: 'object store',
  keys: '`<flow_id>` → `{definition, lineage?}`',
  value: 'chunked by the object store',
  writers: ['gateway'],
  readers: ['planner', 'projector', 'gateway'],
};

/**
 * The definitions object store: large flow definitions are kept here once, chunked by the object
 * store, instead of riding in a `flow.submitted` that could not fit in a message. The owner of the
 * bucket; everything that folds a submission hydrates it through `hydrate`.
 */
export class Definitions {
  private readonly cache = new Map<string, StoredDefinition>();

  private constructor(
    private readonly store: ObjectStore,
    private readonly bucket: string,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<Definitions> {
    const objm = new Objm(js);
    return new Definitions(await objm.create(topo.definitionsBucket, { replicas: topo.replicas, storage: StorageType.File }), topo.definitionsBucket);
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
    let stored = this.cache.get(ref.sha256);
    if (stored === undefined) {
      const bytes = await this.store.getBlob(ref.object);
      if (bytes === null) throw new Error(`the definition of flow ${event.flow_id} is missing from the definitions store (object "${ref.object}"); restore the ${this.bucket} object store from the backup taken with the event stream`);
      if (sha256(bytes) !== ref.sha256) throw new Error(`the stored definition of flow ${event.flow_id} does not match the digest its submission recorded (object "${ref.object}" in ${this.bucket} was changed); restore it from the backup taken with the event stream`);
      stored = JSON.parse(new TextDecoder().decode(bytes)) as StoredDefinition;
      this.cache.set(ref.sha256, stored);
      if (this.cache.size > CACHED) this.cache.delete(this.cache.keys().next().value!);
    }
    const { definition_ref: _ref, ...data } = event.data;
    return { ...event, data: { ...data, definition: stored.definition, ...(stored.lineage && { lineage: stored.lineage }) } };
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
