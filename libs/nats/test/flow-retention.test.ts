import { createHash } from 'node:crypto';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Base64UrlPaddedCodec } from '@nats-io/obj';
import { artifactObjectName, EVENT_VERSION, eventSubject, flowEventsFilter, partitionOf, validateFlow, type EventType, type FlowSummary } from '@taskstream/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArtifactStore } from '../src/artifacts.js';
import { encodeJson } from '../src/codec.js';
import { connectNats, type NatsConnection } from '../src/connection.js';
import { Definitions } from '../src/definitions.js';
import { FlowRetention, REMOVALS_PER_SWEEP, SUMMARY_MARKER_MS } from '../src/flow-retention.js';
import { FlowSummaryStore } from '../src/flow-summaries.js';
import { FlowViewStore, taskPageKey } from '../src/flow-views.js';
import { newId } from '../src/ids.js';
import { NatsServer } from '@taskstream/testing';
import { ensureTopology, topology } from '../src/topology.js';

const RETENTION_MS = 60_000;
const PARTITION = 3;
const topo = topology({ prefix: 'rettest' });

/** A fresh flow id in PARTITION, so one sweep sees every flow of a test. */
function flowId(): string {
  for (;;) {
    const id = newId();
    if (partitionOf(id, topo.layout.partitions) === PARTITION) return id;
  }
}

describe('flow retention, on a real server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let viewsKv: KV;
  let summariesKv: KV;
  let views: FlowViewStore;
  let summaries: FlowSummaryStore;
  let definitions: Definitions;
  let artifacts: ArtifactStore;
  let removed: string[];
  let retention: FlowRetention;

  /** Stores an event of the flow; returns when the server stored it. */
  const store = async (id: string, type: EventType, data: object = {}, scope: object = {}): Promise<number> => {
    const event = { id: newId(), version: EVENT_VERSION, time: new Date().toISOString(), type, flow_id: id, ...scope, data };
    const ack = await js.publish(eventSubject(topo.layout, id, type), encodeJson(event));
    return (await jsm.streams.getMessage(topo.eventsStream, { seq: ack.seq }))!.time.getTime();
  };
  /** A flow as the services leave it: events, a paged view, a summary, a stored definition and an artifact. */
  const flow = async (ended?: 'flow.succeeded' | 'flow.failed' | 'flow.cancelled'): Promise<{ id: string; object: string; endedAt?: number }> => {
    const id = flowId();
    const object = artifactObjectName(id, 'a', 1, 'out.txt');
    await store(id, 'flow.submitted');
    const parsed = validateFlow({ tasks: [{ id: 'a', executor: 'noop' }] });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    await definitions.offload(id, { definition: parsed.flow });
    await artifacts.put(object, new Blob([id]).stream());
    await store(id, 'task.artifact_stored', { name: 'out.txt', bytes: id.length, sha256: createHash('sha256').update(id).digest('hex'), object }, { task_id: 'a', attempt: 1 });
    await viewsKv.put(id, JSON.stringify({ flow_id: id, status: 'running', last_seq: 1, tasks: [], tasks_paged: true, task_page_size: 1 }));
    await viewsKv.put(taskPageKey(id, 0), JSON.stringify({ first: 0, tasks: [] }));
    await summaries.put(id, { flow_id: id, status: 'running', queue: 'default', submitted_at: new Date().toISOString(), total: 1 } as FlowSummary);
    return { id, object, ...(ended && { endedAt: await store(id, ended) }) };
  };
  const eventsOf = async (id: string) => (await jsm.direct.getMessage(topo.eventsStream, { next_by_subj: flowEventsFilter(topo.layout, id), seq: 1 })) !== null;
  /** Whether a stream holds any message on `subject`, deletion markers included. */
  const holds = (stream: string, subject: string) =>
    jsm.streams.getMessage(stream, { last_by_subj: subject }).then(
      (msg) => msg !== null,
      () => false,
    );
  const objectMeta = (bucket: string, name: string) => holds(`OBJ_${bucket}`, `$O.${bucket}.M.${Base64UrlPaddedCodec.encode(name)}`);
  /** Everything a flow leaves in any store (markers count), as the tests compare it. */
  const traces = async (f: { id: string; object: string }) => ({
    events: await eventsOf(f.id),
    view: await holds(`KV_${topo.flowsBucket}`, `$KV.${topo.flowsBucket}.${f.id}`),
    page: await holds(`KV_${topo.flowsBucket}`, `$KV.${topo.flowsBucket}.${taskPageKey(f.id, 0)}`),
    summary: (await summariesKv.get(f.id))?.operation ?? null,
    definition: await objectMeta(topo.definitionsBucket, f.id),
    artifact: await objectMeta(topo.artifactsBucket, f.object),
  });
  const kept = { events: true, view: true, page: true, summary: 'PUT', definition: true, artifact: true };
  // Only the summary keeps a marker, for the gateways' watches (dropped later: see below).
  const gone = { events: false, view: false, page: false, summary: 'PURGE', definition: false, artifact: false };

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'retention-test' });
    await ensureTopology(nc, topo);
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    const kvm = new Kvm(js);
    viewsKv = await kvm.open(topo.flowsBucket);
    summariesKv = await kvm.open(topo.summariesBucket);
    views = new FlowViewStore(js, viewsKv, topo.flowsBucket);
    summaries = new FlowSummaryStore(summariesKv, topo.summariesBucket);
    definitions = await Definitions.open(js, topo);
    artifacts = await ArtifactStore.open(js, topo);
    removed = [];
    retention = new FlowRetention({ js, topo, views, summaries, definitions, artifacts }, RETENTION_MS, (id) => removed.push(id));
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('removes a flow ended longer ago than the retention, whole, and keeps those ended since and those still running', async () => {
    const running = await flow();
    const first = await flow('flow.succeeded');
    await new Promise((r) => setTimeout(r, 20));
    const second = await flow('flow.cancelled');
    const failed = await flow('flow.failed');
    expect(await traces(first)).toEqual(kept);

    // Just short of the first flow's retention, nothing goes.
    expect((await retention.sweep(PARTITION, first.endedAt! + RETENTION_MS - 1)).removed).toBe(0);
    expect((await retention.sweep(PARTITION, first.endedAt! + RETENTION_MS)).removed).toBe(1);
    expect(removed).toEqual([first.id]);
    expect(await traces(first)).toEqual(gone);
    for (const other of [running, second, failed]) expect(await traces(other)).toEqual(kept);

    // Much later, every ended flow of the partition goes; the running one stays whatever its age.
    expect((await retention.sweep(PARTITION, Date.now() + 10 * RETENTION_MS)).removed).toBe(2);
    expect(removed.slice(1).sort()).toEqual([second.id, failed.id].sort());
    for (const other of [second, failed]) expect(await traces(other)).toEqual(gone);
    expect(await traces(running)).toEqual(kept);
    // Another partition's sweep touches none of this one's flows.
    const later = await flow('flow.succeeded');
    expect((await retention.sweep(PARTITION + 1, Date.now() + 10 * RETENTION_MS)).removed).toBe(0);
    expect(await traces(later)).toEqual(kept);
  });

  it("drops a removed summary's marker once every gateway's watch has had time to see it", async () => {
    const ended = await flow('flow.succeeded');
    // Later than any time the sweeps before asked for, as a clock would be.
    const now = Date.now() + 20 * RETENTION_MS;
    expect((await retention.sweep(PARTITION, now)).removed).toBeGreaterThanOrEqual(1);
    expect((await summariesKv.get(ended.id))?.operation).toBe('PURGE');
    await retention.sweep(PARTITION, now + SUMMARY_MARKER_MS - 1);
    expect((await summariesKv.get(ended.id))?.operation).toBe('PURGE');
    await retention.sweep(PARTITION, now + SUMMARY_MARKER_MS);
    expect(await summariesKv.get(ended.id)).toBeNull();
    expect(await holds(`KV_${topo.summariesBucket}`, `$KV.${topo.summariesBucket}.${ended.id}`)).toBe(false);
  });

  it('drops the markers an earlier process left when it stopped before dropping them, each once old enough', async () => {
    const ended = await flow('flow.succeeded');
    const now = Date.now() + 30 * RETENTION_MS;
    expect((await retention.sweep(PARTITION, now)).removed).toBeGreaterThanOrEqual(1);
    const marker = (await summariesKv.get(ended.id))!;
    expect(marker.operation).toBe('PURGE');
    const removedAt = marker.created.getTime();
    // A process started after that one stopped: it learns of the marker from the bucket.
    const restarted = new FlowRetention({ js, topo, views, summaries, definitions, artifacts }, RETENTION_MS);
    await restarted.sweep(PARTITION, removedAt + SUMMARY_MARKER_MS - 1_000);
    expect((await summariesKv.get(ended.id))?.operation).toBe('PURGE');
    await restarted.sweep(PARTITION, removedAt + SUMMARY_MARKER_MS + 1_000);
    expect(await holds(`KV_${topo.summariesBucket}`, `$KV.${topo.summariesBucket}.${ended.id}`)).toBe(false);
    // Summaries are not markers: only removed flows' are read as such.
    const running = await flow();
    const gone = await flow('flow.failed');
    await retention.sweep(PARTITION, Date.now() + 40 * RETENTION_MS);
    const markers = (await summaries.markers(js)).map((m) => m.flowId);
    expect(markers).toContain(gone.id);
    expect(markers).not.toContain(running.id);
  });

  it('goes on removing flows when the markers earlier processes left cannot be read, says so, and reads them a minute later', async () => {
    let reads = 0;
    let readable = false;
    class Unreadable extends FlowSummaryStore {
      override async markers(on: JetStreamClient) {
        reads++;
        if (!readable) throw new Error('Permissions Violation for Subscription');
        return super.markers(on);
      }
    }
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, error() {}, warn: (_fields: object | string, message?: string) => void warnings.push(message ?? '') };
    const fresh = new FlowRetention({ js, topo, views, summaries: new Unreadable(summariesKv, topo.summariesBucket), definitions, artifacts }, RETENTION_MS, undefined, log);
    const ended = await flow('flow.succeeded');
    const now = Date.now() + 50 * RETENTION_MS;
    expect((await fresh.sweep(PARTITION, now)).removed).toBeGreaterThanOrEqual(1);
    expect(await traces(ended)).toEqual(gone);
    expect(warnings).toEqual(['could not read the removal markers earlier processes left (they stay until read); trying again in a minute']);
    await fresh.sweep(PARTITION, now + 1_000);
    expect(reads).toBe(1);
    readable = true;
    await fresh.sweep(PARTITION, now + 61_000);
    expect(reads).toBe(2);
    await fresh.sweep(PARTITION, now + 62_000);
    expect(reads).toBe(2);
  });

  it('keeps a flow past its retention while a rerun or fork of it is in the log, whose tasks may read its artifacts', async () => {
    const parent = await flow('flow.succeeded');
    const rerun = await flow();
    await store(parent.id, 'flow.derived', { kind: 'rerun', child_flow_id: rerun.id, at_seq: 1 });
    const later = Date.now() + 40 * RETENTION_MS;
    expect((await retention.sweep(PARTITION, later)).removed).toBe(0);
    expect(await traces(parent)).toEqual(kept);
    // Still held at the next sweep, while the rerun runs.
    expect((await retention.sweep(PARTITION, later + 1)).removed).toBe(0);
    await store(rerun.id, 'flow.failed');
    // The rerun goes once past its own retention; its parent goes at the sweep after.
    expect((await retention.sweep(PARTITION, Date.now() + 41 * RETENTION_MS)).removed).toBe(1);
    expect(await traces(rerun)).toEqual(gone);
    expect(await traces(parent)).toEqual(kept);
    expect((await retention.sweep(PARTITION, Date.now() + 42 * RETENTION_MS)).removed).toBe(1);
    expect(await traces(parent)).toEqual(gone);
  });

  it('removes flows of one outcome in the order they ended, each once past its own retention', async () => {
    const fresh = new FlowRetention({ js, topo, views, summaries, definitions, artifacts }, RETENTION_MS);
    const earlier = await flow('flow.succeeded');
    await new Promise((r) => setTimeout(r, 20));
    const later = await flow('flow.succeeded');
    expect(await fresh.sweep(PARTITION, earlier.endedAt! + RETENTION_MS)).toEqual({ removed: 1, more: false });
    expect([await traces(earlier), await traces(later)]).toEqual([gone, kept]);
    expect(await fresh.sweep(PARTITION, later.endedAt! + RETENTION_MS)).toEqual({ removed: 1, more: false });
    expect(await traces(later)).toEqual(gone);
  });

  it('holds a flow until the events it may still append after its end are folded into its view, then removes it', async () => {
    let foldedBefore = 0;
    const fresh = new FlowRetention({ js, topo, views, summaries, definitions, artifacts, foldedBefore: async () => foldedBefore }, RETENTION_MS);
    const ended = await flow('flow.cancelled');
    // Under this test's short retention, the retention itself is how long a flow may append after its end.
    foldedBefore = ended.endedAt! + RETENTION_MS - 1;
    expect((await fresh.sweep(PARTITION, Date.now() + 60 * RETENTION_MS)).removed).toBe(0);
    expect(await traces(ended)).toEqual(kept);
    foldedBefore = ended.endedAt! + RETENTION_MS;
    expect((await fresh.sweep(PARTITION, Date.now() + 60 * RETENTION_MS)).removed).toBe(1);
    expect(await traces(ended)).toEqual(gone);
  });

  it('removes at most REMOVALS_PER_SWEEP flows a sweep, and says when more are left', async () => {
    const fresh = new FlowRetention({ js, topo, views, summaries, definitions, artifacts }, RETENTION_MS);
    const many = REMOVALS_PER_SWEEP + 3;
    for (let i = 0; i < many; i++) {
      const id = flowId();
      await store(id, 'flow.submitted');
      await store(id, 'flow.succeeded');
    }
    const now = Date.now() + 70 * RETENTION_MS;
    expect(await fresh.sweep(PARTITION, now)).toEqual({ removed: REMOVALS_PER_SWEEP, more: true });
    expect(await fresh.sweep(PARTITION, now)).toEqual({ removed: 3, more: false });
  });

  it('finishes a removal cut short, found again by its terminal event', async () => {
    const ended = await flow('flow.failed');
    // As if a projector died after removing the view and the summary: the events are still there.
    await views.remove(ended.id);
    await summaries.remove(ended.id);
    const fresh = new FlowRetention({ js, topo, views, summaries, definitions, artifacts }, RETENTION_MS);
    expect((await fresh.sweep(PARTITION, Date.now() + 10 * RETENTION_MS)).removed).toBeGreaterThanOrEqual(1);
    expect(await traces(ended)).toEqual(gone);
  });
});
