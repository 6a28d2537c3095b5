import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { QueueLimitsRecord } from '@taskstream/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, type NatsConnection } from '../src/connection.js';
import { CorruptQueueLimitsError, decodeQueueLimits, LAYOUT, queueLimitsKey, QueueLimitsStore } from '../src/queue-limits.js';
import { NatsServer } from '@taskstream/testing';
import { ensureTopology, topology } from '../src/topology.js';

const bytes = (text: string) => new TextEncoder().encode(text);

function corruption(data: string | Uint8Array): string {
  let error: unknown;
  try {
    decodeQueueLimits('ts_limits', 'emails', typeof data === 'string' ? bytes(data) : data);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(CorruptQueueLimitsError);
  const { message, key, bucket } = error as CorruptQueueLimitsError;
  expect({ key, bucket }).toEqual({ key: 'emails', bucket: 'ts_limits' });
  expect(message).toMatch(/^the limits record of queue "emails" in bucket ts_limits is corrupt \(.*\); delete it/);
  return message;
}

describe('decoding a stored limits record', () => {
  it('returns a valid record', () => {
    const record: QueueLimitsRecord = { bucket: { tokens: 0.25, at_ms: 1_790_000_000_000 }, holders: { 'f1:a': '', 'f1:b:c': 'tenant-1' } };
    expect(decodeQueueLimits('ts_limits', 'emails', bytes(JSON.stringify(record)))).toEqual(record);
    expect(decodeQueueLimits('ts_limits', 'emails', bytes('{"holders":{}}'))).toEqual({ holders: {} });
  });

  it('refuses a corrupt one, naming its bucket, key and the fields at fault', () => {
    expect(corruption('{"holders": {')).toContain('(not valid UTF-8 JSON)');
    expect(corruption(new Uint8Array([0x7b, 0xff, 0x7d]))).toContain('(not valid UTF-8 JSON)');
    expect(corruption('"holders"')).toContain('(not an object)');
    expect(corruption('{}')).toContain('"holders" is missing or of the wrong type');
    expect(corruption('{"holders": {"f:a": 1}}')).toContain('"holders.f:a" is missing or of the wrong type');
    expect(corruption('{"holders": {}, "bucket": {"tokens": "3"}}')).toContain('"bucket.tokens" is missing or of the wrong type');
    expect(corruption('{"holders": {}, "bucket": {"tokens": 3, "at_ms": 1}, "slots": 2}')).toContain('unknown field "slots"');
  });

  it('keys a queue by its name and refuses what is not a queue name', () => {
    expect(queueLimitsKey('emails')).toBe('emails');
    expect(() => queueLimitsKey('a.>')).toThrow(/invalid queue name/);
  });

  it('describes its bucket as the architecture table does', () => {
    expect({ ...LAYOUT, bucket: LAYOUT.bucket(topology({ prefix: 'ts' })) }).toEqual({
      bucket: 'ts_limits',
      kind: 'KV',
      keys: '`<queue>`',
      value: 'token bucket + concurrency slot holders',
      writers: ['dispatcher'],
      readers: ['dispatcher', 'gateway'],
    });
  });
});

describe('the queue limits store, on a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  /** Two stores on one bucket, as two dispatchers would have. */
  let stores: [QueueLimitsStore, QueueLimitsStore];
  const topo = topology({ prefix: 'limitstest' });
  const hold = (holder: string) => (record: QueueLimitsRecord) => ({ record: { ...record, holders: { ...record.holders, [holder]: '' } }, result: holder });

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'queue-limits-test' });
    await ensureTopology(nc, topo);
    kv = await new Kvm(jetstream(nc)).open(topo.limitsBucket);
    stores = [await QueueLimitsStore.open(jetstream(nc), topo), await QueueLimitsStore.open(jetstream(nc), topo)];
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('reads an absent record as empty at revision 0', async () => {
    expect(await stores[0].read('absent')).toEqual({ record: { holders: {} }, revision: 0 });
  });

  it('loses no change when many compare-and-set updates race, from two stores', async () => {
    const holders = Array.from({ length: 30 }, (_, i) => `flow:t${i}`);
    const results = await Promise.all(holders.map((holder, i) => stores[i % 2]!.update('racing', hold(holder))));
    expect(results).toEqual(holders);
    const { record, revision } = await stores[0].read('racing');
    expect(Object.keys(record.holders).sort()).toEqual([...holders].sort());
    expect(revision).toBeGreaterThan(0);
  });

  it('writes nothing when the change says so', async () => {
    await stores[0].update('quiet', hold('flow:a'));
    const before = (await stores[0].read('quiet')).revision;
    expect(await stores[0].update('quiet', () => undefined)).toBeUndefined();
    expect(await stores[0].update('quiet', () => ({ result: 7 }))).toBe(7);
    expect((await stores[0].read('quiet')).revision).toBe(before);
  });

  it('releases a slot exactly once, however many ask at once, in whichever queue holds it', async () => {
    await stores[0].update('held', hold('flow:x'));
    const released = await Promise.all(Array.from({ length: 6 }, (_, i) => stores[i % 2]!.release(['quiet', 'held'], 'flow:x')));
    expect(released.filter(Boolean)).toHaveLength(1);
    expect((await stores[1].read('held')).record.holders).toEqual({});
    expect((await stores[1].read('quiet')).record.holders).toEqual({ 'flow:a': '' });
  });

  it('watches records, and reports a corrupt one (then absent) without overwriting it', async () => {
    const seen: Array<[string, QueueLimitsRecord | undefined]> = [];
    const corrupt: CorruptQueueLimitsError[] = [];
    const watch = await stores[0].watch(
      (queue, record) => seen.push([queue, record]),
      (error) => corrupt.push(error),
    );
    try {
      await expect.poll(() => seen.find(([queue]) => queue === 'quiet')?.[1]).toEqual({ holders: { 'flow:a': '' } });
      await kv.put('broken', bytes('{"holders": []}'));
      await expect.poll(() => corrupt.map((error) => error.key)).toEqual(['broken']);
      expect(seen.at(-1)).toEqual(['broken', undefined]);
      await expect(stores[0].update('broken', hold('flow:y'))).rejects.toThrow('the limits record of queue "broken" in bucket limitstest_limits is corrupt ("holders" is missing or of the wrong type)');
      expect((await kv.get('broken'))!.string()).toBe('{"holders": []}');
      await kv.delete('broken');
      await expect.poll(() => seen.at(-1)).toEqual(['broken', undefined]);
      expect(await stores[0].update('broken', hold('flow:y'))).toBe('flow:y');
    } finally {
      watch.stop();
    }
  });
});
