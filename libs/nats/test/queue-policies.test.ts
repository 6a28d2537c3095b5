import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { DEFAULT_QUEUE_POLICY, QueuePolicyInput, type QueuePolicy } from '@taskstream/domain';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, type NatsConnection } from '../src/connection.js';
import { CorruptQueuePolicyError, decodeQueuePolicy, LAYOUT, queuePolicyKey, QueuePolicyStore, type QueuePolicyTable } from '../src/queue-policies.js';
import { NatsServer } from '@taskstream/testing';
import { ensureTopology, topology } from '../src/topology.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const decode = (data: string | Uint8Array) => decodeQueuePolicy('ts_queues', 'emails', typeof data === 'string' ? bytes(data) : data);

/** The error a corrupt record raises, checked to name its key and bucket. */
function corruption(data: string | Uint8Array): string {
  let error: unknown;
  try {
    decode(data);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(CorruptQueuePolicyError);
  const { message, key, bucket } = error as CorruptQueuePolicyError;
  expect({ key, bucket }).toEqual({ key: 'emails', bucket: 'ts_queues' });
  expect(message).toMatch(/^the policy of queue "emails" in bucket ts_queues is corrupt \(/);
  return message;
}

describe('decoding a stored queue policy', () => {
  it('returns what the gateway stores: a policy as its input schema gives it', () => {
    const policy = QueuePolicyInput.parse({ concurrency: 2, rate_limit: { per_second: 0.5 }, backoff: 'fixed', secrets: { token: { env: 'TOKEN' } } });
    expect(decode(JSON.stringify(policy))).toEqual(policy);
    expect(decode('{}')).toEqual({});
  });

  it('reads back a policy accepted under bounds later tightened (the recorded shape, not the input bounds)', () => {
    expect(decode(JSON.stringify({ concurrency: 1_000_000_000 }))).toEqual({ concurrency: 1_000_000_000 });
  });

  it('refuses a corrupt record, naming its bucket, key and the fields at fault', () => {
    expect(corruption('{"concurrency": 2')).toContain('(not valid UTF-8 JSON)');
    expect(corruption(new Uint8Array([0x7b, 0xff, 0x7d]))).toContain('(not valid UTF-8 JSON)');
    expect(corruption('[]')).toContain('(not an object)');
    expect(corruption('null')).toContain('(not an object)');
    expect(corruption('{"concurrency": "2"}')).toContain('"concurrency" is missing or of the wrong type');
    expect(corruption('{"concurrency": 0}')).toContain('"concurrency" is not valid');
    expect(corruption('{"rate_limit": {"per_second": -1}}')).toContain('"rate_limit.per_second" is not valid');
    expect(corruption('{"concurrency": 2, "limit": 3}')).toContain('unknown field "limit"');
    expect(corruption('{"backoff": {"type": "fixed"}}')).toContain('"backoff.initial_delay_ms" is missing or of the wrong type');
  });

  it('keys a queue by its name and refuses what is not a queue name', () => {
    expect(queuePolicyKey('emails_eu-1')).toBe('emails_eu-1');
    for (const name of ['', 'a.b', 'a*', '>', 'a b', 'x'.repeat(65)]) expect(() => queuePolicyKey(name), name).toThrow(/invalid queue name/);
  });

  it('describes its bucket as the architecture table does', () => {
    expect({ ...LAYOUT, bucket: LAYOUT.bucket(topology({ prefix: 'ts' })) }).toEqual({
      bucket: 'ts_queues',
      kind: 'KV',
      keys: '`<queue>`',
      value: 'queue policy',
      writers: ['gateway'],
      readers: ['dispatcher', 'gateway'],
    });
  });
});

describe('the queue policy store, on a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let store: QueuePolicyStore;
  let table: QueuePolicyTable;
  const changed: string[] = [];
  const corrupt: CorruptQueuePolicyError[] = [];
  const topo = topology({ prefix: 'policytest' });

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'queue-policies-test' });
    await ensureTopology(nc, topo);
    kv = await new Kvm(jetstream(nc)).open(topo.queuesBucket);
    // Stored before the table starts: it must be in the table once `watch` resolves.
    await kv.put('early', bytes(JSON.stringify({ concurrency: 3 })));
    store = await QueuePolicyStore.open(jetstream(nc), topo);
    table = await store.watch(
      (queue) => changed.push(queue),
      (error) => corrupt.push(error),
    );
  });
  afterAll(async () => {
    table?.stop();
    await nc?.close();
    await server?.stop();
  });

  it('puts, gets, lists and deletes policies; the table follows', async () => {
    expect(table.get('early')).toEqual({ concurrency: 3 });
    expect(table.get('nobody')).toBe(DEFAULT_QUEUE_POLICY);
    const policy: QueuePolicy = { per_key_concurrency: 1, max_retries: 2 };
    await store.put('tenants', policy);
    expect(await store.get('tenants')).toEqual(policy);
    expect(await store.get('nobody')).toBeUndefined();
    expect(await store.list()).toEqual([
      { queue: 'early', policy: { concurrency: 3 } },
      { queue: 'tenants', policy },
    ]);
    await expect.poll(() => table.get('tenants')).toEqual(policy);
    expect(changed).toContain('tenants');
    await store.delete('tenants');
    expect(await store.get('tenants')).toBeUndefined();
    expect((await store.list()).map((entry) => entry.queue)).toEqual(['early']);
    await expect.poll(() => table.get('tenants')).toBe(DEFAULT_QUEUE_POLICY);
  });

  it('refuses to store what it could not read back, and names that are not queue names', async () => {
    await expect(store.put('bad', { concurrency: 0 })).rejects.toThrow(/not a valid queue policy: concurrency/);
    await expect(store.put('a.b', {})).rejects.toThrow(/invalid queue name/);
    expect(await store.get('bad')).toBeUndefined();
  });

  it('reports a corrupt record instead of trusting it; the table keeps the last valid policy', async () => {
    await store.put('mangled', { concurrency: 1 });
    await expect.poll(() => table.get('mangled')).toEqual({ concurrency: 1 });
    await kv.put('mangled', bytes('{"concurrency": "one"}'));
    await expect(store.get('mangled')).rejects.toThrow(CorruptQueuePolicyError);
    await expect(store.get('mangled')).rejects.toThrow('the policy of queue "mangled" in bucket policytest_queues is corrupt ("concurrency" is missing or of the wrong type)');
    await expect(store.list()).rejects.toThrow(/queue "mangled" in bucket policytest_queues is corrupt/);
    await expect.poll(() => corrupt.map((error) => error.key)).toEqual(['mangled']);
    expect(table.get('mangled')).toEqual({ concurrency: 1 });
    await store.put('mangled', { concurrency: 4 });
    await expect.poll(() => table.get('mangled')).toEqual({ concurrency: 4 });
  });
});
