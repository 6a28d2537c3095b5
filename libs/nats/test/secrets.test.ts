import { describe, expect, it } from 'vitest';
import { CorruptSecretError, decodeSecretRecord, MAX_SECRET_BYTES, secretKey, secretNameOf, SecretName, secretTooLarge } from '../src/secrets.js';

const VALUE = 'sk-live-Qm4tZr8wLx';
const bytes = (text: string) => new TextEncoder().encode(text);
const decode = (text: string | Uint8Array) => decodeSecretRecord('ts_secrets', 'db/password', typeof text === 'string' ? bytes(text) : text);

/** The error a corrupt record raises, checked to name its key and bucket and never to quote the record. */
function corruption(data: string | Uint8Array): string {
  let error: unknown;
  try {
    decode(data);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(CorruptSecretError);
  const { message, key, bucket } = error as CorruptSecretError;
  expect({ key, bucket }).toEqual({ key: 'db/password', bucket: 'ts_secrets' });
  expect(message).toMatch(/^the record of secret key "db\/password" in bucket ts_secrets is corrupt \(/);
  expect(message).not.toContain(VALUE);
  expect(message).not.toContain('sk-live');
  return message;
}

describe('decoding a stored secret record', () => {
  it('returns a valid record', () => {
    expect(decode(JSON.stringify({ value: VALUE, updated_at: '2026-11-23T05:00:00.000Z' }))).toEqual({ value: VALUE, updated_at: '2026-11-23T05:00:00.000Z' });
    expect(decode(JSON.stringify({ value: '', updated_at: '2026-11-23T05:00:00Z' })).value).toBe('');
  });

  it('reports text that is not JSON without passing on the parser message, which would quote it', () => {
    expect(corruption(`{"value": "${VALUE}`)).toContain('(not valid JSON)');
    expect(corruption(`{"value": "${VALUE}" "updated_at": 1}`)).toContain('(not valid JSON)');
    expect(corruption(VALUE)).toContain('(not valid JSON)');
  });

  it('reports bytes that are not UTF-8', () => {
    expect(corruption(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))).toContain('(not valid UTF-8)');
  });

  it('names each wrong or missing field without quoting what it holds', () => {
    expect(corruption(JSON.stringify({ value: VALUE }))).toContain('("updated_at" is missing or of the wrong type)');
    expect(corruption(JSON.stringify({ value: VALUE, updated_at: `not a time ${VALUE}` }))).toContain('("updated_at" is not valid)');
    expect(corruption(JSON.stringify({ value: 42, updated_at: '2026-11-23T05:00:00Z' }))).toContain('("value" is missing or of the wrong type)');
    expect(corruption(JSON.stringify({ updated_at: 7 }))).toContain('"value" is missing or of the wrong type, "updated_at" is missing or of the wrong type');
  });

  it('reports a record that is not an object', () => {
    for (const record of ['null', '[]', JSON.stringify(VALUE), '5']) expect(corruption(record)).toContain('(not an object)');
  });
});

describe('secret names and keys', () => {
  it('accepts 1 to 128 letters, digits, "_", "-" and "."', () => {
    for (const name of ['a', 'DB_PASSWORD', 'api-token.v2', '.env', 'a..b', 'trailing.', '0', 'x'.repeat(128)]) expect(SecretName.safeParse(name).success, name).toBe(true);
    for (const name of ['', 'x'.repeat(129), 'with space', 'a/b', 'a*b', 'a>b', 'café', 'a$b', '${secrets.x}', 'tab\t']) expect(SecretName.safeParse(name).success, name).toBe(false);
    expect(SecretName.safeParse('a b').error?.issues[0]?.message).toBe('a secret name is 1 to 128 characters, each a letter, a digit, "_", "-" or "."');
  });

  it('stores every name under a valid KV key and reads the name back from it', () => {
    // What a KV key may be: these characters, not starting or ending with "." and with no empty token.
    const validKey = (key: string) => /^[-/=.\w]+$/.test(key) && !key.startsWith('.') && !key.endsWith('.') && !key.includes('..');
    for (const name of ['a', 'db.password', '.env', 'a..b', 'trailing.', '...', 'A-b_c.9']) {
      const key = secretKey(name);
      expect(validKey(key), `${name} -> ${key}`).toBe(true);
      expect(secretNameOf(key)).toBe(name);
    }
    expect(secretKey('db.password')).toBe('db/password');
  });
});

describe('the size limit', () => {
  it('counts UTF-8 bytes, up to 64 KiB', () => {
    expect(MAX_SECRET_BYTES).toBe(65536);
    expect(secretTooLarge('x'.repeat(65536))).toBeUndefined();
    expect(secretTooLarge('é'.repeat(32768))).toBeUndefined();
    expect(secretTooLarge('é'.repeat(32768) + 'x')).toBe('is 65537 bytes; a secret value may be at most 65536 bytes (64 KiB)');
  });
});
