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

/** Why a record fails its schema, naming fields and what is wrong with them, never their content. */
function reasonOf(error: z.ZodError): string {
  const fields = error.issues.map((issue) =>
    issue.code === 'unrecognized_keys'
      ? `unknown field${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => `"${[...issue.path, k].join('.')}"`).join(', ')}`
      : issue.path.length > 0
        ? `"${issue.path.join('.')}" ${issue.code === 'invalid_type' ? 'is missing or of the wrong type' : 'is not valid'}`
        : 'not an object',
  );
  return [...new Set(fields)].join(', ');
}

/**
 * Decodes a stored JSON record against its schema. A record that is not UTF-8 JSON or does not
 * match is reported through `corrupt` (by default a CorruptRecordError) with the reason.
 */
export function decodeRecord<S extends z.ZodType>(
  schema: S,
  bucket: string,
  key: string,
  data: Uint8Array,
  corrupt: (reason: string) => Error = (reason) => new CorruptRecordError(bucket, key, reason),
): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(data));
  } catch {
    throw corrupt('not valid UTF-8 JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw corrupt(reasonOf(parsed.error));
  return parsed.data;
}
