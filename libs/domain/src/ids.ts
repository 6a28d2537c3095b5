/** Identifiers that end up inside NATS subjects and KV keys must be single, safe tokens. */
export const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;
export const MAX_ID_LENGTH = 128;

export function isSafeToken(value: string): boolean {
  return value.length > 0 && value.length <= MAX_ID_LENGTH && SAFE_TOKEN.test(value);
}

/** Crockford base32 ULID: 26 characters, time-sortable. */
export const ULID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** Number of event partitions. Fixed for the life of a deployment: flows are pinned to a partition by id. */
export const DEFAULT_PARTITIONS = 16;

/** FNV-1a: stable across processes and versions, cheap, good enough spread for ULIDs. */
export function partitionOf(flowId: string, partitions: number = DEFAULT_PARTITIONS): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < flowId.length; i++) {
    hash ^= flowId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
