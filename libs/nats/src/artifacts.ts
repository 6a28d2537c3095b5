import { StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Objm, type ObjectInfo, type ObjectStore } from '@nats-io/obj';
import { eventSubject } from '@taskstream/domain';
import { readEvents, readEventsDirect } from './history.js';
import { purgeObject } from './object-purge.js';
import type { Layout } from './records.js';
import type { Topology } from './topology.js';

export const ARTIFACTS_LAYOUT: Layout = {
  bucket: (topo) => topo.artifactsBucket,
  kind: 'object store',
  keys: '`<flow_id>/<task_id, percent-encoded>/<attempt>/<name>`',
  value: 'a file a shell step left in its artifacts directory, recorded by `task.artifact_stored` with its size and SHA-256; chunked by the object store',
  writers: ['executor'],
  readers: ['executor', 'gateway'],
};

/** A stored object: its name, size and SHA-256 (hex). */
export interface StoredArtifact {
  object: string;
  bytes: number;
  sha256: string;
}

/** The object store did not answer or refused the request: never the step's or the user's fault. */
export class ArtifactStoreError extends Error {
  override name = 'ArtifactStoreError';
}

/**
 * The artifacts object store: the files shell steps leave in their artifacts directory, one
 * immutable object per attempt and file (see artifactObjectName), named by the task.artifact_stored
 * events that record them. The owner of the bucket: nothing else reads or writes it.
 *
 * Retention follows the event log's: the store has the max age of the events stream (none by
 * default, so both are kept), given when it is provisioned.
 */
export class ArtifactStore {
  private constructor(
    private readonly store: ObjectStore,
    private readonly js: JetStreamClient,
    private readonly topo: Topology,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<ArtifactStore> {
    const objm = new Objm(js);
    return new ArtifactStore(await objm.create(topo.artifactsBucket, { replicas: topo.replicas, storage: StorageType.File }), js, topo);
  }

  /**
   * Creates the store, or brings its max age to the events stream's: objects live as long as the
   * events that name them. For `taskstream provision` and services that provision.
   */
  static async provision(js: JetStreamClient, jsm: JetStreamManager, topo: Topology): Promise<ArtifactStore> {
    const maxAge = (await jsm.streams.info(topo.eventsStream)).config.max_age ?? 0;
    const objm = new Objm(js);
    const store = await objm.create(topo.artifactsBucket, { replicas: topo.replicas, storage: StorageType.File, ttl: maxAge });
    const stream = `OBJ_${topo.artifactsBucket}`;
    const info = await jsm.streams.info(stream);
    if ((info.config.max_age ?? 0) !== maxAge) await jsm.streams.update(stream, { ...info.config, max_age: maxAge });
    return new ArtifactStore(store, js, topo);
  }

  /** Stores `data` under `object`, read to its end; a store failure leaves no partial object. */
  async put(object: string, data: ReadableStream<Uint8Array>): Promise<StoredArtifact> {
    try {
      return stored(await this.store.put({ name: object }, data));
    } catch (error) {
      throw new ArtifactStoreError(`could not store artifact object "${object}" in ${this.topo.artifactsBucket}: ${(error as Error).message}`);
    }
  }

  /** The object and its content as a stream (checked against its digest as it is read), or null when it does not exist. */
  async get(object: string): Promise<(StoredArtifact & { data: ReadableStream<Uint8Array> }) | null> {
    try {
      const found = await this.store.get(object);
      if (found === null) return null;
      // The read's own failure surfaces through the stream; its promise must not reject unobserved.
      found.error.catch(() => undefined);
      return { ...stored(found.info), data: found.data };
    } catch (error) {
      throw new ArtifactStoreError(`could not read artifact object "${object}" from ${this.topo.artifactsBucket}: ${(error as Error).message}`);
    }
  }

  /** The object's size and digest, or null when it does not exist. */
  async info(object: string): Promise<StoredArtifact | null> {
    const info = await this.store.info(object);
    return info === null || info.deleted ? null : stored(info);
  }

  /** The objects the flow's task.artifact_stored events name, read from the log (every attempt's). */
  async objectsOf(flowId: string): Promise<StoredArtifact[]> {
    const events = await readEvents(this.js, this.topo.eventsStream, eventSubject(this.topo.layout, flowId, 'task.artifact_stored'));
    const objects = new Map<string, StoredArtifact>();
    for (const stored of events) {
      if (!('event' in stored) || stored.event.type !== 'task.artifact_stored') continue;
      const { object, bytes, sha256 } = stored.event.data;
      objects.set(object, { object, bytes, sha256 });
    }
    return [...objects.values()];
  }

  /**
   * Removes every object the flow's events name, leaving nothing behind (retention; the flow's
   * events must still be in the log). An upload whose event was never stored (its executor died
   * between the two) is not named, and stays.
   */
  async removeFlow(flowId: string): Promise<number> {
    const events = await readEventsDirect(this.js, this.topo.eventsStream, eventSubject(this.topo.layout, flowId, 'task.artifact_stored'), 0);
    const names = new Set(events.flatMap((stored) => ('event' in stored && stored.event.type === 'task.artifact_stored' ? [stored.event.data.object] : [])));
    if (names.size === 0) return 0;
    const jsm = await this.js.jetstreamManager();
    let removed = 0;
    for (const name of names) if (await purgeObject(jsm, this.store, this.topo.artifactsBucket, name)) removed++;
    return removed;
  }
}

/** An object's size and its digest as hex (the store keeps `SHA-256=<base64url>`). */
function stored(info: ObjectInfo): StoredArtifact {
  const digest = info.digest.startsWith('SHA-256=') ? Buffer.from(info.digest.slice('SHA-256='.length), 'base64url').toString('hex') : '';
  return { object: info.name, bytes: info.size, sha256: digest };
}
