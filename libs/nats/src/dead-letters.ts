import type { JetStreamClient, JsMsg, StoredMsg } from '@nats-io/jetstream';
import { dlqSubject } from '@taskstream/domain';
import { encodeJson } from './codec.js';
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
  /** The payload as text when it is UTF-8, otherwise base64 with `encoding: 'base64'`. */
  data: string;
  encoding: 'utf8' | 'base64';
}

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
    let data: string;
    let encoding: DeadLetter['encoding'] = 'utf8';
    try {
      data = new TextDecoder('utf-8', { fatal: true }).decode(m.data);
    } catch {
      data = Buffer.from(m.data).toString('base64');
      encoding = 'base64';
    }
    const letter: DeadLetter = {
      reason,
      source,
      stream: m.stream,
      consumer: m.consumer,
      subject: m.subject,
      stream_seq: m.seq,
      delivery_count: m.deliveries,
      time: new Date().toISOString(),
      data,
      encoding,
    };
    await this.js.publish(dlqSubject(this.topo.layout, source), encodeJson(letter), { msgID: `${m.stream}:${m.seq}:${source}` });
  }
}
