import type { z } from 'zod';
import type { Topology } from './topology.js';

/**
 * What a resource of the topology holds, as docs/architecture.md's table states it; each owner
 * module exports one, and a test holds the table to them.
 */
export interface Layout {
  /** The resource's name in a topology. */
  bucket: (topo: Topology) => string;
  kind: 'KV' | 'object store' | 'stream';
  /** The "subjects / keys" column starts with this: the key (or subject) layout. */
  keys: string;
  /** What is stored under a key, as the column then says it. */
  value: string;
  writers: string[];
  readers: string[];
}

/** A stored record that does not match its schema: never trusted, reported with its bucket and key. */
export class CorruptRecordError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    reason: string,
  ) {
    super(`the record "${key}" in bucket ${bucket} is corrupt (${reason}); rebuild the read models (taskstream projector --rebuild) or remove the key`);
    this.name = 'CorruptRecordError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a stored JSON record against its schema; the error names the field, never the content. */
export function decodeRecord<S extends z.ZodType>(schema: S, bucket: string, key: string, data: Uint8Array): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(data));
  } catch {
    throw new CorruptRecordError(bucket, key, 'not UTF-8 JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CorruptRecordError(bucket, key, `${issue.path.join('.') || 'the record'}: ${issue.message}`);
  }
  return parsed.data;
}
