import { DeliverPolicy, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import { EVENT_TYPES, eventSubject, evolve, flowEventsFilter, TERMINAL_FLOW_EVENTS, type EventType, type FlowEvent, type FlowState } from '@taskstream/domain';
import { decodeEvent } from './codec.js';
import { lastStoredSeq } from './last-stored.js';
import { readStored } from './stored-read.js';
import { definitionsOf } from './definitions.js';
import type { Logger } from './logger.js';
import type { Topology } from './topology.js';

/** An event as the log holds it: its stream sequence and the time the server stored it. */
export interface StoredEvent {
  seq: number;
  stored_at: string;
  event: FlowEvent;
}

/** A message on an event subject that does not decode; reads report it rather than fail. */
export interface InvalidStored {
  seq: number;
  stored_at: string;
  invalid: string;
}

function storedAt(nanos: number): string {
  return new Date(Math.floor(nanos / 1_000_000)).toISOString();
}

function startFrom(afterSeq: number) {
  return afterSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 } : { deliver_policy: DeliverPolicy.All };
}

/**
 * Every event on `filter` after `afterSeq`, in stream order, as it stands now.
 *
 * Read through an ephemeral consumer (one request for the lot). Creating one can time out for a
 * while after a cluster node is lost (nats-server 2.9 places about one in three on the lost peer);
 * then the read falls back to direct gets, which any live replica answers without a consumer.
 *
 * A consumer created during a leader change can also sit on a replica that has not caught up and
 * report nothing pending, which once made a flow's history read empty. So the stream's leader is
 * asked first for its last message on `filter`, and the read is not done until it has reached it:
 * it reads on from where it stopped a few times, then fails (a JetStream error, which the API
 * answers with 503) rather than return less than was stored before it began. Unless the leader's
 * last message on `filter` is then below where it was: the messages were removed meanwhile (flow
 * retention), and the read returns nothing, as for a flow never stored. Reads are of one flow.
 */
export async function readEvents(
  js: JetStreamClient,
  stream: string,
  filter: string,
  afterSeq = 0,
): Promise<Array<StoredEvent | InvalidStored>> {
  // Not asked (a read without the check) when the leader cannot be asked.
  const expected = await lastStoredSeq(js, stream, filter).catch(() => undefined);
  const out = await readEventsOnceOrDirect(js, stream, filter, afterSeq);
  for (let look = 1; expected !== undefined && (out.at(-1)?.seq ?? afterSeq) < expected; look++) {
    const reached = out.at(-1)?.seq ?? afterSeq;
    // Not behind but removed: retention deleted the flow's events while they were read.
    if (((await lastStoredSeq(js, stream, filter)) ?? 0) < expected) return [];
    if (look > CATCH_UP_LOOKS) {
      throw new Error(`JetStream stream ${stream} holds messages on ${filter} up to sequence ${expected}, but a read stopped at ${reached} after ${CATCH_UP_LOOKS} tries; a replica is catching up, retry shortly`);
    }
    await new Promise((resolve) => setTimeout(resolve, CATCH_UP_WAIT_MS * look));
    out.push(...(await readEventsOnceOrDirect(js, stream, filter, reached)));
  }
  return out;
}

/** Reads on from where a read stopped short of the leader's last message at most this often. */
const CATCH_UP_LOOKS = 5;
const CATCH_UP_WAIT_MS = 200;

async function readEventsOnceOrDirect(
  js: JetStreamClient,
  stream: string,
  filter: string,
  afterSeq: number,
): Promise<Array<StoredEvent | InvalidStored>> {
  try {
    return await readEventsOnce(js, stream, filter, afterSeq);
  } catch (error) {
    const timedOut = (error as Error)?.name === 'TimeoutError' || /timeout/i.test((error as Error)?.message ?? '');
    if (!timedOut) throw error;
    return readEventsDirect(js, stream, filter, afterSeq);
  }
}

/** Every event on `filter` after `afterSeq`, one direct get each (no consumer): for reads expected to find few or none. */
export async function readEventsDirect(
  js: JetStreamClient,
  stream: string,
  filter: string,
  afterSeq: number,
): Promise<Array<StoredEvent | InvalidStored>> {
  const jsm = await js.jetstreamManager();
  const out: Array<StoredEvent | InvalidStored> = [];
  for (let next = afterSeq + 1; ; ) {
    const msg = await jsm.direct.getMessage(stream, { next_by_subj: filter, seq: next });
    if (msg === null) return out;
    const decoded = decodeEvent(msg.data);
    const at = msg.time.toISOString();
    out.push(decoded.ok ? { seq: msg.seq, stored_at: at, event: decoded.value } : { seq: msg.seq, stored_at: at, invalid: decoded.reason });
    next = msg.seq + 1;
  }
}

async function readEventsOnce(
  js: JetStreamClient,
  stream: string,
  filter: string,
  afterSeq = 0,
): Promise<Array<StoredEvent | InvalidStored>> {
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, ...startFrom(afterSeq) });
  const out: Array<StoredEvent | InvalidStored> = [];
  let last = afterSeq;
  const end = await readStored(consumer, (msg) => {
    const decoded = decodeEvent(msg.data);
    const at = storedAt(msg.info.timestampNanos);
    out.push(decoded.ok ? { seq: msg.seq, stored_at: at, event: decoded.value } : { seq: msg.seq, stored_at: at, invalid: decoded.reason });
    last = msg.seq;
  });
  if (end === 'stalled') out.push(...(await readEventsDirect(js, stream, filter, last)));
  return out;
}

/**
 * Removes every event of a flow from the log, leaving nothing behind: for retention only (see
 * FlowRetention), once the flow has ended and been kept as long as the operator asked; how many.
 * One purge per event type, each on a literal subject: nats-server finds those by its subject
 * index, where a purge of `<flow>.>` matches every subject of the stream (its cost grows with the
 * log). The submission goes first: a read folding the flow meanwhile finds no beginning, so the
 * flow is not found rather than half there. Its end goes last: a removal cut short is found again
 * by its end.
 */
export async function purgeFlowEvents(js: JetStreamClient, topo: Topology, flowId: string): Promise<number> {
  const jsm = await js.jetstreamManager();
  const purge = async (types: readonly EventType[]) => {
    const purged = await Promise.all(types.map((type) => jsm.streams.purge(topo.eventsStream, { filter: eventSubject(topo.layout, flowId, type) })));
    return purged.reduce((sum, { purged: n }) => sum + n, 0);
  };
  return (
    (await purge(['flow.submitted'])) +
    (await purge(EVENT_TYPES.filter((type) => type !== 'flow.submitted' && !TERMINAL_FLOW_EVENTS.has(type)))) +
    (await purge([...TERMINAL_FLOW_EVENTS]))
  );
}

export async function readFlowHistory(js: JetStreamClient, topo: Topology, flowId: string, afterSeq = 0): Promise<StoredEvent[]> {
  const all = await readEvents(js, topo.eventsStream, flowEventsFilter(topo.layout, flowId), afterSeq);
  return all.filter((e): e is StoredEvent => 'event' in e);
}

/**
 * Pulls of the consumers that follow the log last this long: the server's heartbeats then come
 * every few seconds, so a consumer the server lost is noticed (and re-created by the client from
 * the last message delivered) in seconds, not after the default 30 s pull.
 */
const FOLLOW_PULL_MS = 5_000;

/**
 * History then live events on `filter`, from `afterSeq`, through one ordered consumer: the server
 * delivers stored and new messages in sequence, so there is no gap and no duplicate between them.
 */
export async function followEvents(
  js: JetStreamClient,
  stream: string,
  filter: string,
  afterSeq = 0,
): Promise<{ events: AsyncIterable<StoredEvent | InvalidStored>; close: () => Promise<void> }> {
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, ...startFrom(afterSeq) });
  const messages: ConsumerMessages = await consumer.consume({ max_messages: 256, expires: FOLLOW_PULL_MS });
  async function* events() {
    for await (const msg of messages) {
      const decoded = decodeEvent(msg.data);
      const at = storedAt(msg.info.timestampNanos);
      yield decoded.ok ? { seq: msg.seq, stored_at: at, event: decoded.value } : { seq: msg.seq, stored_at: at, invalid: decoded.reason };
    }
  }
  return { events: events(), close: async () => void (await messages.close()) };
}

/** A flow's state folded from its log, up to and including `untilSeq`; null when it was never submitted. */
export async function foldFlowHistory(js: JetStreamClient, topo: Topology, flowId: string, untilSeq = Number.MAX_SAFE_INTEGER): Promise<FlowState | null> {
  let state: FlowState | null = null;
  for (const stored of await readFlowHistory(js, topo, flowId)) {
    if (stored.seq > untilSeq) break;
    const event = state === null && stored.event.type === 'flow.submitted' ? await (await definitionsOf(js, topo)).hydrate(stored.event) : stored.event;
    state = evolve(state, event, stored.seq);
  }
  return state;
}

/** Every event stored in [since, until) on `filter`, in stream order: for audit exports. */
export async function readEventsBetween(js: JetStreamClient, stream: string, filter: string, since: Date, until: Date): Promise<StoredEvent[]> {
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.StartTime, opt_start_time: since.toISOString() });
  const out: StoredEvent[] = [];
  let last: number | undefined;
  const end = await readStored(consumer, (msg) => {
    const at = Math.floor(msg.info.timestampNanos / 1_000_000);
    if (at >= until.getTime()) return false;
    const decoded = decodeEvent(msg.data);
    if (decoded.ok) out.push({ seq: msg.seq, stored_at: new Date(at).toISOString(), event: decoded.value });
    last = msg.seq;
  });
  if (end === 'stalled') {
    // Direct gets go by sequence, not time: with nothing read there is no place to go on from.
    if (last === undefined) throw new Error('the JetStream consumer reading the export delivered nothing within its time; retry');
    const rest = await readEventsDirect(js, stream, filter, last);
    for (const stored of rest) {
      if (Date.parse(stored.stored_at) >= until.getTime()) break;
      if ('event' in stored) out.push(stored);
    }
  }
  return out;
}

/**
 * Calls `seen` with the subject of every message stored on `filter` from now on (or from `since`),
 * in stream order, with no gap: an ordered consumer from the stream's current end, which the client
 * re-creates after a reconnect from the last message it delivered, and which this re-creates from
 * there too if it ever fails. What was stored before is the log's to answer (a direct read).
 */
export async function watchStoredSubjects(js: JetStreamClient, stream: string, filter: string, seen: (subject: string) => void, log: Logger, since?: Date): Promise<{ close(): Promise<void> }> {
  const jsm = await js.jetstreamManager();
  let lastSeq = since === undefined ? (await jsm.streams.info(stream)).state.last_seq : -1;
  let closed = false;
  let messages: ConsumerMessages | undefined;
  const follow = async () => {
    while (!closed) {
      try {
        const start = lastSeq < 0 ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: since!.toISOString() } : startFrom(lastSeq);
        const consumer = await js.consumers.get(stream, { filter_subjects: filter, ...start });
        messages = await consumer.consume({ max_messages: 256, expires: FOLLOW_PULL_MS });
        // Closed while these were being made: close() has already closed the previous ones.
        if (closed) return void (await messages.close());
        for await (const msg of messages) {
          lastSeq = msg.seq;
          seen(msg.subject);
        }
        if (closed) return;
      } catch (error) {
        if (closed) return;
        log.warn({ err: error, filter }, 'watching the log failed; watching again from the last message seen');
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  const done = follow();
  return {
    async close() {
      closed = true;
      await messages?.close();
      await done;
    },
  };
}
