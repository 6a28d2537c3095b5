import { DeliverPolicy, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { signalSubject, ULID_PATTERN } from '@taskstream/domain';
import { z } from 'zod';
import { decodeJson, encodeJson } from './codec.js';
import { newId } from './ids.js';
import type { Layout } from './records.js';
import type { Topology } from './topology.js';

/**
 * Signals (`<PREFIX>_SIGNALS`, one subject per name) and the index of tasks waiting for them
 * (`<prefix>_signal_waits`). The only module that writes either.
 */

export const SIGNAL_WAITS_LAYOUT: Layout = {
  bucket: (topo) => topo.signalWaitsBucket,
  kind: 'KV',
  keys: '`<signal name>.<flow_id>.<task id, encoded>` → `{flow_id, task_id, since}`',
  value: 'a wait task waiting for the signal',
  writers: ['planner'],
  readers: ['planner'],
};

/** Largest signal payload, as JSON bytes. */
export const MAX_SIGNAL_PAYLOAD_BYTES = 64 * 1024;

export const Signal = z.object({
  id: z.string().regex(ULID_PATTERN),
  name: z.string().min(1),
  payload: z.unknown(),
  sent_at: z.iso.datetime({ offset: true }),
  /** `key:<id>` of the API key that sent it, when keys are on. */
  sent_by: z.string().optional(),
});
export type Signal = z.infer<typeof Signal>;

export interface StoredSignal {
  signal: Signal;
  seq: number;
}

/** Appends and reads signals. */
export class SignalLog {
  constructor(
    private readonly js: JetStreamClient,
    private readonly topo: Topology,
  ) {}

  /** Stores a signal; a repeat of the same `dedupeKey` within the de-duplication window stores nothing and answers the first. */
  async send(name: string, payload: unknown, sentBy?: string, dedupeKey?: string, now = Date.now()): Promise<{ signal: Signal; seq: number; duplicate: boolean }> {
    const signal: Signal = { id: newId(now), name, payload, sent_at: new Date(now).toISOString(), ...(sentBy !== undefined && { sent_by: sentBy }) };
    const ack = await this.js.publish(signalSubject(this.topo.layout, name), encodeJson(signal), dedupeKey === undefined ? {} : { msgID: `signal:${name}:${dedupeKey}` });
    if (!ack.duplicate) return { signal, seq: ack.seq, duplicate: false };
    const first = await this.at(ack.seq);
    return { signal: first?.signal ?? signal, seq: ack.seq, duplicate: true };
  }

  /** The signal stored at `seq`, if it is still kept. */
  async at(seq: number): Promise<StoredSignal | undefined> {
    try {
      const jsm = await this.js.jetstreamManager();
      const message = await jsm.streams.getMessage(this.topo.signalsStream, { seq });
      if (message === null) return undefined;
      const decoded = decodeSignal(message.data);
      return decoded === undefined ? undefined : { signal: decoded, seq };
    } catch (error) {
      if (error instanceof JetStreamApiError) return undefined;
      throw error;
    }
  }

  /**
   * Signals named `name` stored from `sinceMs` on (up to what the stream holds now), in order:
   * what a wait that has just begun looks back over.
   */
  async since(name: string, sinceMs: number, max = 10_000): Promise<StoredSignal[]> {
    const consumer = await this.js.consumers.get(this.topo.signalsStream, {
      filter_subjects: signalSubject(this.topo.layout, name),
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(sinceMs).toISOString(),
    });
    const found: StoredSignal[] = [];
    try {
      const { num_pending } = await consumer.info(true);
      if (num_pending === 0) return found;
      const messages = await consumer.fetch({ max_messages: Math.min(num_pending, max), expires: 5_000 });
      for await (const message of messages) {
        const signal = decodeSignal(message.data);
        if (signal !== undefined) found.push({ signal, seq: message.seq });
        if (message.info.pending === 0 || found.length >= max) break;
      }
      return found;
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }
}

export function decodeSignal(data: Uint8Array): Signal | undefined {
  const json = decodeJson(data);
  if (!json.ok) return undefined;
  const parsed = Signal.safeParse(json.value);
  return parsed.success ? parsed.data : undefined;
}

const SignalWaitRecord = z.object({ flow_id: z.string(), task_id: z.string(), since: z.string() });
export type SignalWaitRecord = z.infer<typeof SignalWaitRecord>;

/** Task ids may hold characters a key cannot: hex of their UTF-8 bytes. */
const encodeTask = (taskId: string) => Buffer.from(taskId, 'utf8').toString('hex');

/** The tasks waiting for each signal name. */
export class SignalWaits {
  private constructor(private readonly kv: KV) {}

  static async open(js: JetStreamClient, topo: Topology): Promise<SignalWaits> {
    return new SignalWaits(await new Kvm(js).open(topo.signalWaitsBucket));
  }

  private key(name: string, flowId: string, taskId: string): string {
    return `${name}.${flowId}.${encodeTask(taskId)}`;
  }

  async add(name: string, record: SignalWaitRecord): Promise<void> {
    await this.kv.put(this.key(name, record.flow_id, record.task_id), encodeJson(record));
  }

  async remove(name: string, flowId: string, taskId: string): Promise<void> {
    await this.kv.delete(this.key(name, flowId, taskId));
  }

  /** The tasks waiting for `name`, as recorded (some may have stopped waiting since). */
  async waitingFor(name: string): Promise<SignalWaitRecord[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys(`${name}.>`)) keys.push(key);
    const records: SignalWaitRecord[] = [];
    for (const key of keys) {
      const entry = await this.kv.get(key);
      if (entry === null || entry.operation !== 'PUT') continue;
      const json = decodeJson(entry.value);
      const parsed = json.ok ? SignalWaitRecord.safeParse(json.value) : undefined;
      if (parsed?.success) records.push(parsed.data);
    }
    return records;
  }
}
