import { createHash } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { artifactObjectName, EVENT_VERSION, eventSubject } from '@taskstream/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Objm } from '@nats-io/obj';
import { ArtifactStore } from '../src/artifacts.js';
import { purgeObject } from '../src/object-purge.js';
import { connectNats, type NatsConnection } from '../src/connection.js';
import { encodeJson } from '../src/codec.js';
import { NatsServer } from '@taskstream/testing';
import { ensureTopology, topology } from '../src/topology.js';

const FLOW = '01JAAAAAAAAAAAAAAAAAAAAAAA';
const OTHER = '01JBBBBBBBBBBBBBBBBBBBBBBB';
const streamOf = (text: string) => new Blob([text]).stream();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

async function text(data: ReadableStream<Uint8Array>): Promise<string> {
  return new Response(data).text();
}

describe('the artifacts object store, on a real server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  const topo = topology({ prefix: 'arttest' });

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'artifacts-test' });
    await ensureTopology(nc, topo);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('stores a stream and reads it back with its size and SHA-256 as hex', async () => {
    const store = await ArtifactStore.open(jetstream(nc), topo);
    const body = 'x'.repeat(300 * 1024);
    const object = artifactObjectName(FLOW, 'build/linux', 1, 'out/app.bin');
    expect(await store.put(object, streamOf(body))).toEqual({ object, bytes: body.length, sha256: sha(body) });
    const got = (await store.get(object))!;
    expect({ bytes: got.bytes, sha256: got.sha256 }).toEqual({ bytes: body.length, sha256: sha(body) });
    expect(await text(got.data)).toBe(body);
    expect(await store.info(object)).toEqual({ object, bytes: body.length, sha256: sha(body) });
    expect(await store.get(`${FLOW}/nope`)).toBeNull();
    const empty = artifactObjectName(FLOW, 'build/linux', 1, 'empty');
    expect(await store.put(empty, streamOf(''))).toEqual({ object: empty, bytes: 0, sha256: sha('') });
  });

  it("lists a flow's objects from its events and deletes them, leaving other flows' alone", async () => {
    const js = jetstream(nc);
    const store = await ArtifactStore.open(js, topo);
    const recorded = artifactObjectName(FLOW, 'a', 1, 'r.txt');
    const orphan = artifactObjectName(FLOW, 'a', 2, 'never-recorded.txt');
    const other = artifactObjectName(OTHER, 'a', 1, 'r.txt');
    for (const object of [recorded, orphan, other]) await store.put(object, streamOf(object));
    const event = { id: '01JAAAAAAAAAAAAAAAAAAAAAA1', version: EVENT_VERSION, time: new Date().toISOString(), type: 'task.artifact_stored', flow_id: FLOW, task_id: 'a', attempt: 1, data: { name: 'r.txt', bytes: recorded.length, sha256: sha(recorded), object: recorded } };
    await js.publish(eventSubject(topo.layout, FLOW, 'task.artifact_stored'), encodeJson(event));
    expect(await store.objectsOf(FLOW)).toEqual([{ object: recorded, bytes: recorded.length, sha256: sha(recorded) }]);
    const objects = async () => (await (await jetstreamManager(nc)).streams.info(`OBJ_${topo.artifactsBucket}`)).state.messages;
    const before = await objects();
    expect(await store.removeFlow(FLOW)).toBe(1);
    expect(await store.get(recorded)).toBeNull();
    // Removed whole: its chunk and its metadata, with no deletion marker left in the store.
    expect(await objects()).toBe(before - 2);
    expect(await store.removeFlow(FLOW)).toBe(0);
    // An upload no event names is not the flow's as far as the log knows: it stays, as does another flow's.
    expect(await text((await store.get(orphan))!.data)).toBe(orphan);
    expect(await text((await store.get(other))!.data)).toBe(other);
  });

  it('purges an object cut short after its chunks (its metadata is how it is found again), leaving nothing', async () => {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const store = await new Objm(js).open(topo.artifactsBucket);
    const name = artifactObjectName(OTHER, 'cut', 1, 'short.txt');
    await store.put({ name }, streamOf('cut short'));
    const info = (await store.info(name))!;
    const stream = `OBJ_${topo.artifactsBucket}`;
    const before = (await jsm.streams.info(stream)).state.messages;
    // As if interrupted after the first purge: the chunks are gone, the metadata is not.
    await jsm.streams.purge(stream, { filter: `$O.${topo.artifactsBucket}.C.${info.nuid}` });
    expect(await purgeObject(jsm, store, topo.artifactsBucket, name)).toBe(true);
    expect(await store.info(name)).toBeNull();
    expect((await jsm.streams.info(stream)).state.messages).toBe(before - 2);
    expect(await purgeObject(jsm, store, topo.artifactsBucket, name)).toBe(false);
  });

  it("is provisioned with the events stream's max age", async () => {
    const jsm = await jetstreamManager(nc);
    const events = (await jsm.streams.info(topo.eventsStream)).config;
    await jsm.streams.update(topo.eventsStream, { ...events, max_age: 90 * 24 * 3600 * 1_000_000_000 });
    await ArtifactStore.provision(jetstream(nc), jsm, topo);
    expect((await jsm.streams.info(`OBJ_${topo.artifactsBucket}`)).config.max_age).toBe(90 * 24 * 3600 * 1_000_000_000);
  });
});
