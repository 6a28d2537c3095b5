import type { JetStreamManager } from '@nats-io/jetstream';
import { Base64UrlPaddedCodec, type ObjectStore } from '@nats-io/obj';

/**
 * Removes an object and its metadata from an object store, leaving no deletion marker (the
 * store's own `delete` keeps one per object for good): for retention, where nothing watches the
 * store. The subjects are the object store's (chunks `$O.<bucket>.C.<nuid>`, metadata
 * `$O.<bucket>.M.<name, base64url>`). False when there was no such object.
 */
export async function purgeObject(jsm: JetStreamManager, store: ObjectStore, bucket: string, name: string): Promise<boolean> {
  const info = await store.info(name);
  if (info === null) return false;
  const stream = `OBJ_${bucket}`;
  // Chunks first: the metadata is how the object is found again after an interruption.
  await jsm.streams.purge(stream, { filter: `$O.${bucket}.C.${info.nuid}` });
  await jsm.streams.purge(stream, { filter: `$O.${bucket}.M.${Base64UrlPaddedCodec.encode(name)}` });
  return !info.deleted;
}
