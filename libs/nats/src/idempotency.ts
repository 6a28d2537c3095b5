import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import { decodeRecord, type Layout } from './records.js';

/**
 * The idempotency bucket (`<prefix>_idempotency`): a submission's Idempotency-Key, hashed, claims
 * the flow id it created, with a hash of the body it came with. The one module that knows it.
 */
export const IDEMPOTENCY_LAYOUT: Layout = {
  bucket: (topo) => topo.idempotencyBucket,
  kind: 'KV',
  keys: '`<sha256 of Idempotency-Key>` → flow id',
  value: 'flow id',
  writers: ['gateway'],
  readers: ['gateway'],
};

const Claim = z.object({ flow_id: z.string(), body_hash: z.string() });
export type IdempotencyClaim = z.infer<typeof Claim>;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export class IdempotencyStore {
  constructor(
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  /**
   * Claims `idempotencyKey` for `flowId` and a body, by compare-and-set. The claim already stored
   * when the key was claimed before (by this request's earlier try, or another body).
   */
  async claim(idempotencyKey: string, flowId: string, body: string): Promise<{ claimed: true } | { claimed: false; existing: IdempotencyClaim; sameBody: boolean }> {
    const key = sha256(idempotencyKey);
    const bodyHash = sha256(body);
    try {
      await this.kv.create(key, JSON.stringify({ flow_id: flowId, body_hash: bodyHash }));
      return { claimed: true };
    } catch (error) {
      const stored = await this.kv.get(key);
      if (!stored || stored.value.length === 0) throw error;
      const existing = decodeRecord(Claim, this.bucket, key, stored.value);
      return { claimed: false, existing, sameBody: existing.body_hash === bodyHash };
    }
  }
}
