import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { FlowSummary } from '@taskstream/domain';
import { z } from 'zod';
import { encodeJson } from './codec.js';
import { decodeRecord, type Layout } from './records.js';
import { readStored } from './stored-read.js';

/**
 * The flow summaries bucket (`<prefix>_flow_summaries`): one summary per flow under its id, with
 * its share of its queues' statistics (`load`). The one module that knows its keys and records.
 */
export const FLOW_SUMMARIES_LAYOUT: Layout = {
  bucket: (topo) => topo.summariesBucket,
  kind: 'KV',
  keys: '`<flow_id>` → summary',
  value: '`load`',
  writers: ['projector'],
  readers: ['gateway'],
};

const StoredSummary = z.looseObject({
  flow_id: z.string(),
  status: z.string(),
  queue: z.string(),
  submitted_at: z.string(),
  total: z.number().int().min(0),
  load: z.record(z.string(), z.object({ waiting: z.number(), running: z.number(), throttled: z.number(), minutes: z.record(z.string(), z.object({ succeeded: z.number(), failed: z.number() })).optional() })).optional(),
});

/** A change to the summaries seen by a watch: a flow's summary, or its removal. */
export type SummaryChange = { flowId: string; summary: FlowSummary } | { flowId: string; summary: undefined };

export class FlowSummaryStore {
  constructor(
    private readonly kv: KV,
    private readonly bucket: string,
  ) {}

  put(flowId: string, summary: FlowSummary): Promise<unknown> {
    return this.kv.put(flowId, encodeJson(summary));
  }

  /**
   * Every summary, then every change, until stopped; `ready` is called once the summaries stored
   * at the start have been seen. A corrupt record is reported to `corrupt` and skipped.
   */
  async watch(onChange: (change: SummaryChange) => void, ready: () => void, corrupt: (error: Error) => void): Promise<() => void> {
    const watch = await this.kv.watch({ key: '>' });
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation === 'PUT' && entry.value.length > 0) {
          try {
            onChange({ flowId: entry.key, summary: decodeRecord(StoredSummary, this.bucket, entry.key, entry.value) as unknown as FlowSummary });
          } catch (error) {
            corrupt(error as Error);
          }
        } else {
          onChange({ flowId: entry.key, summary: undefined });
        }
        if (entry.delta === 0) ready();
      }
    })();
    if ((await this.kv.status()).values === 0) ready();
    return () => watch.stop();
  }

  /**
   * Removes the flow's summary (retention). The bucket keeps a removal marker, which is how each
   * gateway's watch learns of it; `dropMarker` removes that once every watch has had time to see it.
   */
  remove(flowId: string): Promise<void> {
    return this.kv.purge(flowId);
  }

  /** Removes the marker `remove` left for `flowId`, unless the flow has a summary again. */
  async dropMarker(jsm: JetStreamManager, flowId: string): Promise<void> {
    const entry = await this.kv.get(flowId);
    if (entry === null || entry.operation === 'PUT') return;
    await jsm.streams.purge(`KV_${this.bucket}`, { filter: `$KV.${this.bucket}.${flowId}`, keep: 0 });
  }

  /**
   * The markers `remove` left and nobody dropped yet, oldest first, each with when it was stored:
   * what a process that drops them reads once when it starts, since those an earlier process
   * meant to drop were forgotten with it. One read of every key's last record, headers only.
   */
  async markers(js: JetStreamClient): Promise<Array<{ flowId: string; at: number }>> {
    const prefix = `$KV.${this.bucket}.`;
    const consumer = await js.consumers.get(`KV_${this.bucket}`, { filter_subjects: `${prefix}>`, deliver_policy: DeliverPolicy.LastPerSubject, headers_only: true });
    const found: Array<{ flowId: string; at: number }> = [];
    const end = await readStored(consumer, (msg) => {
      if (msg.headers?.get('KV-Operation') === 'PURGE') found.push({ flowId: msg.subject.slice(prefix.length), at: Math.floor(msg.info.timestampNanos / 1_000_000) });
    });
    if (end === 'stalled') throw new Error(`the read of ${this.bucket}'s removal markers stalled`);
    return found;
  }

  async purgeAll(): Promise<void> {
    for await (const key of await this.kv.keys()) await this.kv.purge(key);
  }
}
