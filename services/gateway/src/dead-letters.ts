import { allDlqFilter, dlqSubject } from '@taskstream/domain';
import { DeliverPolicy, readStored, type DeadLetter } from '@taskstream/nats';
import type { ServiceContext } from '@taskstream/runtime';
import { apiError } from './errors.js';

export interface StoredLetter extends DeadLetter {
  dlq_seq: number;
}

/** The dead-letter stream, read and acted on by operators: list, inspect, retry, discard. */
export class DeadLetterQueue {
  constructor(private readonly ctx: ServiceContext) {}

  async list(source: string | undefined, afterSeq: number, limit: number): Promise<StoredLetter[]> {
    const filter = source === undefined ? allDlqFilter(this.ctx.topo.layout) : dlqSubject(this.ctx.topo.layout, source);
    const consumer = await this.ctx.js.consumers.get(this.ctx.topo.dlqStream, {
      filter_subjects: filter,
      ...(afterSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
    const letters: StoredLetter[] = [];
    const end = await readStored(consumer, (msg) => {
      letters.push({ dlq_seq: msg.seq, ...msg.json<DeadLetter>() });
      return letters.length < limit;
    }, 500);
    if (end === 'stalled') throw apiError('UNAVAILABLE', 'the dead-letter stream stopped delivering');
    return letters;
  }

  async get(seq: number): Promise<StoredLetter> {
    try {
      const stored = await this.ctx.jsm.streams.getMessage(this.ctx.topo.dlqStream, { seq });
      if (stored) return { dlq_seq: seq, ...stored.json<DeadLetter>() };
    } catch {
      // not found
    }
    throw apiError('DEAD_LETTER_NOT_FOUND', seq);
  }

  /**
   * Puts a work item back on its subject and removes the letter. A letter of the event log is not
   * republished: the log already holds that event, and a copy would be a second, different fact
   * that every consumer processes again. Such letters are for reading; the flow they belong to is
   * recovered by cancelling and rerunning it (see docs/operations.md).
   */
  async retry(seq: number): Promise<{ republished_to: string; seq: number }> {
    const letter = await this.get(seq);
    if (letter.stream === this.ctx.topo.eventsStream) throw apiError('EVENT_LETTER_NOT_RETRYABLE', seq, letter.stream_seq);
    if (letter.encoding === 'omitted') throw apiError('LETTER_WITHOUT_PAYLOAD', seq, letter.bytes);
    const data = letter.encoding === 'base64' ? Buffer.from(letter.data, 'base64') : new TextEncoder().encode(letter.data);
    const ack = await this.ctx.js.publish(letter.subject, data, { msgID: `dlq-retry:${this.ctx.topo.dlqStream}:${seq}` });
    await this.ctx.jsm.streams.deleteMessage(this.ctx.topo.dlqStream, seq, false);
    return { republished_to: letter.subject, seq: ack.seq };
  }

  async discard(seq: number): Promise<void> {
    await this.get(seq);
    await this.ctx.jsm.streams.deleteMessage(this.ctx.topo.dlqStream, seq, false);
  }
}
