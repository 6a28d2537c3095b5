import type { JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { z } from 'zod';
import { encodeJson } from './codec.js';
import type { Layout } from './records.js';
import type { Topology } from './topology.js';

/**
 * The secrets bucket (`<prefix>_secrets`): one key per secret, `{ value, updated_at }`. The only
 * module that reads or writes it. Values are written and read back, never listed, logged or put
 * in an error message: every message here names the secret, never its value.
 */

export const SECRETS_LAYOUT: Layout = {
  bucket: (topo) => topo.secretsBucket,
  kind: 'KV',
  keys: '`<name>` (a `.` stored as `/`) → `{value, updated_at}`',
  value: '`{value, updated_at}`',
  writers: ['gateway'],
  readers: ['executor', 'gateway'],
};

/** Largest value, in UTF-8 bytes. */
export const MAX_SECRET_BYTES = 64 * 1024;

/** What a secret name may be, as messages state it. */
export const SECRET_NAME_RULE = '1 to 128 characters, each a letter, a digit, "_", "-" or "."';

/** A secret name, as flows write it in `${secrets.NAME}`. */
export const SecretName = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, `a secret name is ${SECRET_NAME_RULE}`);

export const SecretRecord = z.object({
  value: z.string(),
  updated_at: z.iso.datetime(),
});
export type SecretRecord = z.infer<typeof SecretRecord>;

/** What may be shown about a secret: everything but its value. */
export interface SecretInfo {
  name: string;
  updated_at: string;
}

/** A stored record that is not a valid secret record: never trusted, reported with its key. */
export class CorruptSecretError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    reason: string,
  ) {
    super(`the record of secret key "${key}" in bucket ${bucket} is corrupt (${reason}); set the secret again to replace it, or delete it`);
    this.name = 'CorruptSecretError';
  }
}

/**
 * A name's key. KV keys may not start or end with "." nor hold an empty token ("a..b"), which
 * names may, so "." is stored as "/" (which no name contains): `db.password` is `db/password`.
 */
export function secretKey(name: string): string {
  return name.replaceAll('.', '/');
}

export function secretNameOf(key: string): string {
  return key.replaceAll('/', '.');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks a stored record. Reasons name fields and what is wrong with them, never what they hold
 * (a JSON parser's message would quote the text, so it is not passed on).
 */
export function decodeSecretRecord(bucket: string, key: string, data: Uint8Array): SecretRecord {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    throw new CorruptSecretError(bucket, key, 'not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CorruptSecretError(bucket, key, 'not valid JSON');
  }
  const result = SecretRecord.safeParse(json);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => (issue.path.length > 0 ? `"${issue.path.join('.')}" ${issue.code === 'invalid_type' ? 'is missing or of the wrong type' : 'is not valid'}` : 'not an object'));
  throw new CorruptSecretError(bucket, key, [...new Set(fields)].join(', '));
}

function checkName(name: string): void {
  if (!SecretName.safeParse(name).success) throw new Error(`invalid secret name ${JSON.stringify(name.slice(0, 130))}: a secret name is ${SECRET_NAME_RULE}`);
}

/** Why a value is too large to store (its size and the limit), or undefined when it fits. */
export function secretTooLarge(value: string): string | undefined {
  const bytes = Buffer.byteLength(value, 'utf8');
  return bytes > MAX_SECRET_BYTES ? `is ${bytes} bytes; a secret value may be at most ${MAX_SECRET_BYTES} bytes (${MAX_SECRET_BYTES / 1024} KiB)` : undefined;
}

const isLive = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT' && entry.value.length > 0;

/** Write-only secrets: put, delete and list names; only `get` (for the executor resolving `${secrets.NAME}`) reads a value. */
export class SecretStore {
  constructor(
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<SecretStore> {
    return new SecretStore(await new Kvm(js).open(topo.secretsBucket), topo.secretsBucket);
  }

  /** Creates or replaces a secret. */
  async put(name: string, value: string): Promise<SecretInfo> {
    checkName(name);
    if (typeof value !== 'string') throw new Error(`the value of secret "${name}" must be a string`);
    const tooLarge = secretTooLarge(value);
    if (tooLarge) throw new Error(`the value of secret "${name}" ${tooLarge}`);
    const record: SecretRecord = { value, updated_at: new Date().toISOString() };
    await this.kv.put(secretKey(name), encodeJson(record));
    return { name, updated_at: record.updated_at };
  }

  /** Removes a secret, leaving no earlier value in the bucket; false when there was none. */
  async delete(name: string): Promise<boolean> {
    checkName(name);
    const key = secretKey(name);
    for (;;) {
      const entry = await this.kv.get(key);
      if (!isLive(entry)) return false;
      try {
        // Only if nobody changed it meanwhile, so two deletes do not both report it existed.
        await this.kv.purge(key, { previousSeq: entry.revision });
        return true;
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
      }
    }
  }

  /** Every secret's name and time of last change, by name; never a value. */
  async list(): Promise<SecretInfo[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    const secrets: SecretInfo[] = [];
    for (const key of keys) {
      const entry = await this.kv.get(key);
      if (!isLive(entry)) continue; // deleted meanwhile
      secrets.push({ name: secretNameOf(key), updated_at: decodeSecretRecord(this.bucket, key, entry.value).updated_at });
    }
    return secrets.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A secret's value, or undefined when there is no such secret. */
  async get(name: string): Promise<string | undefined> {
    checkName(name);
    const key = secretKey(name);
    const entry = await this.kv.get(key);
    return isLive(entry) ? decodeSecretRecord(this.bucket, key, entry.value).value : undefined;
  }
}

function isWrongLastSequence(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: string };
  return code === 10071 || /wrong last sequence/i.test(message ?? '');
}
