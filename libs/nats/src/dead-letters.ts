import type { JetStreamClient, JsMsg, StoredMsg } from '@nats-io/jetstream';
import { dlqSubject } from '@taskstream/domain';
import { encodeJson } from './codec.js';
import { consumerObserver } from './consumer.js';
import type { Topology } from './topology.js';

/** What is kept of a message set aside: enough to understand it, find it and retry it. */
export interface DeadLetter {
  reason: string;
  source: string;
  stream: string;
  consumer: string;
  subject: string;
  stream_seq: number;
  delivery_count: number;
  time: string;
  /**
   * The payload as text when it is UTF-8, otherwise base64 with `encoding: 'base64'`; empty with
   * `encoding: 'omitted'` when it is too large to travel in a letter (the stream and sequence name
   * where it is).
   */
  data: string;
  encoding: 'utf8' | 'base64' | 'omitted';
  /** Size of the original payload in bytes. */
  bytes: number;
}

/**
 * A letter must always fit in one message, or setting a message aside fails like the message did.
 * Payloads up to this size travel whole (every work item does: submission bounds them well below
 * it); larger ones, which only the immutable event log can hold, are referenced by sequence.
 */
export const MAX_LETTER_DATA_BYTES = 512 * 1024;
const MAX_REASON_CHARS = 2_000;

export class DeadLetters {
  constructor(
    private readonly js: JetStreamClient,
    private readonly topo: Topology,
  ) {}

  /** Records the message with its reason. De-duplicated by stream and sequence: setting aside twice is harmless. */
  async setAside(msg: JsMsg, source: string, reason: string): Promise<void> {
    await this.record({ stream: msg.info.stream, consumer: msg.info.consumer, subject: msg.subject, seq: msg.seq, deliveries: msg.info.deliveryCount, data: msg.data }, source, reason);
  }

  /** The same for a message read from the stream by sequence (e.g. after a max-deliveries advisory). */
  async setAsideStored(stored: StoredMsg, source: string, consumer: string, deliveries: number, reason: string): Promise<void> {
    await this.record({ stream: this.topo.workStream, consumer, subject: stored.subject, seq: stored.seq, deliveries, data: stored.data }, source, reason);
  }

  private async record(m: { stream: string; consumer: string; subject: string; seq: number; deliveries: number; data: Uint8Array }, source: string, reason: string): Promise<void> {
    let data = '';
    let encoding: DeadLetter['encoding'] = 'omitted';
    if (m.data.length <= MAX_LETTER_DATA_BYTES) {
      try {
        data = new TextDecoder('utf-8', { fatal: true }).decode(m.data);
        encoding = 'utf8';
      } catch {
        data = Buffer.from(m.data).toString('base64');
        encoding = 'base64';
      }
    }
    const letter: DeadLetter = {
      reason: reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}… (cut at ${MAX_REASON_CHARS} characters)` : reason,
      source,
      stream: m.stream,
      consumer: m.consumer,
      subject: m.subject,
      stream_seq: m.seq,
      delivery_count: m.deliveries,
      time: new Date().toISOString(),
      data,
      encoding,
      bytes: m.data.length,
    };
    const ack = await this.js.publish(dlqSubject(this.topo.layout, source), encodeJson(letter), { msgID: `${m.stream}:${m.seq}:${source}` });
    if (!ack.duplicate) consumerObserver()?.deadLettered(source);
  }
}
