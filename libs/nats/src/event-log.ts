import { JetStreamApiError, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import pLimit from 'p-limit';
import { EVENT_VERSION, eventSubject, TERMINAL_FLOW_EVENTS, TERMINAL_TASK_EVENTS, type EventBody, type EventDraft, type FlowEvent } from '@taskstream/domain';
import { encodeJson } from './codec.js';
import { deterministicId, newId } from './ids.js';
import type { Topology } from './topology.js';
import { activeTraceContext, traceHeaders, withTraceContext } from './trace-context.js';

/**
 * Headers an event is stored with that save a reader work, never part of the event: a reader
 * finding none (an event stored before hints, or by a writer that gives none) does the work.
 */
export type EventHints = Partial<Record<typeof WEBHOOKS_HINT, string>>;

/**
 * On a flow's end, the webhooks its definition sets (`on_complete,on_failure`, either, or `none`),
 * so the executors' webhook consumers need not read the definition of a flow that sets none.
 */
export const WEBHOOKS_HINT = 'Taskstream-Webhooks';

const WRONG_LAST_SEQUENCE = 10071;

/**
 * Appends events to the log. Every append carries a Nats-Msg-Id, so a repeat is dropped by
 * JetStream, and the active trace context, so whoever acts on the event continues its trace.
 */
export class EventLog {
  constructor(
    private readonly js: JetStreamClient,
    private readonly topo: Topology,
  ) {}

  /**
   * A task's terminal event is keyed by the task alone, whoever writes it (the planner cancelling
   * or skipping it, an executor finishing or cancelling it), and a flow's by the flow: within the
   * de-duplication window the first one stored is the only one stored, so each gets exactly one.
   */
  async append(event: FlowEvent, msgID: string = event.id, hints?: EventHints): Promise<PubAck> {
    let headers = traceHeaders();
    if (hints !== undefined) {
      headers ??= natsHeaders();
      for (const [name, value] of Object.entries(hints)) headers.set(name, value);
    }
    return this.js.publish(eventSubject(this.topo.layout, event.flow_id, event.type), encodeJson(event), { msgID: terminalEventKey(event) ?? msgID, ...(headers && { headers }) });
  }

  /**
   * Appends a batch in order. The publishes are pipelined on one connection, which keeps their
   * order in the stream, at most `window` awaiting their PubAck at once (a flow of 10,000 tasks
   * otherwise holds 10,000 encoded events and pending requests in memory), and all PubAcks are
   * awaited before returning.
   */
  async appendAll(items: ReadonlyArray<{ event: FlowEvent; msgID: string; hints?: EventHints }>, window = 256): Promise<PubAck[]> {
    const limit = pLimit(window);
    // The queue runs each append from whichever append freed its slot: keep the caller's trace.
    const caller = activeTraceContext();
    return Promise.all(items.map(({ event, msgID, hints }) => limit(() => withTraceContext(caller, () => this.append(event, msgID, hints)))));
  }

  /** Appends an event the shell originates, stamping a fresh id, the schema version and the time. */
  async appendNew(body: EventBody<'id' | 'version' | 'time'>, msgID: string, now: number = Date.now()): Promise<PubAck> {
    return this.append({ ...body, id: newId(now), version: EVENT_VERSION, time: new Date(now).toISOString() } as FlowEvent, msgID);
  }

  /**
   * Appends a decision that may exist once per flow in the whole log (flow.started), whatever the
   * de-duplication window: the server stores it only while its subject is still empty. False when
   * the flow already has one, which means its history was replayed and must be folded again.
   */
  async appendFirst(draft: EventDraft, causeTimeMs: number, now: Date = new Date()): Promise<boolean> {
    const event = stampDecision(draft, causeTimeMs, now);
    try {
      const headers = traceHeaders();
      await this.js.publish(eventSubject(this.topo.layout, event.flow_id, event.type), encodeJson(event), { msgID: draft.key, expect: { lastSubjectSequence: 0 }, ...(headers && { headers }) });
      return true;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE) return false;
      throw error;
    }
  }

  /** Stamps decisions with deterministic ids and appends them, keyed for de-duplication, with the hints `hintsOf` gives. */
  async appendDecisions(drafts: readonly EventDraft[], causeTimeMs: number, hintsOf: (draft: EventDraft) => EventHints | undefined = () => undefined, now: Date = new Date()): Promise<FlowEvent[]> {
    const events = drafts.map((draft) => stampDecision(draft, causeTimeMs, now));
    await this.appendAll(events.map((event, i) => ({ event, msgID: drafts[i]!.key, hints: hintsOf(drafts[i]!) })));
    return events;
  }
}

/** The de-duplication key shared by every terminal event of one task, or of one flow. */
export function terminalEventKey(event: FlowEvent): string | undefined {
  if ('task_id' in event) return TERMINAL_TASK_EVENTS.has(event.type) ? `${event.flow_id}:${event.task_id}:terminal` : undefined;
  return TERMINAL_FLOW_EVENTS.has(event.type) ? `${event.flow_id}:terminal` : undefined;
}

export function stampDecision(draft: EventDraft, causeTimeMs: number, now: Date): FlowEvent {
  const { key, ...rest } = draft;
  return { ...rest, id: deterministicId(key, causeTimeMs), version: EVENT_VERSION, time: now.toISOString() } as FlowEvent;
}
