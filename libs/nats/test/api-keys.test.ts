import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiKeyStore,
  checkApiKey,
  CorruptApiKeyError,
  decodeApiKeyRecord,
  generateApiKey,
  hashSecret,
  parseApiKey,
  parseKeyLifetime,
  scopeIncludes,
  secretMatches,
  type ApiKeyRecord,
  type ApiKeyTable,
} from '../src/api-keys.js';
import { connectNats, type NatsConnection } from '../src/connection.js';
import { NatsServer } from '@taskstream/testing';
import { ensureTopology, topology } from '../src/topology.js';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';

const bytes = (text: string) => new TextEncoder().encode(text);
const NOW = Date.parse('2026-11-23T05:00:00Z');

function recordFor(key: string, extra: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  const { id, secret } = parseApiKey(key)!;
  return { id, name: 'test', scope: 'read', hash: hashSecret(secret), created_at: '2026-11-01T00:00:00.000Z', ...extra };
}

describe('key text', () => {
  it('is ts_, a 12-character base32 id, _, and 32 random bytes in base64url', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { id, secret, key } = generateApiKey();
      expect(key).toMatch(/^ts_[a-z2-7]{12}_[A-Za-z0-9_-]{43}$/);
      expect(key).toBe(`ts_${id}_${secret}`);
      expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
      expect(parseApiKey(key)).toEqual({ id, secret });
      seen.add(id);
    }
    expect(seen.size).toBe(200);
  });

  it('parses only what looks like a key', () => {
    const { key } = generateApiKey();
    for (const text of ['', 'ts_', key.slice(0, -1), key.toUpperCase(), `x${key}`, `${key} `, key.replace('ts_', 'tk_'), `ts_abcdefghijk1_${'a'.repeat(43)}`, `${key}${'a'.repeat(300)}`]) {
      expect(parseApiKey(text), text).toBeUndefined();
    }
    // A secret may itself hold "_" and "-" (base64url).
    expect(parseApiKey(`ts_abcdefghijkl_${'_-'.repeat(22)}`)).toEqual({ id: 'abcdefghijkl', secret: '_-'.repeat(22) });
  });

  it('hashes the secret with SHA-256 and compares in constant time', () => {
    const { secret } = generateApiKey();
    const hash = hashSecret(secret);
    expect(hash).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(secretMatches(secret, hash)).toBe(true);
    expect(secretMatches(`${secret}x`, hash)).toBe(false);
    expect(secretMatches(secret, 'ab')).toBe(false);
  });
});

describe('checking a presented key', () => {
  const { key } = generateApiKey();
  const lookupOf = (record: ApiKeyRecord) => (id: string) => (id === record.id ? record : undefined);

  it('accepts the key of a live record', () => {
    const record = recordFor(key);
    expect(checkApiKey(key, lookupOf(record), NOW)).toEqual({ ok: true, record });
    expect(checkApiKey(key, lookupOf(recordFor(key, { expires_at: '2026-11-23T05:00:01.000Z' })), NOW).ok).toBe(true);
  });

  it('refuses every other key, with a reason for the caller alone', () => {
    const record = recordFor(key);
    const other = generateApiKey().key;
    expect(checkApiKey(undefined, lookupOf(record), NOW)).toEqual({ ok: false, reason: 'missing' });
    expect(checkApiKey('', lookupOf(record), NOW)).toEqual({ ok: false, reason: 'missing' });
    expect(checkApiKey('ts_nope', lookupOf(record), NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(checkApiKey(other, lookupOf(record), NOW)).toEqual({ ok: false, reason: 'unknown' });
    expect(checkApiKey(`${key.slice(0, 16)}${other.slice(16)}`, lookupOf(record), NOW)).toEqual({ ok: false, reason: 'wrong secret' });
    expect(checkApiKey(key, lookupOf(recordFor(key, { revoked_at: '2026-11-02T00:00:00.000Z' })), NOW)).toEqual({ ok: false, reason: 'revoked' });
    expect(checkApiKey(key, lookupOf(recordFor(key, { expires_at: '2026-11-23T05:00:00.000Z' })), NOW)).toEqual({ ok: false, reason: 'expired' });
  });

  it('orders scopes: admin includes submit, which includes read', () => {
    expect(scopeIncludes('admin', 'read')).toBe(true);
    expect(scopeIncludes('admin', 'submit')).toBe(true);
    expect(scopeIncludes('submit', 'read')).toBe(true);
    expect(scopeIncludes('submit', 'admin')).toBe(false);
    expect(scopeIncludes('read', 'submit')).toBe(false);
    expect(scopeIncludes('read', 'read')).toBe(true);
  });

  it('reads lifetimes of seconds, minutes, hours and days, up to ten years', () => {
    expect(parseKeyLifetime('90s')).toBe(90_000);
    expect(parseKeyLifetime('30m')).toBe(1_800_000);
    expect(parseKeyLifetime('12h')).toBe(43_200_000);
    expect(parseKeyLifetime('30d')).toBe(2_592_000_000);
    expect(parseKeyLifetime('3650d')).toBe(3650 * 86_400_000);
    for (const text of ['', '0s', '3651d', '1y', '1.5h', '-1d', '10', 'd', ' 1d', '01d']) expect(parseKeyLifetime(text), text).toBeUndefined();
  });
});

describe('decoding a stored key record', () => {
  const { key } = generateApiKey();
  const record = recordFor(key);

  it('returns a valid record', () => {
    expect(decodeApiKeyRecord('ts_api_keys', record.id, bytes(JSON.stringify(record)))).toEqual(record);
  });

  it('refuses a corrupt one, naming its key and never quoting it', () => {
    const cases: Array<[string, string | Uint8Array]> = [
      ['not valid UTF-8 JSON', `{"hash": "${record.hash}"`],
      ['not valid UTF-8 JSON', new Uint8Array([0x7b, 0xff])],
      ['"hash" is not valid', JSON.stringify({ ...record, hash: 'short' })],
      ['"scope" is not valid', JSON.stringify({ ...record, scope: 'root' })],
      ['"name" is missing or of the wrong type', JSON.stringify({ ...record, name: undefined })],
      ['"id" is not the key it is stored under', JSON.stringify({ ...record, id: 'aaaaaaaaaaaa' })],
      ['not an object', '[]'],
    ];
    for (const [reason, data] of cases) {
      let error: unknown;
      try {
        decodeApiKeyRecord('ts_api_keys', record.id, typeof data === 'string' ? bytes(data) : data);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CorruptApiKeyError);
      expect((error as Error).message).toContain(`API key "${record.id}" in bucket ts_api_keys is corrupt (`);
      expect((error as Error).message).toContain(reason);
      expect((error as Error).message).not.toContain(record.hash);
    }
  });
});

describe('the key store, on a real nats-server', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let store: ApiKeyStore;
  let table: ApiKeyTable;
  const topo = topology({ prefix: 'keytest' });

  beforeAll(async () => {
    server = await NatsServer.start();
    nc = await connectNats({ servers: server.url, name: 'api-keys-test' });
    await ensureTopology(nc, topo);
    store = await ApiKeyStore.open(jetstream(nc), topo);
    table = await store.watch();
  });
  afterAll(async () => {
    table?.stop();
    await nc?.close();
    await server?.stop();
  });

  it('creates, lists, marks used and revokes keys; the table follows', async () => {
    const { info, key } = await store.create({ name: 'ci', scope: 'submit', expiresInMs: 60_000 }, NOW);
    expect(info).toEqual({ id: key.slice(3, 15), name: 'ci', scope: 'submit', created_at: '2026-11-23T05:00:00.000Z', expires_at: '2026-11-23T05:01:00.000Z' });
    const stored = await (await new Kvm(jetstream(nc)).open(topo.apiKeysBucket)).get(info.id);
    expect(stored!.string()).not.toContain(key.slice(16));
    expect(await store.list()).toEqual([info]);

    await expect.poll(() => table.check(key, NOW).ok).toBe(true);
    expect(table.check(key, NOW + 60_000)).toEqual({ ok: false, reason: 'expired' });

    await store.markUsed(info.id, '2026-11-23');
    const revision = (await (await new Kvm(jetstream(nc)).open(topo.apiKeysBucket)).get(info.id))!.revision;
    await store.markUsed(info.id, '2026-11-23');
    expect((await (await new Kvm(jetstream(nc)).open(topo.apiKeysBucket)).get(info.id))!.revision).toBe(revision);
    expect((await store.get(info.id))!.last_used_on).toBe('2026-11-23');

    const revoked = await store.revoke(info.id, NOW + 1_000);
    expect(revoked!.revoked_at).toBe('2026-11-23T05:00:01.000Z');
    expect((await store.revoke(info.id, NOW + 5_000))!.revoked_at).toBe('2026-11-23T05:00:01.000Z');
    await expect.poll(() => table.check(key, NOW).ok).toBe(false);
    expect(table.check(key, NOW)).toEqual({ ok: false, reason: 'revoked' });
    expect(await store.revoke('aaaaaaaaaaaa')).toBeUndefined();
    expect(await store.revoke('not an id')).toBeUndefined();
    expect(await store.anyUsable(NOW)).toBe(false);
  });

  it("shows a key created or revoked through it in its own table as soon as the call returns", async () => {
    for (let i = 0; i < 30; i++) {
      const { info, key } = await store.create({ name: `at-once-${i}`, scope: 'read' });
      expect(table.check(key).ok, `created key ${i}`).toBe(true);
      await store.revoke(info.id);
      expect(table.check(key), `revoked key ${i}`).toEqual({ ok: false, reason: 'revoked' });
    }
  });

  it('stops waiting for its table after the bound when the watch does not show a revision', async () => {
    // A revision the bucket has not reached: as a watch cut off from the server would leave it.
    const started = Date.now();
    await table.seen(Number.MAX_SAFE_INTEGER, 200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it('registers a known key once, and refuses bad names, scopes and lifetimes', async () => {
    const { key } = generateApiKey();
    expect(await store.register(key, { name: 'bootstrap admin', scope: 'admin' })).toBe('created');
    expect(await store.register(key, { name: 'bootstrap admin', scope: 'admin' })).toBe('exists');
    await expect.poll(() => table.check(key).ok).toBe(true);
    expect(await store.anyUsable()).toBe(true);
    await expect(store.register('ts_nope', { name: 'x', scope: 'admin' })).rejects.toThrow(/not an API key/);
    await expect(store.create({ name: '', scope: 'read' })).rejects.toThrow(/invalid key name/);
    await expect(store.create({ name: 'x', scope: 'root' as 'read' })).rejects.toThrow(/invalid scope/);
    await expect(store.create({ name: 'x', scope: 'read', expiresInMs: 0 })).rejects.toThrow(/invalid lifetime/);
  });
});
