import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { z } from 'zod';
import { encodeJson } from './codec.js';
import type { Layout } from './records.js';
import type { Topology } from './topology.js';

/**
 * The API keys bucket (`<prefix>_api_keys`): one record per key, under its id. The only module that
 * reads or writes it. A key is `ts_<id>_<secret>`: the id (12 base32 characters) names the key and
 * is safe to log; the secret (32 random bytes, base64url) is shown once, when the key is created,
 * and only its SHA-256 is stored. Nothing here logs, stores or puts a secret in a message.
 */

/** Scopes, each including the ones before it. */
export const API_KEYS_LAYOUT: Layout = {
  bucket: (topo) => topo.apiKeysBucket,
  kind: 'KV',
  keys: '`<key id>` → `{id, name, scope, hash, created_at, expires_at?, revoked_at?, last_used_on?}`',
  value: 'SHA-256 of the secret',
  writers: ['gateway', 'cli'],
  readers: ['gateway'],
};

export const API_KEY_SCOPES = ['read', 'submit', 'admin'] as const;
export const ApiKeyScope = z.enum(API_KEY_SCOPES);
export type ApiKeyScope = z.infer<typeof ApiKeyScope>;

/** Whether a key with scope `has` may use a route that needs `needs`. */
export function scopeIncludes(has: ApiKeyScope, needs: ApiKeyScope): boolean {
  return API_KEY_SCOPES.indexOf(has) >= API_KEY_SCOPES.indexOf(needs);
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_LENGTH = 12;
const SECRET_BYTES = 32;
/** A key id: 12 lowercase base32 characters (60 random bits). */
export const API_KEY_ID_PATTERN = /^[a-z2-7]{12}$/;
const KEY_PATTERN = /^ts_([a-z2-7]{12})_([A-Za-z0-9_-]{43,})$/;
/** Longest key text looked at; anything longer is malformed without further work. */
const MAX_KEY_LENGTH = 256;

/** What a key name may be, as messages state it. */
export const API_KEY_NAME_RULE = '1 to 64 printable ASCII characters, not only spaces';
export const ApiKeyName = z
  .string()
  .regex(/^[\x20-\x7e]{1,64}$/, `a key name is ${API_KEY_NAME_RULE}`)
  .refine((name) => name.trim() !== '', `a key name is ${API_KEY_NAME_RULE}`);

export const ApiKeyRecord = z.object({
  id: z.string().regex(API_KEY_ID_PATTERN),
  name: ApiKeyName,
  scope: ApiKeyScope,
  /** SHA-256 of the secret, hex. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  created_at: z.iso.datetime(),
  expires_at: z.iso.datetime().optional(),
  revoked_at: z.iso.datetime().optional(),
  /** The day (UTC) the key was last used, written at most once a day. */
  last_used_on: z.iso.date().optional(),
});
export type ApiKeyRecord = z.infer<typeof ApiKeyRecord>;

/** What may be shown about a key: everything but its hash. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'hash'>;

export function keyInfo(record: ApiKeyRecord): ApiKeyInfo {
  const { hash: _hash, ...info } = record;
  return info;
}

/** A new key: its id, its secret and the whole text a client sends. */
export function generateApiKey(): { id: string; secret: string; key: string } {
  const bytes = randomBytes(ID_LENGTH);
  const id = Array.from(bytes, (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('');
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { id, secret, key: `ts_${id}_${secret}` };
}

/** The id and secret of a key's text, or undefined when it does not look like a key. */
export function parseApiKey(text: string): { id: string; secret: string } | undefined {
  if (text.length > MAX_KEY_LENGTH) return undefined;
  const m = KEY_PATTERN.exec(text);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Compares a secret with a stored hash in constant time. */
export function secretMatches(secret: string, hash: string): boolean {
  const presented = createHash('sha256').update(secret, 'utf8').digest();
  const stored = Buffer.from(hash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

export type KeyCheck = { ok: true; record: ApiKeyRecord } | { ok: false; reason: 'missing' | 'malformed' | 'unknown' | 'wrong secret' | 'revoked' | 'expired' };

/** Compared against when the id is unknown, so an unknown id costs what a known one does. */
const DUMMY_HASH = hashSecret('no such key');

/**
 * Checks a presented key against the records `lookup` finds by id. The reason is for the caller's
 * own use (tests, debugging); callers answer every failure the same way.
 */
export function checkApiKey(presented: string | undefined, lookup: (id: string) => ApiKeyRecord | undefined, now = Date.now()): KeyCheck {
  if (presented === undefined || presented === '') return { ok: false, reason: 'missing' };
  const parsed = parseApiKey(presented);
  if (!parsed) return { ok: false, reason: 'malformed' };
  const record = lookup(parsed.id);
  const matches = secretMatches(parsed.secret, record?.hash ?? DUMMY_HASH);
  if (!record) return { ok: false, reason: 'unknown' };
  if (!matches) return { ok: false, reason: 'wrong secret' };
  if (record.revoked_at !== undefined) return { ok: false, reason: 'revoked' };
  if (record.expires_at !== undefined && Date.parse(record.expires_at) <= now) return { ok: false, reason: 'expired' };
  return { ok: true, record };
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** Longest lifetime a key may be given: ten years. */
export const MAX_KEY_LIFETIME_MS = 3650 * UNITS.d!;
export const KEY_LIFETIME_RULE = 'a whole number and a unit: s, m, h or d (90s, 30m, 12h, 30d), at most 3650d';

/** A key lifetime such as `90s`, `30m`, `12h` or `30d`, in milliseconds; undefined when it is not one. */
export function parseKeyLifetime(text: string): number | undefined {
  const m = /^([1-9]\d{0,9})([smhd])$/.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS[m[2]!]!;
  return ms <= MAX_KEY_LIFETIME_MS ? ms : undefined;
}

/** A stored record that is not a valid key record: never trusted, reported with its key. */
export class CorruptApiKeyError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    reason: string,
  ) {
    super(`the record of API key "${key}" in bucket ${bucket} is corrupt (${reason}); revoke the key (or delete the record) and create a new one`);
    this.name = 'CorruptApiKeyError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Checks a stored record; reasons name fields, never what they hold. */
export function decodeApiKeyRecord(bucket: string, key: string, data: Uint8Array): ApiKeyRecord {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(data));
  } catch {
    throw new CorruptApiKeyError(bucket, key, 'not valid UTF-8 JSON');
  }
  const result = ApiKeyRecord.safeParse(json);
  if (!result.success) {
    const fields = result.error.issues.map((issue) => (issue.path.length > 0 ? `"${issue.path.join('.')}" ${issue.code === 'invalid_type' ? 'is missing or of the wrong type' : 'is not valid'}` : 'not an object'));
    throw new CorruptApiKeyError(bucket, key, [...new Set(fields)].join(', '));
  }
  if (result.data.id !== key) throw new CorruptApiKeyError(bucket, key, '"id" is not the key it is stored under');
  return result.data;
}

const isLive = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT' && entry.value.length > 0;

function isWrongLastSequence(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: string };
  return code === 10071 || /wrong last sequence|key exists/i.test(message ?? '');
}

export interface NewKey {
  name: string;
  scope: ApiKeyScope;
  /** How long the key lives, in milliseconds; forever when absent. */
  expiresInMs?: number;
}

/** The day of a time, UTC, as `YYYY-MM-DD`. */
export const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** How long a change waits at most for this process's tables to show it (see ApiKeyStore.shown). */
const SHOWN_WAIT_MS = 2_000;

/** API keys: create, list, revoke, register a known key, and a live table for verifying them. */
export class ApiKeyStore {
  /** The tables this store started: a change made through it waits until they show it. */
  private readonly tables = new Set<ApiKeyTable>();

  constructor(
    private readonly kv: KV,
    readonly bucket: string,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<ApiKeyStore> {
    return new ApiKeyStore(await new Kvm(js).open(topo.apiKeysBucket), topo.apiKeysBucket);
  }

  /** Creates a key; the returned `key` is the only copy of its secret. */
  async create(spec: NewKey, now = Date.now()): Promise<{ info: ApiKeyInfo; key: string }> {
    checkSpec(spec);
    for (;;) {
      const generated = generateApiKey();
      const record = this.recordFor(generated.id, generated.secret, spec, now);
      try {
        await this.shown(await this.kv.create(generated.id, encodeJson(record)));
        return { info: keyInfo(record), key: generated.key };
      } catch (error) {
        // Two ids colliding in 60 random bits: draw again.
        if (!isWrongLastSequence(error)) throw error;
      }
    }
  }

  /**
   * Stores a key whose text is already known (a bootstrap key from the environment) unless a
   * record with its id exists: 'exists' then, whatever that record holds (a revoked one stays revoked).
   */
  async register(key: string, spec: NewKey, now = Date.now()): Promise<'created' | 'exists'> {
    checkSpec(spec);
    const parsed = parseApiKey(key);
    if (!parsed) throw new Error('the key is not an API key: it must look like ts_<12 characters a-z, 2-7>_<at least 43 characters of base64url>');
    if (isLive(await this.kv.get(parsed.id))) return 'exists';
    try {
      await this.shown(await this.kv.create(parsed.id, encodeJson(this.recordFor(parsed.id, parsed.secret, spec, now))));
      return 'created';
    } catch (error) {
      if (isWrongLastSequence(error)) return 'exists';
      throw error;
    }
  }

  private recordFor(id: string, secret: string, spec: NewKey, now: number): ApiKeyRecord {
    return {
      id,
      name: spec.name,
      scope: spec.scope,
      hash: hashSecret(secret),
      created_at: new Date(now).toISOString(),
      ...(spec.expiresInMs !== undefined && { expires_at: new Date(now + spec.expiresInMs).toISOString() }),
    };
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    if (!API_KEY_ID_PATTERN.test(id)) return undefined;
    const entry = await this.kv.get(id);
    return isLive(entry) ? decodeApiKeyRecord(this.bucket, id, entry.value) : undefined;
  }

  /** Every key, oldest first, without hashes; revoked and expired keys included. */
  async list(): Promise<ApiKeyInfo[]> {
    const ids: string[] = [];
    for await (const id of await this.kv.keys()) ids.push(id);
    const keys: ApiKeyInfo[] = [];
    for (const id of ids) {
      const entry = await this.kv.get(id);
      if (isLive(entry)) keys.push(keyInfo(decodeApiKeyRecord(this.bucket, id, entry.value)));
    }
    return keys.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
  }

  /** Whether any key is usable now (neither revoked nor expired). */
  async anyUsable(now = Date.now()): Promise<boolean> {
    return (await this.list()).some((k) => k.revoked_at === undefined && (k.expires_at === undefined || Date.parse(k.expires_at) > now));
  }

  /** Revokes a key for good; undefined when there is no key with that id. Revoking twice keeps the first time. */
  async revoke(id: string, now = Date.now()): Promise<ApiKeyInfo | undefined> {
    return this.change(id, (record) => (record.revoked_at !== undefined ? undefined : { ...record, revoked_at: new Date(now).toISOString() }), true);
  }

  /** Records that a key was used on `day` (YYYY-MM-DD), unless it already says so: at most one write per key a day. */
  async markUsed(id: string, day: string): Promise<void> {
    await this.change(id, (record) => (record.last_used_on !== undefined && record.last_used_on >= day ? undefined : { ...record, last_used_on: day }));
  }

  /** Applies `edit` by compare-and-set, again when someone else changed the record meanwhile; `edit` returns undefined for no change. */
  private async change(id: string, edit: (record: ApiKeyRecord) => ApiKeyRecord | undefined, waitShown = false): Promise<ApiKeyInfo | undefined> {
    if (!API_KEY_ID_PATTERN.test(id)) return undefined;
    for (;;) {
      const entry = await this.kv.get(id);
      if (!isLive(entry)) return undefined;
      const record = decodeApiKeyRecord(this.bucket, id, entry.value);
      const changed = edit(record);
      if (!changed) return keyInfo(record);
      try {
        const revision = await this.kv.update(id, encodeJson(changed), entry.revision);
        if (waitShown) await this.shown(revision);
        return keyInfo(changed);
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
  }

  /** A table of every key kept current by a watch: a created or revoked key is seen as soon as it is stored. */
  async watch(onCorrupt: (error: CorruptApiKeyError) => void = () => {}): Promise<ApiKeyTable> {
    const table = await ApiKeyTable.start(this.kv, this.bucket, onCorrupt);
    this.tables.add(table);
    table.onStop(() => this.tables.delete(table));
    return table;
  }

  /**
   * Waits (up to SHOWN_WAIT_MS) until every table this store started shows the bucket as of
   * `revision`: a key created or revoked through this process verifies, or is refused, by this
   * process as soon as the change is answered. Other processes see it when their watch does.
   */
  private async shown(revision: number): Promise<void> {
    await Promise.all([...this.tables].map((table) => table.seen(revision, SHOWN_WAIT_MS)));
  }
}

function checkSpec(spec: NewKey): void {
  if (!ApiKeyName.safeParse(spec.name).success) throw new Error(`invalid key name: a key name is ${API_KEY_NAME_RULE}`);
  if (!ApiKeyScope.safeParse(spec.scope).success) throw new Error(`invalid scope: use one of ${API_KEY_SCOPES.join(', ')}`);
  if (spec.expiresInMs !== undefined && !(Number.isInteger(spec.expiresInMs) && spec.expiresInMs > 0 && spec.expiresInMs <= MAX_KEY_LIFETIME_MS)) {
    throw new Error('invalid lifetime: a key lives from 1 s to 3650 days');
  }
}

/** The keys of a bucket in memory, from a KV watch. */
export class ApiKeyTable {
  private readonly byId = new Map<string, ApiKeyRecord>();
  private stopWatch: (() => void) | undefined;
  private readonly stopped: Array<() => void> = [];
  /** The bucket's revision this table shows, and who waits for a later one. */
  private revision = 0;
  private readonly waiting = new Set<{ revision: number; done: () => void }>();

  static async start(kv: KV, bucket: string, onCorrupt: (error: CorruptApiKeyError) => void): Promise<ApiKeyTable> {
    const table = new ApiKeyTable();
    const watch = await kv.watch({ key: '>' });
    table.stopWatch = () => watch.stop();
    let ready!: () => void;
    const initialized = new Promise<void>((resolve) => (ready = resolve));
    void (async () => {
      for await (const entry of watch) {
        const { key, delta } = entry;
        if (isLive(entry)) {
          try {
            table.byId.set(entry.key, decodeApiKeyRecord(bucket, entry.key, entry.value));
          } catch (error) {
            // A corrupt record verifies nothing.
            table.byId.delete(entry.key);
            onCorrupt(error as CorruptApiKeyError);
          }
        } else {
          table.byId.delete(key);
        }
        table.showRevision(entry.revision);
        if (delta === 0) ready();
      }
    })();
    // An empty bucket sends no initial entries.
    if ((await kv.status()).values === 0) ready();
    await Promise.race([initialized, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    return table;
  }

  get(id: string): ApiKeyRecord | undefined {
    return this.byId.get(id);
  }

  private showRevision(revision: number): void {
    if (revision <= this.revision) return;
    this.revision = revision;
    for (const waiter of this.waiting) if (waiter.revision <= revision) waiter.done();
  }

  /** Resolves once the table shows the bucket as of `revision`, or after `timeoutMs` (the watch may be cut off; it catches up later). */
  seen(revision: number, timeoutMs: number): Promise<void> {
    if (revision <= this.revision) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        revision,
        done: () => {
          clearTimeout(timer);
          this.waiting.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.done, timeoutMs);
      this.waiting.add(waiter);
    });
  }

  /** Calls `listener` when the table stops. */
  onStop(listener: () => void): void {
    this.stopped.push(listener);
  }

  get size(): number {
    return this.byId.size;
  }

  check(presented: string | undefined, now = Date.now()): KeyCheck {
    return checkApiKey(presented, (id) => this.byId.get(id), now);
  }

  stop(): void {
    this.stopWatch?.();
    for (const waiter of this.waiting) waiter.done();
    for (const listener of this.stopped.splice(0)) listener();
  }
}
